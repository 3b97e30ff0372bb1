// Concord's metrics on prom-client: one registry per member holding the concord_* families, then prom-client's
// default process_* and nodejs_* metrics.
//
// Hot path: prom-client's `labels(…)` builds a labels object and binds a fresh child on every call, so the series
// fed per request or per scrape keep their children here (`requestAnswered`, `peer`).

import { collectDefaultMetrics, Counter, exponentialBuckets, Gauge, Histogram, Registry } from "prom-client";
import type { Role } from "../raft/types.js";

/** `count` buckets start, start·factor, …, rounded to 6 significant digits so that `le` labels read cleanly. */
function roundedBuckets(start: number, factor: number, count: number): number[] {
  return exponentialBuckets(start, factor, count).map((b) => Number(b.toPrecision(6)));
}

/** 50µs … 3.3s: an NVMe fdatasync is tens of µs, a saturated disk seconds. */
export const FSYNC_BUCKETS = roundedBuckets(0.00005, 2, 17);
/** 100µs … 1.6s: loopback round trips to cross-region ones. */
export const RTT_BUCKETS = roundedBuckets(0.0001, 2, 15);
/** 100µs … 3.3s for client requests (a lock wait is not a request: it returns when queued). */
export const REQUEST_BUCKETS = roundedBuckets(0.0001, 2, 16);
/** 1ms … 33s to write a snapshot durably. */
const SNAPSHOT_BUCKETS = roundedBuckets(0.001, 2, 16);

/**
 * Feeds a counter from a cumulative total kept elsewhere (a peer link's or the WAL's counter, read at scrape time):
 * each call adds what the total gained since the last one. A total below the last one means its source started
 * again from 0 (a peer link was replaced): all of it is new.
 */
export class CounterFollower {
  private followed = 0;
  constructor(private readonly counter: { inc(by: number): void }) {}
  follow(total: number): void {
    if (!(total >= 0) || total === Infinity) throw new RangeError(`counter follow: expected a finite total >= 0, got ${total}`);
    this.counter.inc(total >= this.followed ? total - this.followed : total);
    this.followed = total;
  }
}

/** The series kept for one peer (another member of the configuration). */
export interface PeerSeries {
  connected: Gauge.Internal<"peer">;
  dropped: CounterFollower;
  rtt: Histogram.Internal<"peer">;
}

export interface ConcordMetrics {
  registry: Registry;
  raftTerm: Gauge;
  /** One series per role; exactly one is 1. Set with `setRole`. */
  raftRole: Gauge<"role">;
  raftHasLeader: Gauge;
  raftLeaderChanges: Counter;
  raftCommitIndex: Gauge;
  raftAppliedIndex: Gauge;
  proposals: Counter;
  /** {reason}: the ProposalError code in lower case */
  proposalsFailed: Counter<"reason">;
  proposalsPending: Gauge;
  fsyncSeconds: Histogram;
  /** Follows the WAL's byte total. */
  walBytes: CounterFollower;
  walReleasedReads: CounterFollower;
  snapshots: Counter;
  snapshotSeconds: Histogram;
  /** {peer}: fed through `peer(…)`, which keeps the children. */
  peerRttSeconds: Histogram<"peer">;
  peerConnected: Gauge<"peer">;
  peerDroppedMessages: Counter<"peer">;
  /** {op, code}: code is OK or the error code answered. Fed by `requestAnswered`. */
  clientRequests: Counter<"op" | "code">;
  /** {op} */
  clientRequestSeconds: Histogram<"op">;
  clientConnections: Gauge;
  /** {reason}: limit, auth, protocol, tls */
  clientConnectionsRefused: Counter<"reason">;
  leases: Gauge;
  locksHeld: Gauge;
  lockWaiters: Gauge;
  elections: Gauge;
  watchers: Gauge;
  kvKeys: Gauge;
  kvRevision: Gauge;
  /** Bytes of replicated state (as the state machine counts them against the quota), and the quota. */
  stateBytes: Gauge;
  quotaBytes: Gauge;
  /** {alarm}: 1 while the cluster-wide alarm is raised (NO_SPACE), else 0. */
  alarm: Gauge<"alarm">;
  setRole(role: Role): void;
  /** Counts one answered client request and its latency. */
  requestAnswered(op: string, code: string, seconds: number): void;
  /** The series of this peer (concord_peer_*{peer}), created on first use. */
  peer(peer: string): PeerSeries;
  /** Peers that have series. */
  peers(): IterableIterator<string>;
  /** Drops a peer's series (it left the configuration). */
  removePeer(peer: string): void;
  /** `fn` runs before every exposition, to refresh gauges that are cheaper to read than to track. */
  onCollect(fn: () => void): void;
  /** The text exposition (prom-client's `metrics()`, after the collectors ran). */
  expose(): Promise<string>;
}

