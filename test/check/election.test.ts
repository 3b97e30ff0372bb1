import { describe, expect, it } from "vitest";
import { CheckerInputError } from "../../src/check/errors.js";
import { checkElection } from "../../src/check/election.js";

const l = (leader: string, token: number, value?: unknown) =>
  value === undefined ? { leader, token } : { leader, token, value };

describe("checkElection", () => {
  it("accepts observers that miss leaderships or see a proclaim twice, and rebuilds the global order", () => {
    const result = checkElection({
      observers: [
        { id: "o1", observed: [l("a", 5, "v1"), l("a", 5, "v2"), l("b", 9), l("c", 12)] },
        { id: "o2", observed: [l("b", 9), l("c", 12)] },
      ],
      wins: [l("a", 5), l("c", 12)],
    });
    expect(result.valid).toBe(true);
    expect(result.order.map((x) => `${x.leader}@${x.token}`)).toEqual(["a@5", "b@9", "c@12"]);
  });

  it("reports two leaders for one token, including an acknowledged win", () => {
    const result = checkElection({
      observers: [
        { id: "o1", observed: [l("a", 5)] },
        { id: "o2", observed: [l("b", 5)] },
      ],
      wins: [l("c", 5)],
    });
    expect(result.violations.map((v) => v.kind)).toEqual(["two-leaders", "two-leaders"]);
    expect(result.violations[0]!.message).toBe("token 5 names c and, by observer o1, a");
  });

  it("reports an observer going back in the order, and leaderships missing from the given global order", () => {
    const result = checkElection({
      observers: [{ id: "o1", observed: [l("b", 9), l("a", 5), l("z", 20)] }],
      global: [l("a", 5), l("b", 9)],
    });
    expect(result.violations.map((v) => `${v.kind}:${v.leadership.leader}`)).toEqual([
      "out-of-order:a",
      "not-in-global:z",
    ]);
  });

  it("refuses malformed input with a typed error", () => {
    expect(() => checkElection({ observers: [{ id: "o", observed: [{ leader: "a", token: "5" } as never] }] })).toThrow(
      CheckerInputError,
    );
  });
});
