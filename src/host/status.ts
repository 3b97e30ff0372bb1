// What a member says of itself — the `status` op and GET /status answer this (as JSON) — declared once, for the
// member that builds it (Replica.status), the harness and the CLI that read it, and the client library.

import type { RaftStatus } from "../raft/node.js";
import type { Alarm } from "../statemachine/commands.js";
import type { StorageStats } from "../storage/durable-storage.js";
import type { PeerStats, TransportStats } from "../transport/peer-stats.js";

export type { PeerStats };

export interface MemberStatus extends RaftStatus {
  /** The state machine's revision, compaction revision and key count. */
  revision: number;
  compactRevision: number;
  /** The automatic compaction policy this member applies while it leads ("revision:1000", "periodic:3600000ms"). */
  autoCompaction?: string;
  keys: number;
  /** Bytes the replicated state holds (as the state machine counts them) and the storage quota. */
  stateBytes: number;
  quotaBytes: number;
  /** Cluster-wide alarms raised (NO_SPACE: the state reached the quota; writes that add data are refused). */
  alarms: Alarm[];
  /** Index of the newest snapshot this member holds (0: none). */
  snapshotIndex: number;
  /** Current members with their URLs (clientUrl "" when unknown). */
  members: { id: string; peerUrl: string; clientUrl: string; role: "voter" | "learner" }[];
  transport: TransportStats;
  storage: StorageStats;
  /** Leases the leader keeps deadlines for; absent on other members. */
  leases?: number;
  /** Why the member stopped serving; absent while healthy. */
  fatal?: string;
}
