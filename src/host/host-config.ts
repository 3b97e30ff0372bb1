// What a host is configured with: the parts of a member's configuration (src/server/config.ts) that the
// deterministic host uses. A member derives it from its flags; the simulator draws it per seed.

import type { RaftConfig } from "../raft/node.js";
import type { NodeId } from "../raft/types.js";
import type { DurableStorageOptions } from "../storage/durable-storage.js";
import type { TokenTable } from "./auth.js";
import type { AutoCompaction } from "./auto-compaction.js";

export interface HostConfig {
  /** This member's id in the cluster, e.g. "n1". */
  name: NodeId;
  clusterId: string;
  dataDir: string;
  /** Every founding member's peer URL by name, this one included. */
  initialCluster: ReadonlyMap<NodeId, string>;
  /** Client URLs of the members that are known, this one included (to tell clients where the leader is). */
  clientUrls: ReadonlyMap<NodeId, string>;
  /** A new member joining an existing cluster: starts empty, without bootstrapping a configuration. */
  join: boolean;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Take a snapshot after this many applied entries (see snapshot-policy.ts)... */
  snapshotEntries: number;
  /** ...or after this many bytes of entries. */
  snapshotBytes: number;
  /**
   * A snapshot is taken, and a snapshot restored, a run per event-loop turn (StateMachine.beginSnapshot and
   * beginRestore): the work of one run, in bytes of key records (each also charged a fixed amount).
   * DEFAULT_SNAPSHOT_STEP_BYTES when absent.
   */
  snapshotStepBytes?: number;
  /**
   * The snapshot's pieces, each written to its file as it fills (StateMachine.beginSnapshot): SNAPSHOT_PIECE_BYTES
   * when absent. The simulator draws small ones, so that a snapshot spans many pieces and reuses them.
   */
  snapshotPieceBytes?: number;
  /**
   * How far a snapshot job may run ahead of its file's writes, in bytes handed over and not yet written: past it,
   * the job waits for the disk before its next run. DEFAULT_SNAPSHOT_BACKLOG_BYTES when absent; the simulator draws
   * small ones, so that jobs wait.
   */
  snapshotBacklogBytes?: number;
  /**
   * Committed entries a Ready carries at most (Raft's maxCommittedEntriesPerReady); after a Ready that full, the
   * ready loop lets a turn pass. So a member catching up by tens of thousands of entries applies them a batch
   * per turn instead of stopping its loop for as long. DEFAULT_APPLY_ENTRIES_PER_TURN when absent.
   */
  applyEntriesPerTurn?: number;
  /** Readies taken before the oldest one's write completed (1: one at a time). */
  readiesInFlight: number;
  /** Raft options beyond the timing ones; the core's defaults when absent. */
  raft?: Partial<Pick<RaftConfig, "preVote" | "checkQuorum" | "maxInflight" | "maxInflightBytes" | "maxBatchBytes" | "maxBatchEntries">>;
  storage?: Pick<DurableStorageOptions, "segmentBytes" | "keepSegments" | "keepSnapshots" | "repair" | "memoryLogBytes">;
  /**
   * The storage quota this member establishes while it leads (it proposes setQuota when the replicated quota
   * differs); none proposed when absent. Members should agree: the current leader's value is the cluster's.
   */
  quotaBytes?: number;
  /** The history compaction this member proposes while it leads (auto-compaction.ts); none when absent. */
  autoCompaction?: AutoCompaction;
  /** Deadline of a proposal, and of a request forwarded to the leader. */
  requestTimeoutMs: number;
  /** Client connections: frame size, requests in flight per connection, connections, slow-consumer threshold. */
  maxRequestBytes: number;
  maxInflightPerConnection: number;
  maxConnections: number;
  maxBufferedBytes: number;
  /** What a follower forwarding writes presents to the leader (an HMAC of the cluster secret). */
  forwardProof: string;
  /** Bearer tokens and their permissions; everyone may do everything when absent (and runtime auth disabled). */
  tokens?: TokenTable;
  /**
   * Why this member must not enable runtime auth (its forwarding key, which also keys user tokens, is one a
   * client can learn), or undefined. See src/server/peer-auth.ts.
   */
  runtimeAuthRefusal?: string;
  /** How long a runtime user's token is valid. Default 5 minutes. */
  userTokenTtlMs?: number;
}

/** Readies in flight in a member unless configured otherwise; group commit merges their writes anyway. */
export const DEFAULT_READIES_IN_FLIGHT = 8;

/** About 10 ms of applying puts on this project's 2-core benchmark machine (bench/statemachine.ts: 100-160k/s). */
export const DEFAULT_APPLY_ENTRIES_PER_TURN = 1024;

/**
 * About 2.5 ms of snapshot work on this project's 2-core benchmark machine (bench/statemachine.ts measures it). At
 * 4 MiB (~10 ms alone, more beside three busy processes) the stall benchmark read 65–190 ms stalls during a
 * million keys' snapshot where 1 MiB read 37–94 (docs/benchmarks.md, "Snapshots at 1,000,000 keys").
 */
export const DEFAULT_SNAPSHOT_STEP_BYTES = 1 << 20;

/**
 * Bytes of entries in flight to one follower (Raft's maxInflightBytes) unless configured otherwise. Unbounded, a
 * follower caught up by a snapshot at a million keys had the leader fill its whole window of 256 appends at its
 * first ack, each read back from the WAL (the memory log holds the newest 1 MiB): 767-988 ms stalls on the leader
 * (bench:snapshot-stall --catch-up). With 4 MiB in flight each ack lets about one append of up to 1 MiB go; in
 * ordinary replication a follower has a few Readies' entries in flight, far less.
 */
export const DEFAULT_MAX_INFLIGHT_BYTES = 4 << 20;

/** Two of the snapshot file's syncs (one starts every 4 MiB written): the disk stays busy, the pieces few. */
export const DEFAULT_SNAPSHOT_BACKLOG_BYTES = 8 << 20;
