/**
 * The consumer side of a pushed stream (a watch, an election observer): items queue as they arrive and one
 * async iterator drains them. A failure is thrown after the items queued before it; `end()` stops the iterator
 * once the queue is drained. Draining is O(1) per item (a moving head, compacted now and then).
 */
export class PushQueue<T> {
  private items: T[] = [];
  private head = 0;
  private failure: Error | null = null;
  private done = false;
  private wake: (() => void) | null = null;

  get ended(): boolean {
    return this.done;
  }

  get error(): Error | null {
    return this.failure;
  }

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  /** The stream cannot go on: the consumer gets `e` after what is already queued. */
  fail(e: Error): void {
    if (this.done || this.failure) return;
    this.failure = e;
    this.wake?.();
  }

  end(): void {
    this.done = true;
    this.wake?.();
  }

  async *drain(): AsyncGenerator<T> {
    for (;;) {
      if (this.head < this.items.length) {
        const item = this.items[this.head++];
        if (this.head >= 1024 && this.head * 2 >= this.items.length) {
          this.items = this.items.slice(this.head);
          this.head = 0;
        }
        yield item;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}
