// The key store's values, as bytes in chunks addressed by a number, instead of one Uint8Array view per value.
//
// Why: a V8 major collection costs time for every live object, and a million stored values as a million views
// (each a JS object) made those collections of a million-key member take 180-250 ms, its longest event-loop
// stalls. Here a value is a location — chunk id and offset in one number — and a length, kept in the store's
// typed-array columns (kv.ts), which the collector never walks. A view is made only when a record is read.
//
// Chunks start small and double up to 1 MiB (a small state does not pay for a megabyte); a value larger than a
// quarter chunk gets a chunk of its own. Bytes are never overwritten in place: a replaced or removed value's bytes
// are only counted dead, so a view handed out earlier keeps reading the bytes it was made with (it holds its
// chunk's buffer alive, whatever the store does afterwards). A chunk whose live bytes drop to zero is dropped.
// The store moves values out of chunks that are mostly dead (move(), driven by kv.ts's sweep), so the chunks hold
// at most about twice the live bytes plus the chunk being filled; an idle member moves them out of chunks a
// quarter dead too (kv.ts's tightenValues).
//
// Invariants: live[c] is the sum of the lengths of the stored values in chunk c; a chunk other than the one being
// filled is held only while live[c] > 0; liveBytes is the sum of live[]; heldBytes the sum of held buffers' sizes.

import { assert } from "../assert.js";

/** Locations: chunk * CHUNK_STRIDE + offset. Offsets stay below 2^20, ids below 2^32: exact in a double. */
const CHUNK_STRIDE = 2 ** 21;
const SIZE = 1 << 20;
const FIRST = 4096;
const EMPTY = new Uint8Array(0);
/**
 * move() copies a value up to this long byte by byte, a longer one through a view: the byte loop costs about
 * 1.2 ns a byte (1.2 µs at 1 KiB, against 0.07 µs with a view), the view about 100 bytes of young garbage.
 */
const BYTE_COPY_UP_TO = 1024;

export class ValueChunks {
  private buffers: (Uint8Array | undefined)[] = [];
  private live: number[] = [];
  private freeIds: number[] = [];
  /** The chunk being filled, and how much of it is used; -1: none yet. */
  private current = -1;
  private used = 0;
  /** Size of the last shared chunk made (chunks double up to SIZE). */
  private lastSize = 0;
  private liveTotal = 0;
  private heldTotal = 0;

  get liveBytes(): number {
    return this.liveTotal;
  }

  /** Bytes of the chunks held, the one being filled included. */
  get heldBytes(): number {
    return this.heldTotal;
  }

  /** Copies `length` bytes of `from` at `start` in; returns their location (any number for length 0). */
  add(from: Uint8Array, start = 0, length = from.length - start): number {
    if (length === 0) return 0;
    const location = this.place(length);
    const chunk = Math.floor(location / CHUNK_STRIDE);
    const source = start === 0 && length === from.length ? from : from.subarray(start, start + length); // a put's value is whole
    this.buffers[chunk]!.set(source, location - chunk * CHUNK_STRIDE);
    return location;
  }

  /** Room for `length` bytes, counted live; their location. */
  private place(length: number): number {
    let chunk: number;
    let at = 0;
    if (length > SIZE / 4) {
      chunk = this.newChunk(length);
    } else {
      if (this.current < 0 || this.used + length > this.buffers[this.current]!.length) {
        this.retireCurrent();
        this.lastSize = Math.min(SIZE, Math.max(FIRST, 2 * this.lastSize));
        this.current = this.newChunk(Math.max(this.lastSize, length));
        this.used = 0;
      }
      chunk = this.current;
      at = this.used;
      this.used += length;
    }
    this.live[chunk] += length;
    this.liveTotal += length;
    return chunk * CHUNK_STRIDE + at;
  }

  /** A view of the value at `location` (its bytes never change, whatever is stored or released later). */
  view(location: number, length: number): Uint8Array {
    if (length === 0) return EMPTY;
    const chunk = Math.floor(location / CHUNK_STRIDE);
    const buffer = this.buffers[chunk]!;
    return new Uint8Array(buffer.buffer, buffer.byteOffset + (location - chunk * CHUNK_STRIDE), length);
  }

  /** The chunk holding the value at `location` (with offsetIn, where it lies without making a view). */
  chunkOf(location: number, length: number): Uint8Array {
    return length === 0 ? EMPTY : this.buffers[Math.floor(location / CHUNK_STRIDE)]!;
  }

  /** The offset of the value at `location` in its chunk. */
  offsetIn(location: number): number {
    return location % CHUNK_STRIDE;
  }

  /** The value at `location` is no longer stored. */
  release(location: number, length: number): void {
    if (length === 0) return;
    const chunk = Math.floor(location / CHUNK_STRIDE);
    this.live[chunk] -= length;
    this.liveTotal -= length;
    assert(this.live[chunk] >= 0, () => `ValueChunks.release: chunk ${chunk} released more than it holds`);
    if (this.live[chunk] === 0 && chunk !== this.current) this.dropChunk(chunk);
  }

  /**
   * Whether the value at `location` sits in a chunk (not the one being filled) whose live bytes are below
   * `liveShare` of its size — mostly dead at the default — so moving it frees memory.
   */
  isInSparseChunk(location: number, length: number, liveShare = 0.5): boolean {
    if (length === 0) return false;
    const chunk = Math.floor(location / CHUNK_STRIDE);
    return chunk !== this.current && this.live[chunk] < liveShare * this.buffers[chunk]!.length;
  }

  /**
   * Copies the value at `location` into the chunk being filled and releases the old place; its new location.
   * A small value is copied byte by byte, making no view: an idle pass moves tens of thousands of values, and a
   * view each was young garbage enough (megabytes in one look) to hold V8's young generation at its grown size a
   * second longer. A large one is copied with one view, which costs less than its byte loop.
   */
  move(location: number, length: number): number {
    if (length === 0) return location;
    const chunk = Math.floor(location / CHUNK_STRIDE);
    const from = this.buffers[chunk]!;
    const to = this.place(length);
    const target = this.buffers[Math.floor(to / CHUNK_STRIDE)]!;
    const start = location - chunk * CHUNK_STRIDE;
    const at = to % CHUNK_STRIDE;
    if (length > BYTE_COPY_UP_TO) target.set(from.subarray(start, start + length), at);
    else for (let i = 0; i < length; i++) target[at + i] = from[start + i];
    this.release(location, length);
    return to;
  }

  private newChunk(size: number): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.buffers.length;
    this.buffers[id] = new Uint8Array(size);
    this.live[id] = 0;
    this.heldTotal += size;
    return id;
  }

  /** The chunk being filled is full: it is kept while it holds live values, like any other. */
  private retireCurrent(): void {
    const full = this.current;
    this.current = -1;
    if (full >= 0 && this.live[full] === 0) this.dropChunk(full);
  }

  private dropChunk(chunk: number): void {
    this.heldTotal -= this.buffers[chunk]!.length;
    this.buffers[chunk] = undefined;
    this.freeIds.push(chunk);
  }
}
