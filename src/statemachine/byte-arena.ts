// Encoded commands, as views into 1 MiB arenas instead of one ArrayBuffer each.
//
// One ArrayBuffer per command costs a JS object, a malloc'd backing store and its bookkeeping on top of the
// bytes, and many small long-lived mallocs interleaved with short-lived ones fragment the C heap so it cannot be
// returned to the OS. An arena is freed when the last view into it is dropped, which suits data freed roughly in
// the order it was written: log entries are compacted oldest first. (Stored values have their own chunks, which
// the key store sweeps: value-chunks.ts.) Views never alias the caller's buffers. Arenas start small and double
// up to 1 MiB, so a process that writes little does not pay for a megabyte.
export class ByteArena {
  private static readonly SIZE = 1 << 20;
  private static readonly FIRST = 4096;
  private buffer = new Uint8Array(0);
  private used = 0;

  /** `length` zeroed bytes; larger than a quarter arena gets a buffer of its own. */
  alloc(length: number): Uint8Array {
    if (length === 0) return new Uint8Array(0);
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
}
