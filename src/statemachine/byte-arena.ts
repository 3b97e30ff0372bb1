// Long-lived small byte strings — stored values, encoded commands — as views into 1 MiB arenas instead of one
// ArrayBuffer each.
//
// One ArrayBuffer per value costs a JS object, a malloc'd backing store and its bookkeeping on top of the bytes,
// and 100,000 small long-lived mallocs interleaved with short-lived ones fragment the C heap so it cannot be
// returned to the OS; a million of them made restore slower than everything else it does together. An arena is
// freed when the last view into it is dropped. That suits data freed roughly in the order it was written: log
// entries (compacted oldest first), and values, which the state machine copies into a fresh arena at a
// snapshot once more than half the bytes its value arenas may hold are dead (see snapshot-job.ts), so that
// they hold at most about twice the live values plus what was written since the last snapshot. Views never
// alias the caller's buffers. Arenas start small and double up to 1 MiB, so a small state (a new member, a
// snapshot of a few keys) does not pay for a megabyte each time it is repacked.
export class ByteArena {
  private static readonly SIZE = 1 << 20;
  private static readonly FIRST = 4096;
  private buffer = new Uint8Array(0);
  private used = 0;
  /** Bytes handed out so far (arena and own buffers alike). */
  allocated = 0;

  /** `length` zeroed bytes; larger than a quarter arena gets a buffer of its own. */
  alloc(length: number): Uint8Array {
    if (length === 0) return new Uint8Array(0);
    this.allocated += length;
    if (length > ByteArena.SIZE / 4) return new Uint8Array(length);
    if (this.used + length > this.buffer.length) {
      const next = Math.min(ByteArena.SIZE, Math.max(ByteArena.FIRST, 2 * this.buffer.length));
      this.buffer = new Uint8Array(Math.max(next, length));
      this.used = 0;
    }
    const at = this.used;
    this.used += length;
    return new Uint8Array(this.buffer.buffer, at, length);
  }

  copy(from: Uint8Array, start = 0, length = from.length - start): Uint8Array {
    const to = this.alloc(length);
    to.set(from.subarray(start, start + length));
    return to;
  }
}
