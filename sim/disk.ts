// One node's simulated disk: what survives a crash. A write is a batch of records — [snapshot?, ...entries,
// hardState?] in that order, as a WAL lays them out — made durable by one fsync. A crash before the fsync
// completes loses the batch, or (torn tail) keeps a prefix of its records: never the hard state of a batch
// unless the whole batch made it, because the hard state is its last record.

import { MemoryStorage } from "../src/raft/storage.js";
import { emptyHardState, type Entry, type HardState, type Snapshot } from "../src/raft/types.js";

export interface WriteBatch {
  hardState?: HardState;
  snapshot?: Snapshot;
  entries: Entry[];
}

export class Disk {
  hardState: HardState = emptyHardState();
  snapshot: Snapshot | undefined;
  /** Durable entries after the snapshot, contiguous. */
  entries: Entry[] = [];
  /** The highest commit index this disk ever held durably (for the "commit never decreases" invariant). */
  maxDurableCommit = 0;

  /** A disk holding a brand-new cluster's bootstrap state. */
  static bootstrapped(storage: MemoryStorage): Disk {
    const d = new Disk();
    d.snapshot = storage.snapshot();
    d.hardState = storage.initialState().hardState;
    d.maxDurableCommit = d.hardState.commit;
    return d;
  }

  /** Make the first `records` records of `batch` durable (all of them when omitted). */
  write(batch: WriteBatch, records = recordCount(batch)): void {
    let left = records;
    if (batch.snapshot && left > 0) {
      left--;
      this.installSnapshot(batch.snapshot);
    }
    const n = Math.min(left, batch.entries.length);
    if (n > 0) this.appendEntries(batch.entries.slice(0, n));
    left -= n;
    if (batch.hardState && left > 0) {
      this.hardState = { ...batch.hardState };
      this.maxDurableCommit = Math.max(this.maxDurableCommit, batch.hardState.commit);
    }
  }

  /** A snapshot the host took itself (written as its own file): entries up to `keepFrom - 1` are dropped. */
  saveHostSnapshot(snap: Snapshot, keepFrom: number): void {
    this.snapshot = snap;
    this.entries = this.entries.filter((e) => e.index >= keepFrom);
  }

  private installSnapshot(snap: Snapshot): void {
    if (this.snapshot && snap.metadata.index <= this.snapshot.metadata.index) return;
    this.snapshot = snap;
    this.entries = [];
    this.maxDurableCommit = Math.max(this.maxDurableCommit, snap.metadata.index);
  }

  private appendEntries(ents: Entry[]): void {
    const first = ents[0].index;
    const snapIndex = this.snapshot?.metadata.index ?? 0;
    if (this.entries.length === 0 && first > snapIndex + 1) {
      throw new Error(`disk: gap before entry ${first}: the durable log ends at the snapshot ${snapIndex}`);
    }
    const base = this.entries.length > 0 ? this.entries[0].index : first;
    const keep = first - base;
    if (keep < 0) {
      // Entries below our first one are covered by the snapshot; skip them.
      ents = ents.filter((e) => e.index >= base);
      if (ents.length === 0) return;
      this.entries.length = 0;
    } else if (keep > this.entries.length) {
      throw new Error(`disk: gap before entry ${first}: durable log ends at ${base + this.entries.length - 1}`);
    } else {
      this.entries.length = keep; // truncate the conflicting suffix
    }
    for (const e of ents) this.entries.push(e);
  }

  /** The in-memory storage a restarted node starts from. */
  recover(): MemoryStorage {
    const s = new MemoryStorage();
    const snapIndex = this.snapshot?.metadata.index ?? 0;
    if (this.snapshot) s.applySnapshot(this.snapshot);
    const live = this.entries.filter((e) => e.index > snapIndex);
    s.append(live);
    // As written: the durable commit may lag the snapshot (commit-only changes are not synced); the core
    // reconciles that itself on start.
    s.setHardState({ ...this.hardState });
    return s;
  }
}

export function recordCount(batch: WriteBatch): number {
  return (batch.snapshot ? 1 : 0) + batch.entries.length + (batch.hardState ? 1 : 0);
}
