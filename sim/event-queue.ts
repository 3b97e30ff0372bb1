// The discrete-event scheduler's queue: a binary min-heap on (virtual time, insertion sequence). Ties at the
// same time run in the order they were scheduled, so a run depends on nothing but the seed.

export interface Scheduled<E> {
  time: number;
  seq: number;
  event: E;
}

export class EventQueue<E> {
  private heap: Scheduled<E>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(time: number, event: E): void {
    if (!Number.isFinite(time) || time < 0)
      throw new RangeError(`EventQueue.push: time must be finite and >= 0, got ${time}`);
    const item: Scheduled<E> = { time, seq: this.seq++, event };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  peekTime(): number | undefined {
    return this.heap.length > 0 ? this.heap[0].time : undefined;
  }

  pop(): Scheduled<E> | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

function before<E>(x: Scheduled<E>, y: Scheduled<E>): boolean {
  return x.time < y.time || (x.time === y.time && x.seq < y.seq);
}
