// Reads at a past revision (past-reads.ts): the records as they were, rebuilt from the current store and the watch
// history; COMPACTED below the compaction revision (naming the oldest readable), FUTURE_REVISION above the current
// one. The model-based property test (model.test.ts) checks the same against whole-store copies per revision.

import { describe, expect, it } from "vitest";
import { StateMachine, type Command, type Outcome, type RangeOp } from "../../src/statemachine/index.js";

const v = (s: string) => new TextEncoder().encode(s);
const text = (u: Uint8Array) => new TextDecoder().decode(u);

function setup(limits = {}) {
  const sm = new StateMachine({ limits });
  const run = (command: Command): Outcome => sm.applyCommand(sm.lastApplied + 1, command).result;
  const read = (op: Omit<RangeOp, "op">) => {
    const r = sm.range({ op: "range", ...op });
    if ("code" in r) return r;
    return { ...r, kvs: r.kvs.map((kv) => `${kv.key}=${text(kv.value)}@${kv.modRevision}`) };
  };
  return { sm, run, read };
}

describe("reads at a past revision", () => {
  it("see each key as it was: overwritten, deleted, not yet created", () => {
    const { run, read } = setup();
    run({ op: "put", key: "a", value: v("1") }); // rev 1
    run({ op: "put", key: "b", value: v("1") }); // rev 2
    run({ op: "put", key: "a", value: v("2") }); // rev 3
    run({ op: "delete", key: "b" }); // rev 4
    run({ op: "put", key: "c", value: v("1") }); // rev 5
    expect(read({ key: "a", revision: 1 })).toMatchObject({ revision: 5, kvs: ["a=1@1"] });
    expect(read({ key: "a", revision: 3 })).toMatchObject({ kvs: ["a=2@3"] });
    expect(read({ key: "b", revision: 1 })).toMatchObject({ kvs: [] });
    expect(read({ key: "b", revision: 3 })).toMatchObject({ kvs: ["b=1@2"] });
    expect(read({ key: "b", revision: 4 })).toMatchObject({ kvs: [] });
    expect(read({ key: "", prefix: true, revision: 2 })).toMatchObject({ kvs: ["a=1@1", "b=1@2"] });
    expect(read({ key: "", prefix: true, revision: 4 })).toMatchObject({ kvs: ["a=2@3"] });
    expect(read({ key: "", prefix: true, revision: 5 })).toMatchObject({ kvs: ["a=2@3", "c=1@5"] });
    // Pages at a past revision: limit and cursor work as at the current one.
    expect(read({ key: "", prefix: true, revision: 3, limit: 1 })).toMatchObject({
      kvs: ["a=2@3"],
      more: true,
      cursor: "a",
    });
    expect(read({ key: "", prefix: true, revision: 3, limit: 1, after: "a" })).toMatchObject({
      kvs: ["b=1@2"],
      more: false,
    });
  });

  it("in a txn, a read at the revision before the txn's own writes sees the store without them", () => {
    const { run } = setup();
    run({ op: "put", key: "a", value: v("1") }); // rev 1
    const r = run({
      op: "txn",
      compare: [],
      success: [
        { op: "put", key: "a", value: v("2") },
        { op: "range", key: "a", revision: 1 },
        { op: "range", key: "a" },
      ],
      failure: [],
    });
    const responses = (r as { value: { responses: { kvs?: { value: Uint8Array }[] }[] } }).value.responses;
    expect(text(responses[1].kvs![0].value)).toBe("1");
    expect(text(responses[2].kvs![0].value)).toBe("2");
  });

  it("answer COMPACTED naming the oldest readable revision, and FUTURE_REVISION past the current one", () => {
    const { run, read } = setup({ historyRevisions: 3 });
    for (let i = 1; i <= 6; i++) run({ op: "put", key: "k", value: v(String(i)) });
    // The history holds revisions 4..6; the store at revision 3 is rebuilt from them.
    expect(read({ key: "k", revision: 3 })).toMatchObject({ kvs: ["k=3@3"] });
    const compacted = read({ key: "k", revision: 2 });
    expect(compacted).toMatchObject({ code: "COMPACTED", compactRevision: 3 });
    expect((compacted as { message: string }).message).toMatch(
      /revision 2 is compacted; the oldest revision still readable is 3/,
    );
    expect(read({ key: "k", revision: 7 })).toMatchObject({ code: "FUTURE_REVISION", field: "revision" });
    run({ op: "compact", revision: 5 });
    expect(read({ key: "k", revision: 4 })).toMatchObject({ code: "COMPACTED", compactRevision: 5 });
    expect(read({ key: "k", revision: 5 })).toMatchObject({ kvs: ["k=5@5"] });
    // A txn with a read past the current revision fails as a whole, naming the op.
    expect(
      run({ op: "txn", compare: [], success: [{ op: "range", key: "k", revision: 9 }], failure: [] }),
    ).toMatchObject({
      ok: false,
      error: { code: "FUTURE_REVISION", field: "success[0].revision" },
    });
  });

  it("refuses a revision that is not a positive integer", () => {
    const { read } = setup();
    expect(read({ key: "k", revision: -1 })).toMatchObject({ code: "INVALID_ARGUMENT", field: "revision" });
    expect(read({ key: "k", revision: 1.5 })).toMatchObject({ code: "INVALID_ARGUMENT", field: "revision" });
  });
});
