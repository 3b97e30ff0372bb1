import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CheckerInputError, ModelInputError } from "../../src/check/errors.js";
import { eventsFromObjects, pairOperations } from "../../src/check/history.js";
import type { Operation } from "../../src/check/history.js";
import { checkLinearizability } from "../../src/check/linearizability.js";
import { fencedMutexModel, mutexModel, registerModel } from "../../src/check/models.js";
import { formatFailure } from "../../src/check/report.js";
import { history } from "./helpers.js";
import type { Line } from "./helpers.js";

const register = (lines: Line[], initial: unknown = 0) =>
  checkLinearizability(history(lines), { model: registerModel, initial });
const mutex = (lines: Line[]) => checkLinearizability(history(lines), { model: mutexModel, initial: false });
const fenced = (lines: Line[], initial: unknown = null) =>
  checkLinearizability(history(lines), { model: fencedMutexModel, initial });

describe("register", () => {
  it("accepts a read concurrent with a write returning either value", () => {
    for (const seen of [0, 1]) {
      const result = register([
        [1, "invoke", "write", 1],
        [2, "invoke", "read"],
        [2, "ok", "read", seen],
        [1, "ok", "write", 1],
      ]);
      expect(result.verdict).toBe("linearizable");
    }
  });

  it("rejects a stale read after an acknowledged write, naming the read and the state", () => {
    const result = register([
      [1, "invoke", "write", 1],
      [1, "ok", "write", 1],
      [2, "invoke", "read"],
      [2, "ok", "read", 0],
    ]);
    expect(result.verdict).toBe("not-linearizable");
    const failure = result.failure!;
    expect(failure.linearized.map((op) => [op.f, op.input])).toEqual([["write", 1]]);
    expect(failure.stateAfter).toBe("value 1");
    expect(failure.blocked.f).toBe("read");
    expect(failure.blocked.output).toBe(0);
    expect(failure.blockedOutcome).toBe("rejected");
    expect(failure.window).toEqual({ firstLine: 3, lastLine: 4 });
  });

  it("rejects a value flipping back inside one write's interval (1 seen, then the old 0)", () => {
    const result = register([
      [1, "invoke", "write", 1],
      [2, "invoke", "read"],
      [2, "ok", "read", 1],
      [3, "invoke", "read"],
      [3, "ok", "read", 0],
      [1, "ok", "write", 1],
    ]);
    expect(result.verdict).toBe("not-linearizable");
    expect(result.failure!.blocked.process).toBe(3);
  });

  it("handles cas: swapped only from the expected value", () => {
    const cas = (from: unknown): Line[] => [
      [1, "invoke", "cas", [from, 2]],
      [1, "ok", "cas", [from, 2]],
      [2, "invoke", "read"],
      [2, "ok", "read", 2],
    ];
    expect(register(cas(0)).verdict).toBe("linearizable");
    expect(register(cas(5)).verdict).toBe("not-linearizable");
  });

  it("lets an info write take effect late, or never", () => {
    const late: Line[] = [
      [1, "invoke", "write", 3],
      [1, "info", "write", 3],
      [2, "invoke", "read"],
      [2, "ok", "read", 0],
      [2, "invoke", "read"],
      [2, "ok", "read", 3],
    ];
    expect(register(late).verdict).toBe("linearizable");
    const never: Line[] = [
      [1, "invoke", "write", 3],
      [2, "invoke", "read"],
      [2, "ok", "read", 0],
    ];
    expect(register(never).verdict).toBe("linearizable");
    const flipBack: Line[] = [...late, [2, "invoke", "read"], [2, "ok", "read", 0]];
    expect(register(flipBack).verdict).toBe("not-linearizable");
  });

  it("ignores fail operations and reads of unknown result, and compares values structurally", () => {
    const result = register(
      [
        [1, "invoke", "write", { b: 1, a: [2] }],
        [1, "ok", "write", { a: [2], b: 1 }],
        [2, "invoke", "write", 9],
        [2, "fail", "write", 9],
        [3, "invoke", "read"],
        [3, "info", "read"],
        [4, "invoke", "read"],
        [4, "ok", "read", { a: [2], b: 1 }],
      ],
      null,
    );
    expect(result.verdict).toBe("linearizable");
    expect(result.partitions[0]!.operations).toBe(2);
  });

  it("reads null as absent from a null initial value", () => {
    expect(
      register(
        [
          [1, "invoke", "read"],
          [1, "ok", "read", null],
        ],
        null,
      ).verdict,
    ).toBe("linearizable");
    expect(
      register(
        [
          [1, "invoke", "read"],
          [1, "ok", "read", null],
        ],
        0,
      ).verdict,
    ).toBe("not-linearizable");
  });

  it("checks keys apart (P-compositionality) and names the failing key", () => {
    const k = (key: string) => ({ key });
    const ok = register([
      [1, "invoke", "write", 1, k("a")],
      [1, "ok", "write", 1, k("a")],
      [2, "invoke", "read", null, k("b")],
      [2, "ok", "read", 0, k("b")],
    ]);
    expect(ok.verdict).toBe("linearizable");
    expect(ok.partitions.map((p) => p.key)).toEqual(["a", "b"]);
    const bad = register([
      [1, "invoke", "write", 1, k("a")],
      [1, "ok", "write", 1, k("a")],
      [1, "invoke", "write", 1, k("b")],
      [1, "ok", "write", 1, k("b")],
      [2, "invoke", "read", null, k("b")],
      [2, "ok", "read", 0, k("b")],
    ]);
    expect(bad.verdict).toBe("not-linearizable");
    expect(bad.partitions.map((p) => p.verdict)).toEqual(["linearizable", "not-linearizable"]);
    expect(bad.failure!.key).toBe("b");
    expect(formatFailure(bad.failure!)[0]).toBe('key "b"');
  });

  it("rejects operations the model cannot judge with a typed error naming the line", () => {
    expect(() =>
      register([
        [1, "invoke", "cas", 3],
        [1, "ok", "cas", 3],
      ]),
    ).toThrow(ModelInputError);
    expect(() => register([[1, "invoke", "cas", 3]])).toThrow(
      /history line 1: cas value must be \[expected, new\], got 3/,
    );
    expect(() => register([[1, "invoke", "append", 3]])).toThrow(
      /unknown operation "append"; a register accepts read, write, cas/,
    );
  });
});

