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
 * the log in memory (a MemoryStorage) and uses its write-ahead log only for recovery.
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
 * The in-memory log, as etcd's MemoryStorage: `ents[0]` is a dummy entry at the snapshot's (index, term), so
 * the term of the snapshot index is always known. Hosts write it after persisting each Ready.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: emptyConfState() }, data: new Uint8Array() };
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array() }];

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
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset];
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i - offset >= this.ents.length) throw new UnavailableError(i, this.lastIndex());
    return this.ents[i - offset].term;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace everything with a snapshot (a follower installing one, or recovery). Older snapshots are ignored. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index && this.snap.metadata.index !== 0) return;
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: new Uint8Array() }];
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
    const offset = this.ents[0].index;
    if (index <= offset) return;
    assert(index <= this.lastIndex(), () => `compact ${index} is past the last index ${this.lastIndex()}`);
    const kept = this.ents.slice(index - offset);
    kept[0] = { term: kept[0].term, index: kept[0].index, type: EntryType.Normal, data: new Uint8Array() };
    this.ents = kept;
  }

  /** Append entries, truncating any conflicting suffix first. Entries must be contiguous. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // all already compacted
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    assert(offset <= this.ents.length, () => `missing log entry: last ${this.lastIndex()}, appending at ${entries[0].index}`);
    if (offset < this.ents.length) this.ents.length = offset; // truncate the conflicting suffix
    for (const e of entries) this.ents.push(e);
  }
}
