import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SortedKeys } from "../../src/statemachine/sorted-keys.js";

describe("SortedKeys", () => {
  it("keeps order through inserts and removes across chunk splits, and scans from any bound", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3000 })), { minLength: 1500, maxLength: 4000 }),
        fc.integer({ min: 0, max: 3000 }),
        (ops, bound) => {
          const set = new SortedKeys();
          const reference = new Set<string>();
          for (const [add, n] of ops) {
            const key = `k${n}`;
            if (add && !reference.has(key)) {
              set.insert(key);
              reference.add(key);
            } else if (!add && reference.has(key)) {
              set.remove(key);
              reference.delete(key);
            }
          }
          const sorted = [...reference].sort();
          expect([...set]).toEqual(sorted);
          expect(set.size).toBe(sorted.length);
          const from = `k${bound}`;
          expect([...set.scan(from, false)]).toEqual(sorted.filter((k) => k >= from));
          expect([...set.scan(from, true)]).toEqual(sorted.filter((k) => k > from));
        },
      ),
      { numRuns: 30 },
    );
  });

  it("builds from sorted keys and refuses unsorted ones", () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `key${String(i).padStart(5, "0")}`);
    const set = SortedKeys.fromSorted(keys);
    expect([...set.scan("key02500", true)].length).toBe(2499);
    set.insert("key02500x");
    set.remove("key00000");
    expect([...set][0]).toBe("key00001");
    expect(() => SortedKeys.fromSorted(["b", "a"])).toThrow(/not sorted/);
  });
});
