// Configuration of the peer transport: the options, their defaults, and their validation. Bad options are
// refused with a PeerConfigError naming the option and what it accepts.

import type { Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Message, NodeId } from "../raft/types.js";
import { DEFAULT_MAX_FRAME_BYTES, MAX_CLUSTER_ID_LENGTH, MAX_NODE_ID_LENGTH } from "./codec.js";
import type { BackoffOptions } from "./peer-backoff.js";
import { DEFAULT_SNAPSHOT_CHUNK_BYTES, DEFAULT_SNAPSHOT_WINDOW_CHUNKS } from "./peer-snapshot.js";

/** The subset of pino the transport uses. */
export interface PeerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export const silentLogger: PeerLogger = { info() {}, warn() {}, debug() {} };

/** PEM strings or buffers. With `ca`, the server also requires and verifies client certificates (mTLS). */
export interface PeerTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
}

/** The path peer connections are served on (so the peer port can share a server with other endpoints). */
export const PEER_PATH = "/concord/peer";

export interface PeerTransportOptions {
  id: NodeId;
  clusterId: string;
  /** Shared by all members; proven with an HMAC during the handshake, never sent. */
  secret: string;
  /** Serve peer traffic on a server of our own... */
  listen?: { host: string; port: number };
  /** ...or on an existing http(s) server (not closed by stop()). */
  server?: HttpServer | HttpsServer;
  /** Peer id → base URL (ws://host:port or wss://host:port). */
  peers?: Map<NodeId, string>;
  /** This member's own peer URL, sent in the handshake (see PeerTransport's learned remotes). */
  advertiseUrl?: string;
  tls?: PeerTlsOptions;
  logger?: PeerLogger;
  onMessages(batch: Message[]): void;
  /** Outcome of each outbound "snap" message (the server calls raft.reportSnapshot). */
  onSnapshotStatus?(to: NodeId, ok: boolean): void;
  /** Per peer: bytes queued for the turn plus bytes buffered in the socket; beyond this messages are dropped. */
  maxQueueBytes?: number;
  maxFrameBytes?: number;
  maxSnapshotBytes?: number;
  snapshotChunkBytes?: number;
  snapshotWindowChunks?: number;
  /** A snapshot stream without an ack for this long is failed and its connection reset. */
  snapshotStallTimeoutMs?: number;
  pingIntervalMs?: number;
  /** A connection whose ping is unanswered this long is reset. */
  deadPeerTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  backoff?: BackoffOptions;
}

export type ResolvedPeerOptions = Required<
  Omit<PeerTransportOptions, "listen" | "server" | "tls" | "onSnapshotStatus" | "peers" | "backoff" | "advertiseUrl">
> &
  Pick<PeerTransportOptions, "listen" | "server" | "tls" | "onSnapshotStatus" | "advertiseUrl"> & {
    peers: Map<NodeId, string>;
    backoff: BackoffOptions;
  };

export class PeerConfigError extends Error {
  readonly code = "PEER_CONFIG";
  constructor(option: string, accepted: string, got: unknown) {
    super(`invalid peer transport option ${option}: got ${JSON.stringify(got) ?? String(got)}; expected ${accepted}`);
    this.name = "PeerConfigError";
  }
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n <= 0) throw new PeerConfigError(name, "a positive integer", v);
  return n;
}

function checkNodeId(name: string, v: unknown): void {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_NODE_ID_LENGTH) {
    throw new PeerConfigError(name, `a non-empty string of at most ${MAX_NODE_ID_LENGTH} chars`, v);
  }
}

/** Parses a peer's base URL into the URL the link dials. */
export function peerDialUrl(peer: NodeId, url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PeerConfigError(`peers[${peer}]`, "a ws:// or wss:// URL", url);
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new PeerConfigError(`peers[${peer}]`, "a ws:// or wss:// URL", url);
  }
  if (u.pathname === "/" || u.pathname === "") u.pathname = PEER_PATH;
  return u.toString();
}

export function resolvePeerOptions(o: PeerTransportOptions): ResolvedPeerOptions {
  checkNodeId("id", o.id);
  if (typeof o.clusterId !== "string" || o.clusterId.length === 0 || o.clusterId.length > MAX_CLUSTER_ID_LENGTH) {
    throw new PeerConfigError("clusterId", `a non-empty string of at most ${MAX_CLUSTER_ID_LENGTH} chars`, o.clusterId);
  }
  if (typeof o.secret !== "string" || o.secret.length === 0) {
    throw new PeerConfigError("secret", "a non-empty string", "<hidden>");
  }
  if ((o.listen === undefined) === (o.server === undefined)) {
    throw new PeerConfigError("listen/server", "exactly one of listen {host, port} or server", Object.keys(o));
  }
  if (o.listen !== undefined && (!Number.isInteger(o.listen.port) || o.listen.port < 0 || o.listen.port > 65535)) {
    throw new PeerConfigError("listen.port", "an integer port 0..65535 (0: ephemeral)", o.listen.port);
  }
  if (typeof o.onMessages !== "function") throw new PeerConfigError("onMessages", "a function", typeof o.onMessages);
  const peers = new Map<NodeId, string>();
  for (const [id, url] of o.peers ?? []) {
    checkNodeId(`peers key`, id);
    if (id === o.id) throw new PeerConfigError(`peers[${id}]`, "peers other than this node", id);
    peerDialUrl(id, url);
    peers.set(id, url);
  }
  const pingIntervalMs = positiveInt("pingIntervalMs", o.pingIntervalMs, 1000);
  return {
    id: o.id,
    clusterId: o.clusterId,
    secret: o.secret,
    listen: o.listen,
    server: o.server,
    tls: o.tls,
    peers,
    advertiseUrl: o.advertiseUrl,
    logger: o.logger ?? silentLogger,
    onMessages: o.onMessages,
    onSnapshotStatus: o.onSnapshotStatus,
    maxQueueBytes: positiveInt("maxQueueBytes", o.maxQueueBytes, 8 * 1024 * 1024),
    maxFrameBytes: positiveInt("maxFrameBytes", o.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES),
    maxSnapshotBytes: positiveInt("maxSnapshotBytes", o.maxSnapshotBytes, 1024 * 1024 * 1024),
    snapshotChunkBytes: positiveInt("snapshotChunkBytes", o.snapshotChunkBytes, DEFAULT_SNAPSHOT_CHUNK_BYTES),
    snapshotWindowChunks: positiveInt("snapshotWindowChunks", o.snapshotWindowChunks, DEFAULT_SNAPSHOT_WINDOW_CHUNKS),
    snapshotStallTimeoutMs: positiveInt("snapshotStallTimeoutMs", o.snapshotStallTimeoutMs, 10_000),
    pingIntervalMs,
    deadPeerTimeoutMs: positiveInt("deadPeerTimeoutMs", o.deadPeerTimeoutMs, 5 * pingIntervalMs),
    handshakeTimeoutMs: positiveInt("handshakeTimeoutMs", o.handshakeTimeoutMs, 5000),
    backoff: o.backoff ?? {},
  };
}
