import { CompactedError, UnavailableError } from "./errors.js";
import { assert } from "../assert.js";
import type { Storage } from "./storage.js";
import { entrySize, type Entry, type Snapshot } from "./types.js";

/**
 * Entries and a snapshot not yet persisted by the host. `offset` is the index `entries[0]` has (or would have).
 * Entries in [offset, offsetInProgress) and a snapshot with `snapshotInProgress` were handed to the host in a
 * Ready whose write has not completed; a host may have several such writes in flight (etcd's async storage
 * writes), so the next Ready carries only what is not in progress.
 * Invariants: if `snapshot` is set, offset === snapshot index + 1; offset <= offsetInProgress <= offset + entries.length.
 */
class Unstable {
  snapshot: Snapshot | undefined = undefined;
  snapshotInProgress = false;
  entries: Entry[] = [];
  offsetInProgress: number;
  constructor(public offset: number) {
    this.offsetInProgress = offset;
  }

  /** Entries not yet handed to the host. */
  entriesToPersist(): Entry[] {
    return this.entries.slice(this.offsetInProgress - this.offset);
  }

  hasEntriesToPersist(): boolean {
    return this.offsetInProgress < this.offset + this.entries.length;
  }

  snapshotToPersist(): Snapshot | undefined {
    return this.snapshotInProgress ? undefined : this.snapshot;
  }

  /** Everything unstable now was handed to the host in a Ready. */
  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  /** The host persisted entries up to (index, term): drop them, unless they were since overwritten. */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    // A term mismatch means the write was of entries since overwritten by a newer leader's: keep ours.
    if (t === undefined || t !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replace everything unstable; the host's storage truncates the stable suffix when it persists these.
      this.offset = after;
      this.offsetInProgress = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (const e of ents) this.entries.push(e);
      // Entries from `after` on that were in progress are replaced: the new ones go out in the next Ready.
      if (this.offsetInProgress > after) this.offsetInProgress = after;
    }
  }
}

/**
 * The node's view of its log: what the host has persisted (`storage`) followed by what it has not (`unstable`).
 * Invariants: applied <= committed <= lastIndex; committed never decreases.
 */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;
  /** The last committed index handed to the host to apply (>= applied; entries in between are in flight). */
  applying: number;

  constructor(readonly storage: Storage) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** The term of entry i; throws CompactedError / UnavailableError outside [firstIndex-1, lastIndex]. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(i, dummy + 1);
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    return this.storage.term(i);
  }

  /** The term of entry i, or 0 when it is compacted or unavailable. */
  termOrZero(i: number): number {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return 0;
    return this.term(i);
  }

  matchTerm(i: number, t: number): boolean {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return false;
    return this.term(i) === t;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The follower's side of the consistency check: if our log has (prevIndex, prevTerm), append `ents` after it,
   * overwriting only a conflicting suffix (never a matching one: a delayed, shorter append must not truncate),
   * and advance commit up to min(committed, last new index). Returns the last new index, or -1 on mismatch.
   */
  maybeAppend(prevIndex: number, prevTerm: number, committed: number, ents: Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNew = prevIndex + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      assert(conflict > this.committed, () => `conflict at ${conflict} with committed entry (committed ${this.committed})`);
      this.append(ents.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    assert(ents[0].index - 1 >= this.committed, () => `append at ${ents[0].index} overwrites committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** The index of the first entry of `ents` that is new or conflicts with ours; 0 when all are already here. */
  private findConflict(ents: Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`. Entries above it certainly differ
   * from a log whose entry at `index` has `term`, so the leader can skip them in one round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = Math.min(index, this.lastIndex()); ; i--) {
      if (i < this.firstIndex() - 1) return { index: i + 1 > 0 ? i + 1 : 0, term: 0 };
      const t = this.termOrZero(i);
      if (t <= term) return { index: i, term: t };
    }
  }

  /** Entries in [lo, hi) bounded by `maxBytes` (at least one) from storage and unstable. */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    assert(hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) past last index ${this.lastIndex()}`);
    let out: Entry[] = [];
    let bytes = 0;
    const uOff = this.unstable.offset;
    if (lo < uOff) {
      out = this.storage.entries(lo, Math.min(hi, uOff), maxBytes);
      if (out.length < Math.min(hi, uOff) - lo) return out; // byte limit reached in stable entries
      for (const e of out) bytes += entrySize(e);
    }
    for (let i = Math.max(lo, uOff); i < hi; i++) {
      const e = this.unstable.entries[i - uOff];
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Up to `maxEntries` entries from index i on, bounded by `maxBytes`. */
  entriesFrom(i: number, maxBytes: number, maxEntries: number): Entry[] {
    const last = this.lastIndex();
    if (i > last) return [];
    return this.slice(i, Math.min(last + 1, i + maxEntries), maxBytes);
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), () => `commit ${index} is past the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** The Figure 8 rule: commit `index` by counting replicas only if it is an entry of the current term. */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.termOrZero(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(index <= this.committed && index >= this.applied, () =>
      `applied ${index} is outside [applied ${this.applied}, committed ${this.committed}]`,
    );
    this.applied = index;
    if (this.applying < index) this.applying = index;
  }

  /** The host was handed entries (or a snapshot) to apply up to `index`. */
  acceptApplying(index: number): void {
    if (this.applying < index) this.applying = index;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applying && this.committed >= this.firstIndex();
  }

  /** Committed entries not yet handed to the host to apply, the first `maxEntries` of them. */
  nextCommittedEntries(maxEntries = Infinity): Entry[] {
    const lo = Math.max(this.applying + 1, this.firstIndex());
    if (this.committed < lo) return [];
    return this.slice(lo, Math.min(this.committed + 1, lo + maxEntries));
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Install a snapshot: everything up to its index is committed and the log restarts after it. */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }
}
