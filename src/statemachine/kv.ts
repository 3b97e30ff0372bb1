// The keyed store: current records only (no MVCC history; past events live in watch-history.ts).
//
// Representation: keys are strings, values are bytes. Keys are strings because a JS Map hashes strings
// natively and string comparison is the fastest ordered comparison JS offers, which makes point reads and the
// sorted index cheap; clients use text keys (paths like "config/db/url") in practice, and keys with lone
// surrogates are refused so every key has an exact UTF-8 form for the wire and the snapshot. Values are
// Uint8Array because they are opaque payloads (config blobs, serialized records), as in etcd.

import { assert } from "../assert.js";
import type { KeyValue, RangeOp } from "./commands.js";
import { RecordCapture } from "./record-capture.js";
import { SortedKeys } from "./sorted-keys.js";
import { recordBytes } from "./space.js";

export class KvStore {
  private readonly records = new Map<string, KeyValue>();
  private order = new SortedKeys();
  /** Space the current records take (space.ts). */
  private recordsBytes = 0;
  /** The bytes of the current records' values alone (what a repack of the value arenas keeps: byte-arena.ts). */
  private liveValueBytes = 0;
  /** Captures under way (record-capture.ts): told of every record before it is replaced or removed. */
  private readonly captures = new Set<RecordCapture>();

  static fromSorted(records: readonly KeyValue[]): KvStore {
    const store = new KvStore();
    for (const kv of records) {
      store.records.set(kv.key, kv);
      store.recordsBytes += recordBytes(kv);
      store.liveValueBytes += kv.value.length;
    }
    store.order = SortedKeys.fromSorted(records.map((kv) => kv.key));
    assert(store.records.size === records.length, "KvStore.fromSorted: duplicate keys");
    return store;
  }

  get size(): number {
    return this.records.size;
  }

  get bytes(): number {
    return this.recordsBytes;
  }

  get valueBytes(): number {
    return this.liveValueBytes;
  }

  get(key: string): KeyValue | undefined {
    return this.records.get(key);
  }

  /** Writes the record for `kv.key`, returning the one it replaces. */
  set(kv: KeyValue): KeyValue | undefined {
    const prev = this.records.get(kv.key);
    if (prev !== undefined && this.captures.size > 0) for (const c of this.captures) c.preserve(kv.key, prev);
    this.records.set(kv.key, kv);
    // Same key: only the value's size can differ.
    this.recordsBytes += prev === undefined ? recordBytes(kv) : kv.value.length - prev.value.length;
    this.liveValueBytes += kv.value.length - (prev?.value.length ?? 0);
    if (prev === undefined) this.order.insert(kv.key);
    return prev;
  }

  remove(key: string): KeyValue | undefined {
    const prev = this.records.get(key);
    if (prev === undefined) return undefined;
    if (this.captures.size > 0) for (const c of this.captures) c.preserve(key, prev);
    this.records.delete(key);
    this.recordsBytes -= recordBytes(prev);
    this.liveValueBytes -= prev.value.length;
    this.order.remove(key);
    return prev;
  }

  /** Keys starting with `prefix`, in order, strictly after `after` when given. */
  *keysWithPrefix(prefix: string, after?: string): Generator<string> {
    const resume = after !== undefined && after >= prefix;
    for (const key of this.order.scan(resume ? after : prefix, resume)) {
      if (!key.startsWith(prefix)) return;
      yield key;
    }
  }

  /** One page of a range read; `more` says a next page exists, continued with `after: cursor`. */
  range(op: RangeOp): { kvs: KeyValue[]; more: boolean; cursor?: string } {
    if (!op.prefix) {
      const kv = this.records.get(op.key);
      const visible = kv !== undefined && (op.after === undefined || op.key > op.after);
      return { kvs: visible ? [kv] : [], more: false };
    }
    const limit = op.limit ?? 0;
    const kvs: KeyValue[] = [];
    for (const key of this.keysWithPrefix(op.key, op.after)) {
      if (limit > 0 && kvs.length === limit) return { kvs, more: true, cursor: kvs[kvs.length - 1].key };
      kvs.push(this.records.get(key)!);
    }
    return { kvs, more: false };
  }

  /** Starts capturing every record as it is now, in key order, a run at a time (record-capture.ts). */
  capture(): RecordCapture {
    const capture = new RecordCapture(
      this.order.freeze(),
      this.order.size,
      (key) => this.records.get(key),
      (c) => {
        this.captures.delete(c);
        if (this.captures.size === 0) this.order.thaw();
      },
    );
    if (!capture.done) this.captures.add(capture);
    return capture;
  }
}
