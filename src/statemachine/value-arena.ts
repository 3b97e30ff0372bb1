// Values are views into 1 MiB arenas instead of one ArrayBuffer each.
//
// One ArrayBuffer per value costs a JS object, a malloc'd backing store and its bookkeeping on top of the bytes,
// and 100,000 small long-lived mallocs interleaved with short-lived ones fragment the C heap so it cannot be
// returned to the OS; a million of them made restore slower than everything else it does together. An arena is
// freed when the last value viewing it is overwritten or deleted. The state machine copies live values into a
// fresh arena at every snapshot (see StateMachine.snapshot), so the dead bytes an arena keeps are bounded by what
// was written since the last snapshot. Values never alias the caller's buffers.
export class ValueArena {
  private static readonly SIZE = 1 << 20;
  private buffer = new Uint8Array(0);
  private used = 0;

  copy(from: Uint8Array, start = 0, length = from.length - start): Uint8Array {
    if (length === 0) return new Uint8Array(0);
    if (length > ValueArena.SIZE / 4) return from.slice(start, start + length);
    if (this.used + length > this.buffer.length) {
      this.buffer = new Uint8Array(ValueArena.SIZE);
      this.used = 0;
    }
    const at = this.used;
    this.buffer.set(from.subarray(start, start + length), at);
    this.used += length;
    return new Uint8Array(this.buffer.buffer, at, length);
  }
}
