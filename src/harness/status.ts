// What a running member's HTTP endpoints answer, read over real HTTP(S): the JSON of GET /status (one type for every
// user of the harness), /health and /metrics.
//
// MemberStatus describes the JSON as src/server builds it today (ConcordNode.status(): the Raft core's status,
// the state machine's counters, the members with their roles, transport and storage counters; serialised by
// src/server/http.ts, where Maps become objects). It is written out here rather than imported so the harness
// reads the wire format, not the server's internals; test/harness/harness.test.ts checks it against a live member.

import http from "node:http";
import https from "node:https";

export interface PeerCounters {
  framesSent: number;
  messagesSent: number;
  bytesSent: number;
  droppedDisconnected: number;
  droppedOverflow: number;
  connects: number;
  reconnects: number;
  connected: boolean;
  /** Smoothed ping round trip; null before the first pong. */
  rttMs: number | null;
  snapshotsSent: number;
  snapshotsFailed: number;
  framesReceived: number;
  messagesReceived: number;
  bytesReceived: number;
  snapshotsReceived: number;
}

export interface MemberStatus {
  /** This member's name. */
  id: string;
  term: number;
  /** Whom it voted for in `term`. */
  vote: string | null;
  commit: number;
  applied: number;
  lastIndex: number;
  role: "follower" | "pre-candidate" | "candidate" | "leader";
  leader: string | null;
  confState: {
    voters: string[];
    learners: string[];
    /** Non-empty only inside a joint configuration. */
    votersOutgoing: string[];
    learnersNext: string[];
    autoLeave: boolean;
  };
  /** The leader's view of each member's replication; empty on other members. */
  progress: Record<string, { match: number; next: number; state: "probe" | "replicate" | "snapshot" }>;
  leadTransferee: string | null;
  /** The state machine's revision, compaction revision and key count. */
  revision: number;
  compactRevision: number;
  keys: number;
  /** Index of the newest snapshot this member holds (0: none). */
  snapshotIndex: number;
  /** Current members with their URLs (clientUrl "" when unknown). */
  members: { id: string; peerUrl: string; clientUrl: string; role: "voter" | "learner" }[];
  transport: {
    peers: Record<string, PeerCounters>;
    droppedUnknownPeer: number;
    decodeErrors: number;
    refusedConnections: number;
  };
  storage: { fsyncs: number; saves: number; bytes: number; maxSavesPerFsync: number };
  /** Leases the leader keeps deadlines for; absent on other members. */
  leases?: number;
  /** Why the member stopped serving; absent while healthy. */
  fatal?: string;
}

/** TLS material for https: the CA to trust, and a client certificate when the member requires one. */
export interface HttpTls {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * GET `url` (http or https), showing `token` as a bearer token when given (/status and /metrics need one when the
 * member has a tokens file); resolves with any status code, rejects on a network error or after `timeoutMs`.
 */
export function httpGet(url: string, opts: { tls?: HttpTls; timeoutMs?: number; token?: string } = {}): Promise<HttpAnswer> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const lib = url.startsWith("https:") ? https : http;
  const headers = opts.token !== undefined ? { Authorization: `Bearer ${opts.token}` } : {};
  return new Promise((resolve, reject) => {
    const req = lib.get(url, { timeout: timeoutMs, headers, ...(opts.tls ?? {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

/** A member's /status, from its HTTP base URL (http://host:clientPort); rejects unless it answers 200 with JSON. */
export async function fetchStatus(
  httpBase: string,
  opts: { tls?: HttpTls; timeoutMs?: number; token?: string } = {},
): Promise<MemberStatus> {
  const r = await httpGet(`${httpBase}/status`, opts);
  if (r.status !== 200) throw new Error(`${httpBase}/status answered ${r.status}: ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as MemberStatus;
}

/** One sample of a Prometheus metric without labels, from a /metrics body. */
export function metricValue(metricsText: string, metric: string): number | undefined {
  const line = metricsText.split("\n").find((l) => l.startsWith(`${metric} `));
  return line === undefined ? undefined : Number(line.slice(metric.length + 1));
}