describe("mutex", () => {
  it("accepts acquire/release hand-offs, including concurrent acquires", () => {
    const result = mutex([
      [1, "invoke", "acquire"],
      [2, "invoke", "acquire"],
      [1, "ok", "acquire"],
      [1, "invoke", "release"],
      [1, "ok", "release"],
      [2, "ok", "acquire"],
    ]);
    expect(result.verdict).toBe("linearizable");
  });

  it("rejects two holders at once", () => {
    const result = mutex([
      [1, "invoke", "acquire"],
      [1, "ok", "acquire"],
      [2, "invoke", "acquire"],
      [2, "ok", "acquire"],
    ]);
    expect(result.verdict).toBe("not-linearizable");
    expect(result.failure!.stateAfter).toBe("held by p1");
  });

  it("rejects a release by a process that does not hold the lock", () => {
    expect(
      mutex([
        [1, "invoke", "acquire"],
        [1, "ok", "acquire"],
        [2, "invoke", "release"],
        [2, "ok", "release"],
      ]).verdict,
    ).toBe("not-linearizable");
  });

  it("lets an info acquire never take effect", () => {
    expect(
      mutex([
        [1, "invoke", "acquire"],
        [1, "info", "acquire"],
        [2, "invoke", "acquire"],
        [2, "ok", "acquire"],
      ]).verdict,
    ).toBe("linearizable");
  });

  it("refuses a malformed initial value", () => {
    expect(() => checkLinearizability([], { model: mutexModel, initial: 5 })).toThrow(
      /initial value must be null or false \(free\) or \{"holder": process\}, got 5/,
    );
  });
});

