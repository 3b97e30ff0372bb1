// A snapshot taken a run at a time (StateMachine.beginSnapshot, snapshot-job.ts) must give exactly the bytes
// of a whole snapshot taken at the moment it began, whatever is applied between its steps: puts, overwrites,
// deletes (prefix ones too), lease revocations and expiries deleting keys, compactions, keys deleted and
// re-created, locks acquired and released, and whole snapshots taken in between.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createCoordinationStateMachine } from "../../src/locks/index.js";
import type { Command } from "../../src/statemachine/commands.js";
import { contentHash } from "../../src/statemachine/hash.js";
import {
  packSnapshotMeta,
  SnapshotMetaPacker,
  SnapshotPieces,
  snapshotRecordBytes,
  type SnapshotMeta,
} from "../../src/statemachine/snapshot.js";
import type { WatchEvent } from "../../src/statemachine/watch-history.js";
import { Packr } from "msgpackr";
import { StateMachine } from "../../src/statemachine/state-machine.js";
import { resolve, templateArb, TEST_LIMITS } from "./arbitraries.js";
import { Model } from "./model.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/**
 * A job whose pieces are copied and collected (`out.bytes()`), of `pieceBytes` (small ones put records across
 * many). Each piece is released once copied, as a member's file releases it once written: the writer fills it
 * again, which must not change what was handed over before.
 */
function collecting(sm: StateMachine, pieceBytes?: number, prefix?: Uint8Array) {
  const out = new SnapshotPieces();
  const pieces: number[] = [];
  const job = sm.beginSnapshot({
    emit: (piece, release) => {
      pieces.push(piece.length);
      out.emit(piece.slice(), () => {});
      release();
    },
    prefix,
    pieceBytes,
  });
  return { job, out, pieces };
}

/** Byte equality (vitest's toEqual walks a large typed array element by element, slowly). */
function expectSameBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.length).toBe(want.length);
  expect(contentHash(got)).toBe(contentHash(want));
  expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want)).toBe(true);
}

