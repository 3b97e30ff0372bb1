// Rebuilding the log from the records of the retained WAL segments, on top of the newest snapshot.
//
// The WAL is a history of effective operations on a MemoryStorage: every entries record [f..l] had
// f > the log's snapshot index when it was written (the writer drops already-compacted entries), so its
// effect was "truncate after f-1, then append f..l"; an install marker replaced the whole log; a compact
// marker dropped a prefix. Older segments are deleted once no entry they hold can still be live above the
// newest snapshot's index (see SegmentLiveness), so replaying the retained suffix above that index (the
// "base") gives exactly the live log:
// - positions <= base are covered by the snapshot and ignored;
// - a record [f..l] sets positions max(f, base+1)..l and removes every position > l (an l <= base removes
//   all of them: in the original history they were truncated);
// - an install marker (never newer than the base, which is the newest marker) removes every position;
// - a record may start above the current end while older history is still being replayed (its predecessors
//   lived in deleted segments and are overwritten later): the gap is kept as a hole, and a hole still
//   present at the end means entries are missing — corruption.

import type { Entry, HardState } from "../raft/types.js";
import { emptyHardState } from "../raft/types.js";

export class LogReplay {
  /** slots[i] holds the entry at index base + 1 + i, or undefined for a hole. */
  private readonly slots: (Entry | undefined)[] = [];
  private holes = 0;
  hardState: HardState = emptyHardState();

  constructor(readonly base: number) {}

  applyEntries(entries: readonly Entry[]): void {
    const first = entries[0].index;
    const last = first + entries.length - 1;
    const keepLength = Math.max(0, last - this.base);
    this.truncate(Math.min(this.slots.length, Math.max(0, first - 1 - this.base)));
    if (keepLength === 0) return;
    while (this.slots.length < first - 1 - this.base) {
      this.slots.push(undefined);
      this.holes++;
    }
    for (let i = Math.max(0, this.base + 1 - first); i < entries.length; i++) this.slots.push(entries[i]);
  }

  applyInstall(index: number): void {
    this.truncate(0);
    if (this.hardState.commit < index) this.hardState = { ...this.hardState, commit: index };
  }

  applyHardState(hs: HardState): void {
    this.hardState = hs;
  }

  private truncate(length: number): void {
    for (let i = length; i < this.slots.length; i++) if (this.slots[i] === undefined) this.holes--;
    this.slots.length = length;
  }

  /** The first missing index above the base, if the log has a hole. */
  firstHole(): number | undefined {
    if (this.holes === 0) return undefined;
    return this.base + 1 + this.slots.indexOf(undefined);
  }

  entries(): Entry[] {
    return this.slots as Entry[];
  }
}

/**
 * Per segment, an upper bound on the highest index of any entry it holds that may still be live. An entries
 * record [f..l] makes every earlier entry above l dead (truncated); an install marker makes all of them dead.
 * A segment whose bound is <= a durable snapshot's index holds nothing the log still needs.
 */
export class SegmentLiveness {
  private readonly bounds = new Map<number, number>();

  addSegment(seq: number): void {
    this.bounds.set(seq, 0);
  }

  removeSegment(seq: number): void {
    this.bounds.delete(seq);
  }

  onEntries(seq: number, last: number): void {
    for (const [s, b] of this.bounds) if (b > last) this.bounds.set(s, last);
    this.bounds.set(seq, Math.max(this.bounds.get(seq) ?? 0, last));
  }

  onInstall(): void {
    for (const s of this.bounds.keys()) this.bounds.set(s, 0);
  }

  bound(seq: number): number {
    return this.bounds.get(seq) ?? 0;
  }
}
