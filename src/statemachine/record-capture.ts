// The key records of a KvStore as they were at one moment, gathered a run at a time while the store keeps
// changing: how a snapshot of millions of keys is taken without stopping the event loop for the 1,000,000 map
// lookups it needs (see SnapshotJob).
//
// At the start it takes a frozen view of the sorted key list (SortedKeys.freeze: the list's chunks, copied on
// write from then on, so the view costs O(keys / 512)) — the keys at that moment, in order. Then step() looks
// their records up, a run at a time. Between steps the store may put, delete, expire and re-create keys; it calls
// preserve(key, prev) before it replaces or removes a record, and the capture keeps the first such pre-image of
// each key.
//
// Exactness: records are never mutated in place (a put stores a new KeyValue; only its value's storage may move,
// bytes unchanged — see snapshot-job.ts), so for every key k of the start list not yet looked up, either
// k was never replaced or removed since the start, and the store's record of k is the one it had then, or it was,
// and the first pre-image preserved for k is that record. Keys created after the start are not in the list.
// So `records` ends up exactly the store's records at the start, in key order.

import type { KeyValue } from "./commands.js";

export class RecordCapture {
  /** The records at the start, in key order; complete once done. */
  readonly records: KeyValue[];
  private readonly preImages = new Map<string, KeyValue>();
  /** The next key to look up: runs[run][at], the records[next]-th. */
  private run = 0;
  private at = 0;
  private next = 0;

  constructor(
    /** The keys at the start, in order, as sorted runs that do not change (SortedKeys.freeze). */
    private readonly runs: readonly (readonly string[])[],
    count: number,
    private readonly lookup: (key: string) => KeyValue | undefined,
    /** Told when the capture is complete or cancelled: the store stops calling preserve(). */
    private readonly detach: (capture: RecordCapture) => void,
  ) {
    this.records = new Array(count);
    if (count === 0) detach(this);
  }

  get done(): boolean {
    return this.next === this.records.length;
  }

  /** The store is about to replace or remove `prev`, the record of `key`. */
  preserve(key: string, prev: KeyValue): void {
    if (!this.preImages.has(key)) this.preImages.set(key, prev);
  }

  /**
   * Looks up the records of keys until `budget` is spent, each charged `charge(record)`; returns what was spent.
   * A positive budget always makes progress (at least one record) while any is left.
   */
  step(budget: number, charge: (kv: KeyValue) => number): number {
    const { runs, records, preImages } = this;
    let { run, at, next } = this;
    let spent = 0;
    while (next < records.length && spent < budget) {
      const keys = runs[run];
      const key = keys[at];
      const kv = (preImages.size > 0 ? preImages.get(key) : undefined) ?? this.lookup(key);
      if (kv === undefined) throw new Error(`record capture: key ${key} has neither a record nor a pre-image`);
      records[next++] = kv;
      spent += charge(kv);
      if (++at === keys.length) {
        run++;
        at = 0;
      }
    }
    this.run = run;
    this.at = at;
    this.next = next;
    if (this.done) this.cancel();
    return spent;
  }

  /** Stops following the store (the pre-images are dropped). */
  cancel(): void {
    this.preImages.clear();
    this.detach(this);
  }
}