describe("a snapshot taken a run at a time", () => {
  it("gives the bytes of the state at its start, whatever random commands apply between its steps", () => {
    fc.assert(
      fc.property(
        fc.array(templateArb, { minLength: 5, maxLength: 40, size: "max" }),
        fc.array(templateArb, { minLength: 1, maxLength: 40, size: "max" }),
        fc.integer({ min: 1, max: 400 }),
        fc.nat({ max: 3 }),
        fc.integer({ min: 1, max: 2048 }),
        (before, during, budget, perStep, pieceBytes) => {
          const sm = new StateMachine({ limits: TEST_LIMITS });
          const model = new Model(TEST_LIMITS);
          let index = 0;
          const apply = (t: (typeof before)[number]) => {
            const command = resolve(t, model);
            index++;
            model.apply(index, command);
            sm.applyCommand(index, command);
          };
          before.forEach(apply);
          const expected = sm.snapshot();
          const { job, out, pieces } = collecting(sm, pieceBytes);
          let steps = 0;
          let next = 0;
          while (!job.step(budget)) {
            steps++;
            expect(steps).toBeLessThan(1000);
            for (let i = 0; i < perStep && next < during.length; i++) apply(during[next++]);
            if (steps % 3 === 0) sm.snapshot(); // a whole snapshot meanwhile, its own capture beside the job's
          }
          while (next < during.length) apply(during[next++]);
          expectSameBytes(out.bytes(), expected);
          expect(job.bytes).toBe(expected.length);
          // Pieces of about pieceBytes: a record starts a new piece only when it does not fit in the current one.
          for (const length of pieces.slice(1, -1)) expect(length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("gives those bytes with 3,000 keys, leases, locks and sessions changing between one-record steps", () => {
    const c = createCoordinationStateMachine();
    const sm = c.stateMachine;
    let index = 0;
    const run = (command: Command) => sm.applyCommand(++index, command).result;
    const leaseOf = (r: unknown) => (r as { ok: true; value: { id: number } }).value.id;
    const leaseA = leaseOf(run({ op: "leaseGrant", ttlMs: 10_000, grantedAt: 1 } as Command));
    const leaseB = leaseOf(run({ op: "leaseGrant", ttlMs: 10_000, grantedAt: 1 } as Command));
    for (let i = 0; i < 3000; i++) {
      const lease = i % 10 === 0 ? leaseA : i % 10 === 1 ? leaseB : undefined;
      run({
        op: "put",
        key: `k/${String(i).padStart(5, "0")}`,
        value: bytes(`v${i}`.repeat(1 + (i % 7))),
        lease,
      } as Command);
    }
    run({ op: "lockAcquire", name: "db", lease: leaseA, limit: 1, wait: true } as Command);
    run({ op: "lockAcquire", name: "db", lease: leaseB, limit: 1, wait: true } as Command);
    run({ op: "registerClient", lease: leaseA } as Command);
    const expected = sm.snapshot();

    // The record phase charges a record at least 256 (snapshot-job.ts): budget 1 is a record per step, so every
    // command below lands between two records.
    const { job, out: collected, pieces } = collecting(sm, 4096, bytes("prefix"));
    const between: (() => void)[] = [
      () => sm.snapshot(), // a whole one meanwhile, first: the changes below must still leave the job's view alone
      () => run({ op: "put", key: "k/00000", value: bytes("overwritten") } as Command), // captured early, then changed
      () => run({ op: "put", key: "k/02999", value: bytes("overwritten") } as Command), // changed before its capture
      () => run({ op: "put", key: "k/01500", value: bytes("twice") } as Command), // changed twice: the first pre-image counts
      () => run({ op: "delete", key: "k/01500" } as Command),
      () => run({ op: "put", key: "k/01500", value: bytes("re-created") } as Command),
      () => run({ op: "put", key: "k/00500x", value: bytes("created after the start") } as Command),
      () => run({ op: "delete", key: "k/00500x" } as Command),
      () => run({ op: "delete", key: "k/02", prefix: true } as Command), // a thousand keys, most not yet captured
      () => run({ op: "leaseExpire", ids: [leaseA] } as Command), // deletes its keys, releases its lock, ends its session
      () => run({ op: "compact", revision: sm.revision - 1 } as Command),
      () => run({ op: "leaseRevoke", id: leaseB } as Command),
      () => run({ op: "put", key: "k/02001", value: bytes("back") } as Command),
    ];
    let steps = 0;
    while (!job.step(1)) {
      between[steps % between.length]();
      steps++;
      if (steps === 200)
        between.splice(0, between.length, () => run({ op: "put", key: `late/${steps}`, value: bytes("x") } as Command));
    }
    expect(steps).toBeGreaterThan(3000 - 2);
    expect(pieces.length).toBeGreaterThan(5);
    const out = collected.bytes();
    expect(out.subarray(0, 6)).toEqual(bytes("prefix"));
    expectSameBytes(out.subarray(6), expected);
    // The records the store holds now are untouched by the job.
    expect(sm.get("k/00000")!.value).toEqual(bytes("overwritten"));
  });

  it("charges each record its bytes, so a step of large values writes few of them", () => {
    const sm = new StateMachine();
    const big = new Uint8Array(100_000).fill(7);
    for (let i = 0; i < 50; i++) sm.applyCommand(i + 1, { op: "put", key: `big/${i}`, value: big } as Command);
    const expected = sm.snapshot();
    const { job, out, pieces } = collecting(sm, 64 * 1024);
    const record = snapshotRecordBytes(sm.get("big/0")!);
    let steps = 0;
    while (!job.step(3 * record)) steps++;
    // 50 records, 3 per step.
    expect(steps).toBeGreaterThanOrEqual(Math.floor(50 / 3) - 1);
    expectSameBytes(out.bytes(), expected);
    // A record larger than a piece gets a piece of its own: the head, then one piece per record.
    const inKeyOrder = Array.from({ length: 50 }, (_, i) => `big/${i}`).sort();
    expect(pieces.slice(1)).toEqual(inKeyOrder.map((key) => snapshotRecordBytes(sm.get(key)!)));
  });

  it("packs the meta part in pieces exactly as msgpack packs the whole tuple, for histories of every array header", () => {
    // The options of snapshot.ts's packr: packing the 8-tuple at once is what the format was defined by.
    const whole = new Packr({ useRecords: false, copyBuffers: true, mapsAsObjects: true, moreTypes: false });
    const kv = (i: number) => ({
      key: `k${i}é`,
      value: bytes("v".repeat(i % 40)),
      createRevision: i,
      modRevision: i + 1,
      version: 2,
      lease: i % 3,
    });
    for (const events of [0, 5, 15, 16, 300, 65_535, 65_536]) {
      // Records in the first 300 events (the largest counts only cross msgpack's array16 / array32 boundary).
      const history = Array.from({ length: events }, (_, i) =>
        i >= 300
          ? { type: "delete", revision: i + 1, key: "k" }
          : i % 2 === 0
            ? { type: "put", revision: i + 1, kv: kv(i), prevKv: kv(i + 1) }
            : { type: "delete", revision: i + 1, key: `k${i}`, prevKv: kv(i) },
      ) as WatchEvent[];
      const meta: SnapshotMeta = {
        lastApplied: 123_456,
        revision: events + 1,
        compactRevision: 3,
        leases: [[7, 5000, 1.7e12]],
        sessions: [[9, 7, 2, [[2, { ok: true, value: { revision: 4 } }]]]],
        history,
        extensions: [["locks", { db: [1, 2] }]],
        quotaBytes: 2 ** 31,
        alarms: [["NO_SPACE", 77]],
      };
      const want = whole.pack([
        meta.lastApplied,
        meta.revision,
        meta.compactRevision,
        meta.leases,
        meta.sessions,
        history,
        meta.extensions,
        [meta.quotaBytes, meta.alarms],
      ]);
      expectSameBytes(packSnapshotMeta(meta), want);
      const packer = new SnapshotMetaPacker(meta);
      let runs = 0;
      while (!packer.done) {
        packer.step(20_000);
        runs++;
      }
      expectSameBytes(packer.bytes, want);
      if (events >= 300) expect(runs).toBeGreaterThan(2);
    }
  });

  it("of an empty store is the whole snapshot at once; a cancelled one leaves the store as it was", () => {
    const sm = new StateMachine();
    const empty = collecting(sm);
    expect(empty.job.step(1)).toBe(true);
    expectSameBytes(empty.out.bytes(), new StateMachine().snapshot());

    for (let i = 0; i < 10; i++) sm.applyCommand(i + 1, { op: "put", key: `k${i}`, value: bytes("v") } as Command);
    const { job } = collecting(sm);
    job.step(1);
    job.cancel();
    expect(() => job.bytes).toThrow(/before the job is done/);
    sm.applyCommand(11, { op: "delete", key: "k", prefix: true } as Command);
    const after = collecting(sm);
    while (!after.job.step(1));
    expectSameBytes(after.out.bytes(), sm.snapshot());
    expect(StateMachine.restore(after.out.bytes()).keyCount).toBe(0);
  });
});
