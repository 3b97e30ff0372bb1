// Linearizability of the client history for the append-only list: every completed read returned a prefix of
// the final committed list, and that prefix contains every value whose append was acknowledged before the
// read was invoked. Every acknowledged append is in the final list.

import { InvariantViolation } from "./invariants.js";
import type { CompletedOp } from "./workload.js";

export function checkHistory(history: readonly CompletedOp[], finalList: readonly string[]): void {
  const position = new Map<string, number>();
  finalList.forEach((v, i) => position.set(v, i));
  const writes = history.filter((op) => op.kind === "write").sort((a, b) => a.complete - b.complete);
  for (const w of writes) {
    if (!position.has(w.value)) {
      throw new InvariantViolation(
        "linearizability",
        `acknowledged append ${w.value} is not in the final committed list`,
      );
    }
  }
  // prefixMax[k] = the highest final-list position among the first k acknowledged writes.
  const prefixMax: number[] = [-1];
  for (const w of writes) prefixMax.push(Math.max(prefixMax[prefixMax.length - 1], position.get(w.value)!));
  for (const r of history) {
    if (r.kind !== "read") continue;
    for (let i = 0; i < r.result.length; i++) {
      if (r.result[i] !== finalList[i]) {
        throw new InvariantViolation(
          "linearizability",
          `client ${r.client}'s read returned ${JSON.stringify(r.result[i])} at position ${i}, the final list has ${JSON.stringify(finalList[i])}`,
        );
      }
    }
    // Writes acknowledged before the read was invoked: binary search on completion time.
    let lo = 0;
    let hi = writes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (writes[mid].complete < r.invoke) lo = mid + 1;
      else hi = mid;
    }
    const needed = prefixMax[lo];
    if (needed >= r.result.length) {
      const missing = writes.slice(0, lo).find((w) => position.get(w.value)! >= r.result.length)!;
      throw new InvariantViolation(
        "linearizability",
        `client ${r.client}'s read (invoked at ${r.invoke}) returned ${r.result.length} values, missing ${missing.value} ` +
          `acknowledged at ${missing.complete}`,
      );
    }
  }
}
