// The keyed store: current records only (no MVCC history; past events live in watch-history.ts).
//
// Representation: keys are strings, values are bytes. Keys are strings because a JS Map hashes strings
// natively and string comparison is the fastest ordered comparison JS offers, which makes point reads and the
// sorted index cheap; clients use text keys (paths like "config/db/url") in practice, and keys with lone
// surrogates are refused so every key has an exact UTF-8 form for the wire and the snapshot. Values are opaque
// bytes (config blobs, serialized records), as in etcd.
//
// Layout: a record is not an object but a slot — a row of typed-array columns (where its value lies in the
// value chunks, its length, its revisions, version and lease) — and the map goes from key to slot. So a stored
// record costs the V8 heap its key string and its map entry only, and a major collection (which walks every live
// object) has a third of the objects to walk: at a million keys, 92 bytes of heap per key instead of 256, and a
// full collection of 74 ms instead of 168 (bench:statemachine). The price is paid by reads: they make the
// KeyValue they return (a small object and a view, young garbage once answered), about half a microsecond each
// here. A returned record never changes afterwards: values' bytes are never overwritten (value-chunks.ts).
//
// Nothing grows by copying all of itself: the rows are in blocks of BLOCK_ROWS, allocated as needed, and the map
// from key to slot is KEY_SHARDS maps, chosen by a hash of the key's end. A single array of rows doubled (a copy
// of tens of megabytes) and a single Map rehashed every entry when it filled: at 524,288 keys both happened in
// one put, which stopped a loaded member for 300-700 ms (CPU profile of bench:snapshot-stall); now each step
// of growth is a block of 768 KiB, and a rehash is of one shard, a sixteenth of the keys.
//
// Invariants: slotOf(k) = s ⇔ row s holds k's record; a slot is either in the map or on the free list; the
// value chunks hold exactly the values of the rows in the map (valueChunks.liveBytes = liveValueBytes).

import { assert } from "../assert.js";
import type { KeyValue, RangeOp } from "./commands.js";
import { utf8Length } from "./limits.js";
import { RecordCapture } from "./record-capture.js";
import { SortedKeys } from "./sorted-keys.js";
import { recordBytes, RECORD_OVERHEAD } from "./space.js";
import { ValueChunks } from "./value-chunks.js";

// Columns of a row, in one Float64Array (every field is an integer below 2^53).
const LOCATION = 0;
const LENGTH = 1;
const CREATE_REVISION = 2;
const MOD_REVISION = 3;
const VERSION = 4;
const LEASE = 5;
const ROW = 6;
/** Rows per block: 2^14 rows of 48 bytes, 768 KiB. */
const BLOCK_SHIFT = 14;
const BLOCK_MASK = (1 << BLOCK_SHIFT) - 1;
/** Maps from key to slot (a power of two). */
const KEY_SHARDS = 16;

/** The map of `key`: a hash of its last 8 UTF-16 units and its length (keys tend to differ at their end). */
function shardOf(key: string): number {
  const n = key.length;
  let h = n;
  for (let i = n > 8 ? n - 8 : 0; i < n; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 16)) & (KEY_SHARDS - 1);
}

/** Owners the sweep looks at per write while the value chunks hold too many dead bytes (sweepValues). */
const SWEEP_OWNERS_PER_WRITE = 32;
/** The sweep runs while the value chunks hold more than this many times the live bytes (plus the slack). */
const SWEEP_HELD_PER_LIVE = 1.25;
/** Dead bytes the chunks may hold before the sweep starts, whatever the live bytes: a small store never sweeps. */
const SWEEP_SLACK_BYTES = 4 << 20;
/** tightenValues moves the values of chunks whose live bytes are below this share of their size. */
const TIGHT_LIVE_SHARE = 0.75;
/** Dead bytes below which tightenValues leaves the chunks as they are (a pass over every row is not worth it). */
const TIGHT_SLACK_BYTES = 1 << 20;

