import { CompactedError, UnavailableError } from "./errors.js";
import { assert } from "../assert.js";
import {
  EntryType,
  emptyConfState,
  emptyHardState,
  entrySize,
  type ConfState,
  type Entry,
  type HardState,
  attachReader,
  type NodeId,
  type Snapshot,
  type SnapshotReader,
} from "./types.js";

/**
 * What the core reads from stable storage. Every call is synchronous: the durable storage (src/storage) keeps
 * the log in memory (a MemoryStorage), its newest entries whole and older ones as terms, read back from the
 * write-ahead log when asked.
 * Errors: indices behind the snapshot throw CompactedError, indices past the last throw UnavailableError.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at least one if any exist, then stopping before `maxBytes` would be exceeded. */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** Term of entry i; i may be the snapshot's index. */
  term(i: number): number;
  /** Index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot, for a follower that fell behind the log. */
  snapshot(): Snapshot;
}

/**
 * A snapshot whose bytes are read by `load` when asked for, and kept only while someone holds them; `open` reads
 * them a range at a time instead (snapshotReader: what the transport streams to a follower from).
 */
export function lazySnapshot(metadata: Snapshot["metadata"], load: () => Uint8Array, open: () => SnapshotReader): Snapshot {
  let cached: WeakRef<Uint8Array> | undefined;
  const snapshot = {
    metadata,
    get data(): Uint8Array {
      let d = cached?.deref();
      if (!d) {
        d = load();
        cached = new WeakRef(d);
      }
      return d;
    },
  };
  return attachReader(snapshot, open);
}

/**
 * Reads entries back from where they were released to (the durable storage's WAL): those of [lo, hi), from lo,
 * at least one, stopping before `maxBytes` would be exceeded — Storage.entries' contract.
 */
export type ReleasedEntryReader = (lo: number, hi: number, maxBytes: number) => Entry[];

/**
 * The entries a MemoryStorage released (releaseEntries): (base, end] are no longer held, only their terms, as
 * runs (terms change rarely: a few numbers for any number of entries); `read` fetches them when the core asks.
 */
interface Released {
  /** The compaction point below them: the snapshot's index, and its term. */
  base: number;
  baseTerm: number;
  /** Flat pairs [firstIndex, term, firstIndex, term, …]: a run's term holds up to the next run's first index. */
  runs: number[];
  read: ReleasedEntryReader;
}

