import { describe, expect, it } from "vitest";
import { CheckerInputError } from "../../src/check/errors.js";
import { checkSet } from "../../src/check/set.js";

describe("checkSet", () => {
  it("accepts a read holding every acknowledged add, and classifies info adds", () => {
    const result = checkSet({
      adds: [
        { element: 1, outcome: "ok" },
        { element: 2, outcome: "info" },
        { element: 3, outcome: "info" },
        { element: 4, outcome: "fail" },
      ],
      finalRead: [2, 1],
    });
    expect(result).toEqual({
      valid: true,
      lost: [],
      unexpected: [],
      duplicated: [],
      recovered: [2],
      indeterminate: [3],
      okCount: 1,
    });
  });

  it("reports lost, unexpected (never attempted or failed) and duplicated elements", () => {
    const result = checkSet({
      adds: [
        { element: "a", outcome: "ok" },
        { element: "b", outcome: "ok" },
        { element: "c", outcome: "fail" },
        { element: "d", outcome: "ok" },
      ],
      finalRead: ["a", "c", "z", "d", "d"],
    });
    expect(result.valid).toBe(false);
    expect(result.lost).toEqual(["b"]);
    expect(result.unexpected).toEqual(["c", "z"]);
    expect(result.duplicated).toEqual([{ element: "d", count: 2 }]);
  });

  it("compares structured elements by value and counts a retried add by its best outcome", () => {
    const result = checkSet({
      adds: [
        { element: { id: 1, w: "x" }, outcome: "fail" },
        { element: { w: "x", id: 1 }, outcome: "ok" },
      ],
      finalRead: [{ id: 1, w: "x" }],
    });
    expect(result.valid).toBe(true);
  });

  it("refuses malformed input with a typed error", () => {
    expect(() => checkSet({ adds: [{ element: 1, outcome: "maybe" as "ok" }], finalRead: [] })).toThrow(
      CheckerInputError,
    );
    expect(() => checkSet({ adds: [], finalRead: "abc" as unknown as unknown[] })).toThrow(
      /"finalRead" must be an array/,
    );
  });
});