describe("fenced mutex", () => {
  const acquire = (p: number, token: number): Line[] => [
    [p, "invoke", "acquire"],
    [p, "ok", "acquire", null, { token }],
  ];
  const release = (p: number, token: number): Line[] => [
    [p, "invoke", "release", null, { token }],
    [p, "ok", "release"],
  ];

  it("accepts strictly increasing tokens released by their holders", () => {
    expect(fenced([...acquire(1, 5), ...release(1, 5), ...acquire(2, 9), ...release(2, 9)]).verdict).toBe(
      "linearizable",
    );
  });

  it("rejects a token that does not increase, and a release with another token", () => {
    expect(fenced([...acquire(1, 5), ...release(1, 5), ...acquire(2, 5)]).verdict).toBe("not-linearizable");
    expect(fenced([...acquire(1, 5), ...release(1, 4)]).verdict).toBe("not-linearizable");
    expect(fenced([...acquire(1, 5)], { lastToken: 7 }).verdict).toBe("not-linearizable");
  });

  it("accounts for the token an info acquire may have consumed", () => {
    const infoThenRelease: Line[] = [[1, "invoke", "acquire"], [1, "info", "acquire"], ...release(1, 2)];
    expect(fenced([...infoThenRelease, ...acquire(2, 3)], { lastToken: 1 }).verdict).toBe("linearizable");
    expect(fenced([...infoThenRelease, ...acquire(2, 2)], { lastToken: 1 }).verdict).toBe("not-linearizable");
  });

  it("requires tokens where the model needs them", () => {
    expect(() =>
      fenced([
        [1, "invoke", "acquire"],
        [1, "ok", "acquire"],
      ]),
    ).toThrow(/line 1: an ok acquire must return its fencing token in "token"/);
  });
});

describe("budget", () => {
  // n concurrent acknowledged writes of distinct values, then a read of a value nobody wrote: every one of the
  // n·2^(n-1) (set, last value) pairs must be visited before the search can say no.
  function hardHistory(n: number): Line[] {
    const lines: Line[] = [];
    for (let p = 0; p < n; p++) lines.push([p, "invoke", "write", p + 1]);
    for (let p = 0; p < n; p++) lines.push([p, "ok", "write", p + 1]);
    lines.push([n, "invoke", "read"], [n, "ok", "read", -1]);
    return lines;
  }

  it("the hard history is decided when small", () => {
    expect(register(hardHistory(6)).verdict).toBe("not-linearizable");
  });

  it("returns unknown when the step budget is spent", () => {
    const result = checkLinearizability(history(hardHistory(22)), {
      model: registerModel,
      initial: 0,
      budget: { maxSteps: 20_000 },
    });
    expect(result.verdict).toBe("unknown");
    expect(result.failure).toBeUndefined();
    expect(result.steps).toBe(20_001);
  });

  it("returns unknown when the time budget is spent, on an injected clock", () => {
    let now = 0;
    const clock = () => (now += 1);
    const result = checkLinearizability(history(hardHistory(22)), {
      model: registerModel,
      initial: 0,
      budget: { timeMs: 50, now: clock },
    });
    expect(result.verdict).toBe("unknown");
    expect(result.steps).toBeLessThan(1024 * 60);
  });
});

/** The reported prefix must itself be a legal sequential run ending in the reported state. */
function expectPrefixReplays(prefix: readonly Operation[], stateAfter: string, blocked: Operation): void {
  let state = registerModel.init(0);
  for (const op of prefix) {
    const step = registerModel.step(state, op);
    expect(step.ok).toBe(true);
    state = step.state;
  }
  expect(registerModel.describe(state)).toBe(stateAfter);
  expect(prefix).not.toContain(blocked);
  expect(blocked.status).toBe("ok");
}

