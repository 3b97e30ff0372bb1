// A list of callbacks for one kind of event: what the replica tells the streams of the client service.

export class Listeners<T> {
  private readonly fns = new Set<(value: T) => void>();

  /** Adds `fn`; returns the function that removes it. */
  add(fn: (value: T) => void): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }

  emit(value: T): void {
    for (const fn of this.fns) fn(value);
  }

  get size(): number {
    return this.fns.size;
  }
}
