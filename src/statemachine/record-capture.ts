// The key records of a KvStore as they were at one moment, gathered a run at a time while the store keeps
// changing: how a snapshot of millions of keys is taken without stopping the event loop for the 1,000,000 map
// lookups it needs (see SnapshotJob).
//
// At the start it takes a frozen view of the sorted key list (SortedKeys.freeze: the list's chunks, copied on
// write from then on, so the view costs O(keys / 512)) — the keys at that moment, in order. Then step() visits
// those keys, a run at a time, handing each over with its pre-image when it has one. Between steps the
// store may put, delete, expire and re-create keys; it calls preserve(key, prev) before it replaces or removes a
// record, and the capture keeps the first such pre-image of each key, until it is cancelled.
//
// Exactness: for every key k of the start list, either k's record was never replaced or removed since the start,
// and the store's current record of k is the one it had then (the store changes a record only through set and
// remove, which call preserve first), or it was, and the first pre-image preserved for k is that record. Keys
// created after the start are not in the list. So visiting each key with "its pre-image, else the store's current
// record" gives exactly the store's records at the start, in key order.

import type { KeyValue } from "./commands.js";

export class RecordCapture {
  readonly count: number;
  private readonly preImages = new Map<string, KeyValue>();
  /** The next key to visit: runs[run][at], the next-th. */
  private run = 0;
  private at = 0;
  private next = 0;

  constructor(
    /** The keys at the start, in order, as sorted runs that do not change (SortedKeys.freeze). */
    private readonly runs: readonly (readonly string[])[],
    count: number,
    /** Told when the capture is cancelled: the store stops calling preserve(). */
    private readonly detach: (capture: RecordCapture) => void,
  ) {
    this.count = count;
    if (count === 0) detach(this);
  }

  /** Every key was visited. */
  get done(): boolean {
    return this.next === this.count;
  }

  /** The store is about to replace or remove `prev`, the record of `key`. */
  preserve(key: string, prev: KeyValue): void {
    if (!this.preImages.has(key)) this.preImages.set(key, prev);
  }

  /**
   * Visits keys until `budget` is spent, each charged what `visit(key, preImage)` returns (preImage undefined:
   * the store's current record is the one at the start); returns what was spent. A positive budget always makes
   * progress (at least one key) while any is left.
   */
  step(budget: number, visit: (key: string, preImage: KeyValue | undefined) => number): number {
    const { runs, preImages } = this;
    let { run, at, next } = this;
    let spent = 0;
    while (next < this.count && spent < budget) {
      const keys = runs[run];
      const key = keys[at];
      spent += visit(key, preImages.size > 0 ? preImages.get(key) : undefined);
      next++;
      if (++at === keys.length) {
        run++;
        at = 0;
      }
    }
    this.run = run;
    this.at = at;
    this.next = next;
    return spent;
  }

  /** Stops following the store (the pre-images are dropped). */
  cancel(): void {
    this.preImages.clear();
    this.detach(this);
  }
}
