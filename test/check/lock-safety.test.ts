import { describe, expect, it } from "vitest";
import { CheckerInputError } from "../../src/check/errors.js";
import { checkLockSafety } from "../../src/check/lock-safety.js";
import type { LockGrant } from "../../src/check/lock-safety.js";

const grant = (
  holder: string,
  token: number,
  acquireInvokedAt: number,
  acquireAckedAt: number,
  releaseInvokedAt?: number,
  releaseAcked?: boolean,
): LockGrant => ({
  holder,
  token,
  acquireInvokedAt,
  acquireAckedAt,
  ...(releaseInvokedAt === undefined ? {} : { releaseInvokedAt }),
  ...(releaseAcked === undefined ? {} : { releaseAcked }),
});

describe("checkLockSafety", () => {
  it("accepts sequential holders with increasing tokens and fenced writes", () => {
    const result = checkLockSafety({
      grants: [grant("a", 10, 0, 1, 5, true), grant("b", 20, 2, 6, 9, true), grant("c", 30, 8, 10)],
      writes: [
        { holder: "a", token: 10, accepted: true },
        { holder: "a", token: 10, accepted: true },
        { holder: "b", token: 20, accepted: true },
        { holder: "a", token: 10, accepted: false },
        { holder: "c", token: 30, accepted: true },
      ],
    });
    expect(result).toEqual({ valid: true, violations: [] });
  });

  it("allows concurrent acquires to be granted in either token order", () => {
    expect(checkLockSafety({ grants: [grant("a", 20, 0, 5), grant("b", 10, 1, 3)] }).valid).toBe(true);
  });

  it("reports duplicate tokens and tokens that go backwards in real time", () => {
    const result = checkLockSafety({ grants: [grant("a", 10, 0, 1), grant("b", 10, 2, 3), grant("c", 5, 4, 5)] });
    expect(result.violations.map((v) => v.kind)).toEqual(["duplicate-token", "token-order", "token-order"]);
    expect(result.violations[2]!.message).toBe(
      "c got token 5 for an acquire invoked after a's grant of token 10 was acknowledged",
    );
  });

  it("reports overlapping acknowledged critical sections, but not sections that may have expired", () => {
    const overlap = checkLockSafety({ grants: [grant("a", 10, 0, 1, 8, true), grant("b", 20, 2, 5, 9, true)] });
    expect(overlap.violations.map((v) => v.kind)).toEqual(["overlap"]);
    // a's release was not acknowledged: its lease may have expired before b's grant, so no overlap is proven.
    expect(checkLockSafety({ grants: [grant("a", 10, 0, 1, 8, false), grant("b", 20, 2, 5, 9, true)] }).valid).toBe(
      true,
    );
  });

  it("reports stale writes the resource accepted and tokens never granted", () => {
    const result = checkLockSafety({
      grants: [grant("a", 10, 0, 1), grant("b", 20, 2, 3)],
      writes: [
        { holder: "b", token: 20, accepted: true },
        { holder: "a", token: 10, accepted: true },
        { holder: "a", token: 99, accepted: true },
      ],
    });
    expect(result.violations.map((v) => [v.kind, "index" in v ? v.index : null])).toEqual([
      ["stale-write-accepted", 1],
      ["ungranted-token", 2],
    ]);
  });

  it("refuses malformed input with a typed error", () => {
    expect(() => checkLockSafety({ grants: [grant("a", 1, 5, 2)] })).toThrow(CheckerInputError);
    expect(() =>
      checkLockSafety({ grants: [{ holder: "a", token: 1.5, acquireInvokedAt: 0, acquireAckedAt: 1 }] }),
    ).toThrow(/grants\[0\] needs a string holder and an integer token/);
  });
});
