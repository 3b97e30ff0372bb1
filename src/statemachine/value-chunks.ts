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
//
// Each chunk lists the owners (the store's rows) of the values written into it, so the store can empty one chunk
// at a time, as a log-structured store cleans a segment: kv.ts's sweep takes the sparsest chunk (nextToClean)
// and moves its values that are still there, a few per write, until the chunk is dropped. Emptying whole chunks
// frees memory as it goes; moving values in row order, as the sweep did before, freed a chunk only once a pass
// over every row had moved its last value, so the chunks held twice the live bytes.
//
// Invariants: live[c] is the sum of the lengths of the stored values in chunk c; a chunk other than the one being
// filled is held only while live[c] > 0; every stored value in chunk c has its owner among owners[c]; liveBytes
// is the sum of live[]; heldBytes the sum of held buffers' sizes.

import { assert } from "../assert.js";

/** Locations: chunk * CHUNK_STRIDE + offset. Offsets stay below 2^20, ids below 2^32: exact in a double. */
const CHUNK_STRIDE = 2 ** 21;
const SIZE = 1 << 20;
const FIRST = 4096;
const EMPTY = new Uint8Array(0);
const EMPTY_OWNERS = new Int32Array(0);
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
  /** Owners of the values written into each chunk (ownerCount[c] of them), stale ones included. */
  private owners: Int32Array[] = [];
  private ownerCount: number[] = [];
  /** The chunk being emptied (-1: none), and the next of its owners to look at. */
  private cleaning = -1;
  private cleanAt = 0;
  private liveTotal = 0;
  private heldTotal = 0;

  get liveBytes(): number {
    return this.liveTotal;
  }

  /** Bytes of the chunks held, the one being filled included. */
  get heldBytes(): number {
    return this.heldTotal;
  }

  /**
   * Copies `length` bytes of `from` at `start` in, as the value of `owner` (a non-negative number the caller
   * names its values by); returns their location (any number for length 0).
   */
  add(owner: number, from: Uint8Array, start = 0, length = from.length - start): number {
    if (length === 0) return 0;
    const location = this.place(length, owner);
    const chunk = Math.floor(location / CHUNK_STRIDE);
    const source = start === 0 && length === from.length ? from : from.subarray(start, start + length); // a put's value is whole
    this.buffers[chunk]!.set(source, location - chunk * CHUNK_STRIDE);
    return location;
  }

  /** Room for `length` bytes of `owner`'s, counted live; their location. */
  private place(length: number, owner: number): number {
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
    let owners = this.owners[chunk];
    const n = this.ownerCount[chunk]++;
    if (n === owners.length) {
      const grown = new Int32Array(2 * n);
      grown.set(owners);
      this.owners[chunk] = owners = grown;
    }
    owners[n] = owner;
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
   * `liveShare` of its size, so moving it frees memory.
   */
  isInSparseChunk(location: number, length: number, liveShare: number): boolean {
    if (length === 0) return false;
    const chunk = Math.floor(location / CHUNK_STRIDE);
    return chunk !== this.current && this.live[chunk] < liveShare * this.buffers[chunk]!.length;
  }

  /**
   * The next owner to look at in the chunk being emptied, choosing the sparsest chunk (not the one being filled)
   * when none is; -1 when no chunk holds dead bytes. The owner's value is to be moved if it still lies in that
   * chunk (isBeingCleaned): owners are listed as written, so an owner whose value was replaced since is listed
   * although its value is elsewhere, and one written twice into the chunk is listed twice.
   */
  nextToClean(): number {
    if (this.cleaning < 0 || this.cleanAt === this.ownerCount[this.cleaning]) {
      // Every stored value of a chunk is among its owners: once they are all looked at, it was emptied and dropped.
      assert(
        this.cleaning < 0,
        () => `ValueChunks: chunk ${this.cleaning} still holds ${this.live[this.cleaning]} bytes after its owners`,
      );
      let sparsest = -1;
      let share = 1;
      for (let c = 0; c < this.buffers.length; c++) {
        const buffer = this.buffers[c];
        if (buffer === undefined || c === this.current) continue;
        const s = this.live[c] / buffer.length;
        if (s < share) {
          share = s;
          sparsest = c;
        }
      }
      if (sparsest < 0) return -1;
      this.cleaning = sparsest;
      this.cleanAt = 0;
    }
    return this.owners[this.cleaning][this.cleanAt++];
  }

  /** Whether the value at `location` lies in the chunk being emptied. */
  isBeingCleaned(location: number, length: number): boolean {
    return length !== 0 && this.cleaning >= 0 && Math.floor(location / CHUNK_STRIDE) === this.cleaning;
  }

  /**
   * Copies the value at `location` into the chunk being filled and releases the old place; its new location.
   * A small value is copied byte by byte, making no view: an idle pass moves tens of thousands of values, and a
   * view each was young garbage enough (megabytes in one look) to hold V8's young generation at its grown size a
   * second longer. A large one is copied with one view, which costs less than its byte loop.
   */
  move(location: number, length: number, owner: number): number {
    if (length === 0) return location;
    const chunk = Math.floor(location / CHUNK_STRIDE);
    const from = this.buffers[chunk]!;
    const to = this.place(length, owner);
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
    // A value of 256 bytes per owner at first: a chunk of such values never grows its list.
    this.owners[id] = new Int32Array(Math.max(1, size >>> 8));
    this.ownerCount[id] = 0;
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
    this.owners[chunk] = EMPTY_OWNERS;
    if (chunk === this.cleaning) this.cleaning = -1;
    this.freeIds.push(chunk);
  }
}