/** What a snapshot writer takes from a record (snapshot.ts's SnapshotWriter). */
/** What KvStore.loader() loaded. */
export interface LoadedStore {
  kv: KvStore;
  /** The keys with a lease, in key order, and each one's lease: attached once the leases are granted. */
  leasedKeys: string[];
  leaseOfKey: number[];
}

export interface RecordSink {
  writeRecord(
    key: string,
    bytes: Uint8Array,
    start: number,
    length: number,
    createRevision: number,
    modRevision: number,
    version: number,
    lease: number,
  ): void;
}

/**
 * A number read from a Float64Array, as a small integer when it is one: V8 keeps a double read from a typed array
 * as a double, and an object field holding one is a separate heap number (four per record read); a small
 * integer is stored in the field itself. Measured: a third of put's apply time before this.
 */
function small(x: number): number {
  return x <= 0x3fffffff && x >= 0 ? x | 0 : x;
}

export class KvStore {
  private readonly slots: Map<string, number>[] = Array.from({ length: KEY_SHARDS }, () => new Map());
  /**
   * The last key looked up and its row: a put asks for its key's row three times (the key-count check, the
   * previous record, the write), and each ask of a map this large is a hash probe that misses the caches.
   * Forgotten whenever a key is added or removed, the only changes to a key's row.
   */
  private lastKey: string | undefined = undefined;
  private lastSlot: number | undefined = undefined;
  private keyCount = 0;
  /** Row s is at (s & BLOCK_MASK) * ROW in blocks[s >>> BLOCK_SHIFT]. */
  private readonly blocks: Float64Array[] = [];
  /** Rows below this have been used; free ones below it are on freeRows. */
  private rowsUsed = 0;
  private readonly freeRows: number[] = [];
  private readonly values = new ValueChunks();
  private order = new SortedKeys();
  /** Space the current records take (space.ts). */
  private recordsBytes = 0;
  /** Captures under way (record-capture.ts): told of every record before it is replaced or removed. */
  private readonly captures = new Set<RecordCapture>();

  /**
   * A store loaded from records handed over in key order (a snapshot being read: snapshot.ts's SnapshotParser),
   * by their fields, so that loading a million keys makes no object per record; finish() returns it, with the
   * keys that have a lease (in key order) and each one's lease, for the lease table to attach.
   */
  static loader(): RecordSink & { finish(): LoadedStore } {
    const store = new KvStore();
    const keys: string[] = [];
    const leasedKeys: string[] = [];
    const leaseOfKey: number[] = [];
    return {
      writeRecord(key, bytes, start, length, createRevision, modRevision, version, lease) {
        assert(keys.length === 0 || keys[keys.length - 1] < key, () => `KvStore.loader: ${key} out of order`);
        keys.push(key);
        store.fill(store.newRow(key), bytes, start, length, createRevision, modRevision, version, lease);
        if (lease !== 0) {
          leasedKeys.push(key);
          leaseOfKey.push(lease);
        }
      },
      finish() {
        store.order = SortedKeys.fromSorted(keys);
        return { kv: store, leasedKeys, leaseOfKey };
      },
    };
  }

  get size(): number {
    return this.keyCount;
  }

  get bytes(): number {
    return this.recordsBytes;
  }

  /** Bytes of the stored values alone. */
  get valueBytes(): number {
    return this.values.liveBytes;
  }

  /** Bytes the value chunks hold, live and dead (for the memory tests and benchmarks). */
  get valueChunkBytes(): number {
    return this.values.heldBytes;
  }

  has(key: string): boolean {
    return this.lookup(key) !== undefined;
  }

  get(key: string): KeyValue | undefined {
    const slot = this.lookup(key);
    return slot === undefined ? undefined : this.recordAt(key, slot);
  }

