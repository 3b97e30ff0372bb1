import { assert } from "../assert.js";
import { Inflights } from "./inflights.js";

/**
 * The leader's view of one follower (etcd's Progress).
 * - probe: we don't know where the follower's log ends; send one append per heartbeat interval and wait.
 * - replicate: the follower keeps up; stream appends optimistically (next advances on send), bounded by the
 *   inflight window.
 * - snapshot: the follower needs a snapshot; send nothing else until it reports back.
 * Invariant: match < next.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  state: ProgressState = "probe";
  /** The highest index known to be replicated on the follower. */
  match = 0;
  /** The next index to send. */
  next: number;
  /** In probe state: an append was sent since the last heartbeat; send no more until a response or heartbeat. */
  probeSent = false;
  /** In snapshot state: the snapshot index being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    maxInflightBytes: number,
    readonly isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      // The follower now has at least the snapshot; resume probing right after it.
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** An append of entries up to `lastIndex` was sent; `entries` > 0 means it carried entries. */
  sentEntries(lastIndex: number, entries: number, bytes: number): void {
    if (this.state === "replicate") {
      if (entries > 0) {
        this.inflights.add(lastIndex, bytes);
        this.next = lastIndex + 1;
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** A successful ack of `index`; returns false when it is stale (already known). */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the append at `rejected`, with the follower's hint `matchHint`: the next index to try.
   * Returns false when the rejection is stale (for an index we no longer care about).
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // Only a rejection of something above match is news; the next probe starts right after match.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the rejection of next-1 matters (others are duplicates or reordered).
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending must wait: probing with an append outstanding, a full window, or a snapshot underway. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  assertInvariants(): void {
    assert(this.match < this.next, () => `progress: match ${this.match} >= next ${this.next}`);
  }
}
