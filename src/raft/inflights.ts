import { assert } from "../assert.js";

/**
 * The append messages in flight to one follower: a ring of (last index, bytes) per message, bounded by a count
 * and a byte budget. The leader stops sending when it is full; acks free everything up to the acked index.
 */
export class Inflights {
  private start = 0;
  private count = 0;
  private bytes = 0;
  private readonly indices: Float64Array;
  private readonly sizes: Float64Array;

  constructor(
    readonly capacity: number,
    readonly maxBytes: number,
  ) {
    this.indices = new Float64Array(capacity);
    this.sizes = new Float64Array(capacity);
  }

  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), "inflights: add to a full window");
    if (this.count > 0) {
      const prev = this.indices[(this.start + this.count - 1) % this.capacity];
      assert(lastIndex > prev, () => `inflights: index ${lastIndex} not after ${prev}`);
    }
    const slot = (this.start + this.count) % this.capacity;
    this.indices[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= `index`. */
  freeLE(index: number): void {
    while (this.count > 0 && this.indices[this.start] <= index) {
      this.bytes -= this.sizes[this.start];
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  /** Frees the oldest message (a heartbeat response suggests the window is stuck on lost messages). */
  freeFirst(): void {
    if (this.count > 0) this.freeLE(this.indices[this.start]);
  }

  full(): boolean {
    return this.count === this.capacity || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  get size(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
