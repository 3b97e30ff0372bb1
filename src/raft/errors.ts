import type { NodeId } from "./types.js";

/** A proposal reached a node that is not the leader; `leaderId` is the leader it knows of, if any. */
export class NotLeaderError extends Error {
  readonly code = "NOT_LEADER";
  constructor(readonly leaderId: NodeId | null) {
    super(leaderId === null ? "not the leader, and no leader is known" : `not the leader; the leader is ${leaderId}`);
    this.name = "NotLeaderError";
  }
}

/** A proposal was refused for a reason other than leadership (a leadership transfer or a pending conf change). */
export class ProposalDroppedError extends Error {
  readonly code = "PROPOSAL_DROPPED";
  constructor(reason: string) {
    super(`proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

/** The requested index is behind the storage's snapshot. */
export class CompactedError extends Error {
  readonly code = "COMPACTED";
  constructor(index: number, firstIndex: number) {
    super(`index ${index} is compacted (first available index is ${firstIndex})`);
    this.name = "CompactedError";
  }
}

/** The requested index is beyond the storage's last index. */
export class UnavailableError extends Error {
  readonly code = "UNAVAILABLE";
  constructor(index: number, lastIndex: number) {
    super(`index ${index} is unavailable (last index is ${lastIndex})`);
    this.name = "UnavailableError";
  }
}
