// Deterministic name order. Set/Map iteration order follows insertion, which differs between a replica that
// applied the log and one restored from a snapshot; anything that emits events or grants in a loop over names
// walks them in this order instead, so every replica produces the same events in the same order.

/** UTF-16 code unit order: locale-independent, identical on every node. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A set of names that is drained in sorted order. */
export class SortedNames {
  private readonly names = new Set<string>();

  get size(): number {
    return this.names.size;
  }

  add(name: string): void {
    this.names.add(name);
  }

  drain(): string[] {
    const sorted = [...this.names].sort(compareNames);
    this.names.clear();
    return sorted;
  }
}
