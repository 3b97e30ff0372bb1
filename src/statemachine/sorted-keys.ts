// An ordered set of strings for prefix ranges with a cursor: a list of sorted chunks (the layout of Python's
// sortedcontainers). Insert and delete cost O(log n + CHUNK) instead of a flat array's O(n) memmove, and a
// scan from a lower bound walks the chunks in order. Order is JavaScript string order (UTF-16 code units),
// identical on every node; all keys with a given prefix are contiguous in it.
//
// Invariants: no chunk is empty; every chunk is sorted and holds at most 2 * CHUNK keys; the last key of
// chunk i is smaller than the first key of chunk i + 1; `maxes[i]` is the last key of chunk i; a chunk in
// `shared` is never changed (a frozen view holds it: freeze()).

import { assert } from "../assert.js";

const CHUNK = 512;

export class SortedKeys {
  private chunks: string[][] = [];
  private maxes: string[] = [];
  private count = 0;
  /** Chunks frozen views hold (freeze()), until thaw(): copied before they are changed. */
  private shared: Set<string[]> | null = null;

  /** Builds from keys already sorted and distinct (snapshot restore), in O(n). */
  static fromSorted(keys: readonly string[]): SortedKeys {
    const set = new SortedKeys();
    for (let i = 0; i < keys.length; i += CHUNK) {
      const chunk = keys.slice(i, i + CHUNK);
      set.chunks.push(chunk);
      set.maxes.push(chunk[chunk.length - 1]);
    }
    for (let i = 1; i < keys.length; i++) assert(keys[i - 1] < keys[i], "SortedKeys.fromSorted: keys not sorted");
    set.count = keys.length;
    return set;
  }

  get size(): number {
    return this.count;
  }

  /** Index of the first chunk whose max is >= key, or chunks.length. */
  private chunkFor(key: string): number {
    let lo = 0;
    let hi = this.maxes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.maxes[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts a key known to be absent (the caller's Map is the membership test). */
  insert(key: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.maxes.push(key);
      this.count = 1;
      return;
    }
    let c = this.chunkFor(key);
    if (c === this.chunks.length) c--;
    const chunk = this.writable(c);
    const at = lowerBound(chunk, key);
    assert(chunk[at] !== key, () => `SortedKeys.insert: duplicate key ${key}`);
    chunk.splice(at, 0, key);
    this.maxes[c] = chunk[chunk.length - 1];
    this.count++;
    if (chunk.length > 2 * CHUNK) {
      const upper = chunk.splice(CHUNK);
      this.chunks.splice(c + 1, 0, upper);
      this.maxes[c] = chunk[chunk.length - 1];
      this.maxes.splice(c + 1, 0, upper[upper.length - 1]);
    }
  }

  /** Removes a key known to be present. */
  remove(key: string): void {
    const c = this.chunkFor(key);
    assert(c < this.chunks.length, () => `SortedKeys.remove: key ${key} absent`);
    const chunk = this.writable(c);
    const at = lowerBound(chunk, key);
    assert(chunk[at] === key, () => `SortedKeys.remove: key ${key} absent`);
    chunk.splice(at, 1);
    this.count--;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
      this.maxes.splice(c, 1);
    } else {
      this.maxes[c] = chunk[chunk.length - 1];
    }
  }

  /** Keys >= `from` in order (> `from` when `exclusive`), while `keep(key)` holds. */
  *scan(from: string, exclusive: boolean): Generator<string> {
    let c = this.chunkFor(from);
    if (c === this.chunks.length) return;
    let i = exclusive ? upperBound(this.chunks[c], from) : lowerBound(this.chunks[c], from);
    for (; c < this.chunks.length; c++, i = 0) {
      const chunk = this.chunks[c];
      for (; i < chunk.length; i++) yield chunk[i];
    }
  }

  /**
   * Every key as it is now, in order, as a list of sorted runs, in O(n / CHUNK): the chunks themselves, which stay
   * unchanged — until thaw(), a chunk is copied before its first change (copy on write). For a snapshot of
   * millions of keys taken while the set keeps changing (record-capture.ts).
   */
  freeze(): readonly (readonly string[])[] {
    this.shared ??= new Set();
    for (const chunk of this.chunks) this.shared.add(chunk);
    return this.chunks.slice();
  }

  /** No frozen view is in use any more: chunks are changed in place again. */
  thaw(): void {
    this.shared = null;
  }

  /** Chunk `c`, copied first if a frozen view holds it. */
  private writable(c: number): string[] {
    const chunk = this.chunks[c];
    if (this.shared === null || !this.shared.has(chunk)) return chunk;
    const copy = chunk.slice();
    this.chunks[c] = copy;
    return copy;
  }

  /** Every key in order. */
  *[Symbol.iterator](): Generator<string> {
    for (const chunk of this.chunks) yield* chunk;
  }
}

function lowerBound(a: readonly string[], key: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(a: readonly string[], key: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