/**
 * The in-memory log, as etcd's MemoryStorage: `ents[0]` is a dummy entry at the snapshot's (index, term), so
 * the term of the snapshot index is always known. Hosts write it after persisting each Ready.
 *
 * A durable storage may release its oldest entries (releaseEntries): the log then holds only their terms and
 * reads them back through a reader when asked. `ents[0]` is then the dummy at the last released index, and
 * `released` covers (snapshot index, ents[0].index].
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: emptyConfState() }, data: new Uint8Array() };
  private ents: Entry[] = [dummyEntry(0, 0)];
  private released: Released | undefined;
  /** Sum of entrySize over the entries held (ents[1..]). */
  private held = 0;

  /**
   * A brand-new cluster's initial state: a snapshot at (index 1, term 1) holding the initial voters. A member
   * that joins later starts empty and receives this (or a later) snapshot from the leader, so it learns the
   * membership it never saw in the log.
   */
  static bootstrap(voters: NodeId[], data: Uint8Array = new Uint8Array()): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot({ metadata: { index: 1, term: 1, confState: { ...emptyConfState(), voters: [...voters] } }, data });
    // The term must cover the snapshot's term: the first election is then for term 2, and no leader shares a
    // term with the bootstrap entry (a leader must not mistake it for an entry of its own term).
    s.setHardState({ term: 1, vote: null, commit: 1 });
    return s;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const offset = this.ents[0].index;
    if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    let out: Entry[] = [];
    let bytes = 0;
    let i = lo;
    if (lo <= offset) {
      // Released entries first (this.released is set: lo >= firstIndex), then on into those held.
      const releasedHi = Math.min(hi, offset + 1);
      out = this.released!.read(lo, releasedHi, maxBytes);
      assert(
        out.length > 0 && out[0].index === lo && out.at(-1)!.index < releasedHi,
        () => `released entries [${lo}, ${releasedHi}) read back as [${out[0]?.index}, ${out.at(-1)?.index}]`,
      );
      if (out.length < releasedHi - lo) return out; // the byte limit was reached
      for (const e of out) bytes += entrySize(e);
      i = releasedHi;
    }
    for (; i < hi; i++) {
      const e = this.ents[i - offset];
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset && this.released !== undefined) return releasedTerm(this.released, i);
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i - offset >= this.ents.length) throw new UnavailableError(i, this.lastIndex());
    return this.ents[i - offset].term;
  }

  firstIndex(): number {
    return (this.released?.base ?? this.ents[0].index) + 1;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  /** Bytes of the entries held in memory (entrySize each), not counting those released. */
  heldBytes(): number {
    return this.held;
  }

  /**
   * Stop holding the oldest entries until at most `keepBytes` are held: the durable storage has them, and `read`
   * fetches them back when the core asks. Their terms stay. Entries released later join the same range.
   */
  releaseEntries(keepBytes: number, read: ReleasedEntryReader): void {
    if (this.held <= keepBytes) return;
    const released = (this.released ??= { base: this.ents[0].index, baseTerm: this.ents[0].term, runs: [], read });
    released.read = read;
    const runs = released.runs;
    let k = 0;
    while (this.held > keepBytes) {
      const e = this.ents[++k];
      if (runs.length === 0 || runs[runs.length - 1] !== e.term) runs.push(e.index, e.term);
      this.held -= entrySize(e);
    }
    this.ents = this.withDummy(this.ents.slice(k));
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace everything with a snapshot (a follower installing one, or recovery). Older snapshots are ignored. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index && this.snap.metadata.index !== 0) return;
    this.snap = snap;
    this.ents = [dummyEntry(snap.metadata.index, snap.metadata.term)];
    this.released = undefined;
    this.held = 0;
    if (this.hardState.commit < snap.metadata.index) this.hardState = { ...this.hardState, commit: snap.metadata.index };
  }

  /** Record a snapshot taken by the host at `index` (<= applied) and compact nothing yet. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    assert(index > this.snap.metadata.index, () => `snapshot index ${index} is not after ${this.snap.metadata.index}`);
    assert(index <= this.lastIndex(), () => `snapshot index ${index} is past the last index ${this.lastIndex()}`);
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /**
   * Once the snapshot at `index` is durable elsewhere, stop holding its bytes: `load` reads them back when a
   * lagging follower needs them (rare), cached only while someone still holds them.
   */
  releaseSnapshotData(index: number, load: () => Uint8Array, open: () => SnapshotReader): void {
    if (this.snap.metadata.index === index) this.snap = lazySnapshot(this.snap.metadata, load, open);
  }

  /** Discard entries up to and including `index` (which must be <= the last snapshot's index). */
  compact(index: number): void {
    const released = this.released;
    if (released !== undefined && index < this.ents[0].index) {
      if (index <= released.base) return;
      released.baseTerm = releasedTerm(released, index);
      released.base = index;
      dropRunsBefore(released.runs, index + 1);
      return;
    }
    this.released = undefined; // compacted past every released entry (if any): ents[0] may become the base
    const offset = this.ents[0].index;
    if (index <= offset) return;
    assert(index <= this.lastIndex(), () => `compact ${index} is past the last index ${this.lastIndex()}`);
    for (let i = 1; i <= index - offset; i++) this.held -= entrySize(this.ents[i]);
    this.ents = this.withDummy(this.ents.slice(index - offset));
  }

  /** `kept` with its first entry replaced by a dummy at the same (index, term), holding no data (nor counted). */
  private withDummy(kept: Entry[]): Entry[] {
    kept[0] = dummyEntry(kept[0].index, kept[0].term);
    return kept;
  }

  /** A conflicting append truncates the log after `keep`, a released index (or the base): nothing held stays. */
  private truncateReleased(released: Released, keep: number): void {
    const term = releasedTerm(released, keep);
    this.ents = [dummyEntry(keep, term)];
    this.held = 0;
    if (keep === released.base) {
      this.released = undefined;
      return;
    }
    let k = released.runs.length;
    while (k > 0 && released.runs[k - 2] > keep) k -= 2;
    released.runs.length = k;
  }

  /** Append entries, truncating any conflicting suffix first. Entries must be contiguous. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // all already compacted
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    if (this.released !== undefined && entries[0].index <= this.ents[0].index) this.truncateReleased(this.released, entries[0].index - 1);
    const offset = entries[0].index - this.ents[0].index;
    assert(offset <= this.ents.length, () => `missing log entry: last ${this.lastIndex()}, appending at ${entries[0].index}`);
    if (offset < this.ents.length) {
      // Truncate the conflicting suffix.
      for (let i = offset; i < this.ents.length; i++) this.held -= entrySize(this.ents[i]);
      this.ents.length = offset;
    }
    for (const e of entries) {
      this.ents.push(e);
      this.held += entrySize(e);
    }
  }
}

const NO_DATA = new Uint8Array();

const dummyEntry = (index: number, term: number): Entry => ({ term, index, type: EntryType.Normal, data: NO_DATA });

/** The term of released index i (base <= i, below the entries held). */
function releasedTerm(released: Released, i: number): number {
  if (i < released.base) throw new CompactedError(i, released.base + 1);
  if (i === released.base) return released.baseTerm;
  const runs = released.runs;
  // The last run starting at or before i: binary search over the pairs.
  let lo = 0;
  let hi = runs.length / 2 - 1;
  assert(hi >= 0 && runs[0] <= i, () => `released index ${i} is in no run of terms`);
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (runs[mid * 2] <= i) lo = mid;
    else hi = mid - 1;
  }
  return runs[lo * 2 + 1];
}

/** Drop the runs wholly before index `from`; the run holding it then starts there. */
function dropRunsBefore(runs: number[], from: number): void {
  let k = 0;
  while (k + 2 < runs.length && runs[k + 2] <= from) k += 2;
  runs.splice(0, k);
  if (runs.length > 0 && runs[0] < from) runs[0] = from;
}
