// Transaction compares: the basis of compare-and-swap. Semantics follow etcd: a missing key has version,
// createRevision, modRevision and lease 0; a compare on the value of a missing key is false for every
// operator (no value is different from the empty value). Values compare as unsigned bytes, lexicographically.

import type { Compare, KeyValue } from "./commands.js";

export function evaluateCompare(cmp: Compare, kv: KeyValue | undefined): boolean {
  let order: number;
  if (cmp.target === "value") {
    if (kv === undefined) return false;
    order = compareBytes(kv.value, cmp.value as Uint8Array);
  } else {
    const actual = kv === undefined ? 0 : kv[cmp.target];
    order = Math.sign(actual - (cmp.value as number));
  }
  switch (cmp.result) {
    case "=":
      return order === 0;
    case "!=":
      return order !== 0;
    case "<":
      return order < 0;
    case ">":
      return order > 0;
  }
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return Math.sign(a.length - b.length);
}