  /** Stores a copy of `kv` as the record of `kv.key`; returns the stored record (its value in the store's chunks). */
  set(kv: KeyValue): KeyValue {
    let slot = this.lookup(kv.key);
    if (slot !== undefined) {
      if (this.captures.size > 0) {
        const prev = this.recordAt(kv.key, slot);
        for (const c of this.captures) c.preserve(kv.key, prev);
      }
      const r = this.blocks[slot >>> BLOCK_SHIFT];
      const p = (slot & BLOCK_MASK) * ROW;
      this.recordsBytes -= r[p + LENGTH]; // fill() counts the new value
      this.values.release(r[p + LOCATION], r[p + LENGTH]);
    } else {
      slot = this.newRow(kv.key);
      this.order.insert(kv.key);
    }
    this.fill(slot, kv.value, 0, kv.value.length, kv.createRevision, kv.modRevision, kv.version, kv.lease);
    this.sweepValues();
    return this.recordAt(kv.key, slot);
  }

  remove(key: string): KeyValue | undefined {
    const slot = this.lookup(key);
    if (slot === undefined) return undefined;
    this.lastKey = undefined;
    const prev = this.recordAt(key, slot);
    if (this.captures.size > 0) for (const c of this.captures) c.preserve(key, prev);
    const r = this.blocks[slot >>> BLOCK_SHIFT];
    const p = (slot & BLOCK_MASK) * ROW;
    this.values.release(r[p + LOCATION], r[p + LENGTH]);
    r[p + LENGTH] = 0;
    this.slots[shardOf(key)].delete(key);
    this.keyCount--;
    this.freeRows.push(slot);
    this.recordsBytes -= recordBytes(prev);
    this.order.remove(key);
    this.sweepValues();
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
      const kv = this.get(op.key);
      const visible = kv !== undefined && (op.after === undefined || op.key > op.after);
      return { kvs: visible ? [kv] : [], more: false };
    }
    const limit = op.limit ?? 0;
    const kvs: KeyValue[] = [];
    for (const key of this.keysWithPrefix(op.key, op.after)) {
      if (limit > 0 && kvs.length === limit) return { kvs, more: true, cursor: kvs[kvs.length - 1].key };
      kvs.push(this.get(key)!);
    }
    return { kvs, more: false };
  }

  /** The row holding `key`'s record, or -1. A row changes only through set and remove (after preserve()). */
  slotOf(key: string): number {
    return this.lookup(key) ?? -1;
  }

  /** Hands the record in row `slot`, `key`'s, to `sink` without making a KeyValue; returns its value's length. */
  copyRecordTo(key: string, slot: number, sink: RecordSink): number {
    const r = this.blocks[slot >>> BLOCK_SHIFT];
    const p = (slot & BLOCK_MASK) * ROW;
    const length = r[p + LENGTH];
    const location = r[p + LOCATION];
    const chunk = this.values.chunkOf(location, length);
    sink.writeRecord(
      key,
      chunk,
      this.values.offsetIn(location),
      length,
      r[p + CREATE_REVISION],
      r[p + MOD_REVISION],
      r[p + VERSION],
      r[p + LEASE],
    );
    return length;
  }

  /**
   * Starts capturing every record as it is now, in key order, a run at a time (record-capture.ts): the capture
   * hands over the keys of this moment with the pre-image of each one changed since; the others' records are
   * this store's current ones (slotOf, copyRecordTo).
   */
  capture(): RecordCapture {
    const capture = new RecordCapture(this.order.freeze(), this.order.size, (c) => {
      this.captures.delete(c);
      if (this.captures.size === 0) this.order.thaw();
    });
    if (!capture.done) this.captures.add(capture);
    return capture;
  }

  private recordAt(key: string, slot: number): KeyValue {
    const r = this.blocks[slot >>> BLOCK_SHIFT];
    const p = (slot & BLOCK_MASK) * ROW;
    return {
      key,
      value: this.values.view(r[p + LOCATION], r[p + LENGTH]),
      createRevision: small(r[p + CREATE_REVISION]),
      modRevision: small(r[p + MOD_REVISION]),
      version: small(r[p + VERSION]),
      lease: small(r[p + LEASE]),
    };
  }

  private lookup(key: string): number | undefined {
    if (key === this.lastKey) return this.lastSlot;
    const slot = this.slots[shardOf(key)].get(key);
    this.lastKey = key;
    this.lastSlot = slot;
    return slot;
  }

  /** A free row for a key not in the store, counted with the key's bytes (fill() counts the value's). */
  private newRow(key: string): number {
    let slot = this.freeRows.pop();
    if (slot === undefined) {
      slot = this.rowsUsed++;
      if ((slot & BLOCK_MASK) === 0) this.blocks.push(new Float64Array((BLOCK_MASK + 1) * ROW));
    }
    this.slots[shardOf(key)].set(key, slot);
    this.lastKey = undefined;
    this.keyCount++;
    this.recordsBytes += RECORD_OVERHEAD + utf8Length(key);
    return slot;
  }

  /** Writes a record's fields into row `slot`, its value copied into the chunks and counted. */
  private fill(
    slot: number,
    bytes: Uint8Array,
    start: number,
    length: number,
    createRevision: number,
    modRevision: number,
    version: number,
    lease: number,
  ): void {
    const r = this.blocks[slot >>> BLOCK_SHIFT];
    const p = (slot & BLOCK_MASK) * ROW;
    r[p + LOCATION] = this.values.add(slot, bytes, start, length);
    r[p + LENGTH] = length;
    r[p + CREATE_REVISION] = createRevision;
    r[p + MOD_REVISION] = modRevision;
    r[p + VERSION] = version;
    r[p + LEASE] = lease;
    this.recordsBytes += length;
  }

  /**
   * Moves every value out of the chunks (but the one being filled) that are more than a quarter dead, in one pass
   * over the rows; returns the bytes of chunks dropped, net of those it filled. For a member gone idle (the
   * server's idle collector calls it at its first quiet look): the per-write sweep leaves the chunks up to twice
   * the live bytes plus SWEEP_SLACK_BYTES, which a store that stops writing keeps for good — measured, the values
   * of bench:compare's 10,000 overwritten keys: 4-6 MiB per member after 100,000 more keys. It copies at most the
   * live bytes (a few milliseconds at 100,000 keys of 256 bytes); values' bytes are never overwritten, so reads
   * made before keep theirs.
   */
  tightenValues(): number {
    const values = this.values;
    const held = values.heldBytes;
    if (held - values.liveBytes <= TIGHT_SLACK_BYTES) return 0;
    for (let slot = 0; slot < this.rowsUsed; slot++) {
      const r = this.blocks[slot >>> BLOCK_SHIFT];
      const p = (slot & BLOCK_MASK) * ROW;
      if (values.isInSparseChunk(r[p + LOCATION], r[p + LENGTH], TIGHT_LIVE_SHARE))
        r[p + LOCATION] = values.move(r[p + LOCATION], r[p + LENGTH], slot);
    }
    return held - values.heldBytes;
  }

  /**
   * While the value chunks hold more than SWEEP_HELD_PER_LIVE times the live bytes (plus slack), each write also
   * looks at the next SWEEP_OWNERS_PER_WRITE owners of the sparsest chunk and moves the values still there into
   * the chunk being filled; the chunk is dropped with its last value (value-chunks.ts). A bounded cost per write,
   * instead of a repack of every value at once (which at a million keys is a stall of its own). Measured on the
   * store alone, 1,000,000 keys of 256 bytes overwritten at random: the chunks held 2.0 times the live bytes with
   * the sweep before (row order, chunks more than half dead, at twice the live bytes), 1.25 times with this.
   */
  private sweepValues(): void {
    const values = this.values;
    if (values.heldBytes <= SWEEP_HELD_PER_LIVE * values.liveBytes + SWEEP_SLACK_BYTES) return;
    for (let n = 0; n < SWEEP_OWNERS_PER_WRITE; n++) {
      const slot = values.nextToClean();
      if (slot < 0) return;
      const r = this.blocks[slot >>> BLOCK_SHIFT];
      const p = (slot & BLOCK_MASK) * ROW;
      // A free row has length 0; a replaced value lies elsewhere: nothing to move.
      if (values.isBeingCleaned(r[p + LOCATION], r[p + LENGTH]))
        r[p + LOCATION] = values.move(r[p + LOCATION], r[p + LENGTH], slot);
    }
  }
}
