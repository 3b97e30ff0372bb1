import { describe, expect, it } from "vitest";
import { CheckerInputError } from "../../src/check/errors.js";
import { checkWatchOrder } from "../../src/check/watch-order.js";

const ev = (revision: number, key: string) => ({ revision, key });
const committed = [ev(2, "a/x"), ev(3, "b/y"), ev(4, "a/x"), ev(4, "a/z"), ev(6, "a/x")];

describe("checkWatchOrder", () => {
  it("accepts complete, ordered streams, in any key order within a revision, and a lagging watcher", () => {
    const result = checkWatchOrder({
      committed,
      watchers: [
        {
          id: "all",
          fromRevision: 1,
          received: [ev(2, "a/x"), ev(3, "b/y"), ev(4, "a/z"), ev(4, "a/x"), ev(6, "a/x")],
        },
        {
          id: "prefix-from-3",
          fromRevision: 3,
          prefix: "a/",
          received: [ev(4, "a/x"), ev(4, "a/z"), ev(6, "a/x")],
          throughRevision: 6,
        },
        { id: "lagging", fromRevision: 1, received: [ev(2, "a/x")] },
      ],
    });
    expect(result).toEqual({ valid: true, violations: [] });
  });

  it("reports gaps, duplicates, reordering and phantom events", () => {
    const result = checkWatchOrder({
      committed,
      watchers: [
        { id: "gap", fromRevision: 1, prefix: "a/", received: [ev(2, "a/x"), ev(6, "a/x")] },
        { id: "dup", fromRevision: 1, prefix: "a/", received: [ev(2, "a/x"), ev(2, "a/x")] },
        { id: "reorder", fromRevision: 1, received: [ev(3, "b/y"), ev(2, "a/x")] },
        { id: "phantom", fromRevision: 1, received: [ev(5, "a/q")] },
        { id: "tail", fromRevision: 1, prefix: "a/", received: [ev(2, "a/x")], throughRevision: 6 },
      ],
    });
    expect(result.valid).toBe(false);
    expect(result.violations.map((v) => `${v.watcher}:${v.kind}:${v.event.revision}${v.event.key}`)).toEqual([
      "gap:gap:4a/x",
      "gap:gap:4a/z",
      "dup:duplicate:2a/x",
      "reorder:out-of-order:2a/x",
      "phantom:phantom:5a/q",
      "phantom:gap:2a/x",
      "phantom:gap:3b/y",
      "phantom:gap:4a/x",
      "phantom:gap:4a/z",
      "tail:gap:4a/x",
      "tail:gap:4a/z",
      "tail:gap:6a/x",
    ]);
  });

  it("refuses malformed input with a typed error", () => {
    expect(() => checkWatchOrder({ committed: [ev(0, "a")], watchers: [] })).toThrow(CheckerInputError);
    expect(() =>
      checkWatchOrder({ committed, watchers: [{ id: "w", fromRevision: 1, received: [{ revision: 2 } as never] }] }),
    ).toThrow(/watchers\[0\]\.received\[0\] must be \{revision: positive integer, key: string\}/);
  });
});