const ROLES: readonly Role[] = ["follower", "pre-candidate", "candidate", "leader"];

export function createConcordMetrics(): ConcordMetrics {
  const registry = new Registry();
  const registers = [registry];
  const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers });
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  const histogram = <L extends string = never>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new Histogram<L>({ name, help, labelNames, buckets, registers });

  const requestSeries = new Map<string, { seconds: Histogram.Internal<"op">; answered: Map<string, Counter.Internal> }>();
  const peerSeries = new Map<string, PeerSeries>();
  const collectors: (() => void)[] = [];

  const metrics: ConcordMetrics = {
    registry,
    raftRole: gauge("concord_raft_role", "1 for the role this member is in, 0 for the others.", ["role"]),
    raftTerm: gauge("concord_raft_term", "Current Raft term."),
    raftHasLeader: gauge("concord_raft_has_leader", "1 when this member knows a leader, else 0."),
    raftLeaderChanges: counter("concord_raft_leader_changes_total", "Times the leader known to this member changed."),
    raftCommitIndex: gauge("concord_raft_commit_index", "Highest log index known to be committed."),
    raftAppliedIndex: gauge("concord_raft_applied_index", "Highest log index applied to the state machine."),
    proposals: counter("concord_proposals_total", "Commands proposed to Raft by this member."),
    proposalsFailed: counter(
      "concord_proposals_failed_total",
      "Proposals refused or failed while waiting, by reason: not_leader, unavailable (no leader, a leadership transfer under way, the member failed), proposal_lost (replaced by a new leader's entry), timeout (not applied within the request timeout: its outcome is unknown), shutting_down.",
      ["reason"],
    ),
    proposalsPending: gauge("concord_proposals_pending", "Proposals waiting to be committed and applied."),
    fsyncSeconds: histogram("concord_fsync_seconds", "Latency of WAL fdatasync calls (one per batch).", [], FSYNC_BUCKETS),
    walBytes: new CounterFollower(counter("concord_wal_written_bytes_total", "Bytes appended to the WAL.")),
    walReleasedReads: new CounterFollower(
      counter(
        "concord_wal_released_entry_reads_total",
        "WAL records read back for log entries no longer held in memory (a follower catching up from far behind, a slow apply).",
      ),
    ),
    snapshots: counter("concord_snapshots_total", "Snapshots this member took and saved durably."),
    snapshotSeconds: histogram(
      "concord_snapshot_seconds",
      "Time to write a snapshot durably (the state encoded, its save to the fsync).",
      [],
      SNAPSHOT_BUCKETS,
    ),
    peerRttSeconds: histogram(
      "concord_peer_rtt_seconds",
      "Round-trip time to each peer (heartbeat to response).",
      ["peer"],
      RTT_BUCKETS,
    ),
    peerConnected: gauge(
      "concord_peer_connected",
      "1 while the outbound connection to the peer (a member of the configuration) is open, else 0.",
      ["peer"],
    ),
    peerDroppedMessages: counter(
      "concord_peer_dropped_messages_total",
      "Raft messages to the peer dropped because its connection was down or its send queue full (Raft re-sends).",
      ["peer"],
    ),
    clientRequests: counter(
      "concord_client_requests_total",
      "Client requests answered, by operation and result code.",
      ["op", "code"],
    ),
    clientRequestSeconds: histogram(
      "concord_client_request_seconds",
      "Client request latency, receipt to answer.",
      ["op"],
      REQUEST_BUCKETS,
    ),
    clientConnections: gauge("concord_client_connections", "Open client connections."),
    clientConnectionsRefused: counter(
      "concord_client_connections_refused_total",
      "Client connections refused, by reason: limit (--max-connections), auth (hello refused: token or forwarding proof), protocol (unsupported protocol version), tls (TLS handshake failed).",
      ["reason"],
    ),
    leases: gauge("concord_leases", "Live leases."),
    locksHeld: gauge("concord_locks_held", "Locks (or semaphore slots) currently held."),
    lockWaiters: gauge("concord_lock_waiters", "Lock waiters queued."),
    elections: gauge("concord_election_candidates", "Candidates over every election (the coordination recipe), leaders included."),
    watchers: gauge("concord_watchers", "Active watch streams on this member."),
    kvKeys: gauge("concord_kv_keys", "Keys in the store."),
    kvRevision: gauge("concord_kv_revision", "Current store revision."),
    stateBytes: gauge(
      "concord_state_bytes",
      "Bytes the replicated state holds, as counted against the storage quota (--quota-bytes).",
    ),
    quotaBytes: gauge("concord_quota_bytes", "The storage quota in force (replicated: the leader's --quota-bytes)."),
    alarm: gauge(
      "concord_alarm",
      "1 while a cluster-wide alarm is raised (NO_SPACE: the state reached the quota; writes that add data fail).",
      ["alarm"],
    ),
    setRole(role: Role): void {
      for (const [r, child] of roleChildren) child.set(r === role ? 1 : 0);
    },
    requestAnswered(op, code, seconds) {
      let series = requestSeries.get(op);
      if (series === undefined) {
        series = { seconds: metrics.clientRequestSeconds.labels(op), answered: new Map() };
        requestSeries.set(op, series);
      }
      let answered = series.answered.get(code);
      if (answered === undefined) {
        answered = metrics.clientRequests.labels(op, code);
        series.answered.set(code, answered);
      }
      answered.inc();
      series.seconds.observe(seconds);
    },
    peer(peer) {
      let series = peerSeries.get(peer);
      if (series === undefined) {
        series = {
          connected: metrics.peerConnected.labels(peer),
          dropped: new CounterFollower(metrics.peerDroppedMessages.labels(peer)),
          rtt: metrics.peerRttSeconds.labels(peer),
        };
        peerSeries.set(peer, series);
      }
      return series;
    },
    peers: () => peerSeries.keys(),
    removePeer(peer) {
      if (!peerSeries.delete(peer)) return;
      metrics.peerConnected.remove(peer);
      metrics.peerDroppedMessages.remove(peer);
      metrics.peerRttSeconds.remove(peer);
    },
    onCollect(fn) {
      collectors.push(fn);
    },
    async expose() {
      for (const collect of collectors) collect();
      return registry.metrics();
    },
  };
  // Every role series exists from the start, so a dashboard sees 0 rather than no data.
  const roleChildren = new Map(ROLES.map((r) => [r, metrics.raftRole.labels(r)]));
  metrics.setRole("follower");

  // The process, under the names Concord's dashboards used before prom-client's defaults (below) were added.
  gauge("concord_process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.").set(
    Math.floor(Date.now() / 1000),
  );
  new Gauge({
    name: "concord_process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: "concord_process_heap_used_bytes",
    help: "V8 heap in use, in bytes.",
    registers,
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new Gauge({
    name: "concord_process_array_buffers_bytes",
    help: "Memory held by ArrayBuffers and Buffers (outside the V8 heap), in bytes.",
    registers,
    collect() {
      this.set(process.memoryUsage().arrayBuffers);
    },
  });
  collectDefaultMetrics({ register: registry });
  return metrics;
}