describe("input errors", () => {
  it("refuses a malformed budget with a typed error", () => {
    expect(() => checkLinearizability([], { model: registerModel, budget: { maxSteps: -1 } })).toThrow(
      CheckerInputError,
    );
    expect(() => checkLinearizability([], { model: registerModel, budget: { timeMs: Number.NaN } })).toThrow(
      /budget.timeMs must be a non-negative number/,
    );
  });

  it("checks in-memory events recorded by a simulator", () => {
    const events = eventsFromObjects([
      { process: 0, type: "invoke", f: "write", value: 1 },
      { process: 0, type: "ok", f: "write", value: 1 },
      { process: 1, type: "invoke", f: "read", value: null },
      { process: 1, type: "ok", f: "read", value: 2 },
    ]);
    const result = checkLinearizability(pairOperations(events), { model: registerModel, initial: null });
    expect(result.verdict).toBe("not-linearizable");
    expect(result.failure!.window).toEqual({ firstLine: 3, lastLine: 4 });
    expect(() => eventsFromObjects([{ process: 0, type: "invoke" }])).toThrow(
      /history line 1: "f" must be a non-empty string/,
    );
  });
});

describe("property: histories produced by a real register are linearizable", () => {
  // Each operation gets an interval [invoke, complete] and a linearization point inside it; results come from
  // applying the operations in point order. Any such history is linearizable by construction.
  const opArb = fc.record({
    kind: fc.constantFrom("read", "write", "cas"),
    value: fc.integer({ min: 0, max: 3 }),
    expected: fc.integer({ min: 0, max: 3 }),
    start: fc.integer({ min: 0, max: 100 }),
    length: fc.integer({ min: 1, max: 40 }),
    pointFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    outcome: fc.constantFrom("ok", "ok", "ok", "info"),
  });

  type OpSpec = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

  function build(specs: OpSpec[], corruptRead: boolean): Line[] {
    // Each operation runs on its own process, so intervals may overlap freely.
    const ops = specs.map((s, p) => ({
      ...s,
      p,
      point: s.start + s.pointFraction * s.length,
      end: s.start + s.length,
    }));
    let value = 0;
    const results = new Map<number, { swapped: boolean; read: number }>();
    for (const op of [...ops].sort((a, b) => a.point - b.point)) {
      if (op.kind === "write") value = op.value;
      const swapped = op.kind === "cas" && value === op.expected;
      if (swapped) value = op.value;
      results.set(op.p, { swapped, read: value });
    }
    const events: Array<{ at: number; line: Line }> = [];
    let corrupted = !corruptRead;
    for (const op of ops) {
      const r = results.get(op.p)!;
      const f = op.kind;
      const input = f === "cas" ? [op.expected, op.value] : f === "write" ? op.value : null;
      events.push({ at: op.start, line: [op.p, "invoke", f, input] });
      if (op.outcome === "info") continue;
      if (f === "cas" && !r.swapped) {
        events.push({ at: op.end, line: [op.p, "fail", f, input] });
        continue;
      }
      let output: unknown = f === "read" ? r.read : input;
      if (f === "read" && !corrupted) {
        output = 99; // never written
        corrupted = true;
      }
      events.push({ at: op.end, line: [op.p, "ok", f, output] });
    }
    events.sort((a, b) => a.at - b.at);
    return events.map((e) => e.line);
  }

  it("accepts every generated history", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 12 }), (specs) => {
        expect(register(build(specs, false)).verdict).toBe("linearizable");
      }),
      { numRuns: 150 },
    );
  });

  it("rejects every generated history with one read of a never-written value", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 12 }), (specs) => {
        const lines = build(specs, true);
        const hasOkRead = lines.some(([, type, f]) => type === "ok" && f === "read");
        const result = register(lines);
        expect(result.verdict).toBe(hasOkRead ? "not-linearizable" : "linearizable");
        if (hasOkRead)
          expectPrefixReplays(result.failure!.linearized, result.failure!.stateAfter, result.failure!.blocked);
      }),
      { numRuns: 150 },
    );
  });
});
