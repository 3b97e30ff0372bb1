// A restore taken a run at a time (StateMachine.beginRestore, restore-job.ts) must rebuild exactly the state a
// whole restore does, whatever the budget per step; the state machine stays empty until the last step, and a
// malformed record fails the step that reaches it, leaving it so.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createCoordinationStateMachine } from "../../src/locks/index.js";
import type { Command } from "../../src/statemachine/commands.js";
import { SnapshotFormatError } from "../../src/statemachine/errors.js";
import { StateMachine } from "../../src/statemachine/state-machine.js";
import { resolve, templateArb, TEST_LIMITS } from "./arbitraries.js";
import { Model } from "./model.js";

/** Runs `job` to its end in steps of `budget`; returns how many it took. */
function runToEnd(job: { step(budget: number): boolean }, budget: number): number {
  let steps = 1;
  while (!job.step(budget)) {
    steps++;
    expect(steps).toBeLessThan(100_000);
  }
  return steps;
}

describe("a restore taken a run at a time", () => {
  it("rebuilds the state a whole restore does, whatever the budget, and nothing before its last step", () => {
    fc.assert(
      fc.property(
        fc.array(templateArb, { minLength: 1, maxLength: 60, size: "max" }),
        fc.integer({ min: 1, max: 4096 }),
        (commands, budget) => {
          const sm = new StateMachine({ limits: TEST_LIMITS });
          const model = new Model(TEST_LIMITS);
          commands.forEach((t, i) => {
            const command = resolve(t, model);
            model.apply(i + 1, command);
            sm.applyCommand(i + 1, command);
          });
          const bytes = sm.snapshot();
          const into = new StateMachine({ limits: TEST_LIMITS });
          const job = into.beginRestore(bytes);
          while (!job.step(budget)) {
            expect(into.keyCount).toBe(0);
            expect(into.lastApplied).toBe(0);
          }
          expect(job.step(budget)).toBe(true); // a step after the end does nothing
          expect(into.hash()).toBe(sm.hash());
          expect(into.lastApplied).toBe(sm.lastApplied);
          expect(into.sizeBytes).toBe(sm.sizeBytes);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("restores 3,000 keys, a lease holding a third of them and a lock, one record per step", () => {
    const c = createCoordinationStateMachine();
    let index = 0;
    const run = (command: Command) => c.stateMachine.applyCommand(++index, command).result;
    const lease = (
      run({ op: "leaseGrant", ttlMs: 10_000, grantedAt: 1 } as Command) as { ok: true; value: { id: number } }
    ).value.id;
    for (let i = 0; i < 3000; i++) {
      run({
        op: "put",
        key: `k/${String(i).padStart(5, "0")}`,
        value: new TextEncoder().encode(`v${i}`),
        lease: i % 3 === 0 ? lease : undefined,
      } as Command);
    }
    run({ op: "lockAcquire", name: "job", lease, wait: true } as Command);
    const into = createCoordinationStateMachine();
    expect(runToEnd(into.stateMachine.beginRestore(c.stateMachine.snapshot()), 1)).toBe(3000);
    expect(into.stateMachine.hash()).toBe(c.stateMachine.hash());
    expect(into.lockStatus("job")).toEqual(c.lockStatus("job"));
    // The leased keys went with their lease: revoking it deletes them on both.
    const revoke = { op: "leaseRevoke", id: lease } as Command;
    c.stateMachine.applyCommand(++index, revoke);
    into.stateMachine.applyCommand(index, revoke);
    expect(into.stateMachine.keyCount).toBe(2000);
    expect(into.stateMachine.hash()).toBe(c.stateMachine.hash());
  });

  it("fails the step that reaches a malformed record, leaving the state machine empty", () => {
    const sm = new StateMachine();
    for (let i = 0; i < 100; i++)
      sm.applyCommand(i + 1, {
        op: "put",
        key: `k${String(i).padStart(3, "0")}`,
        value: new Uint8Array(10),
      } as Command);
    const bytes = sm.snapshot();
    // The last record's value length made too long: it runs past the end.
    const damaged = bytes.slice();
    const view = new DataView(damaged.buffer);
    const lastValueLength = damaged.length - 32 - 10 - 4;
    view.setUint32(lastValueLength, 1_000, true);
    const into = new StateMachine();
    const job = into.beginRestore(damaged);
    let steps = 0;
    expect(() => {
      while (!job.step(200)) steps++;
    }).toThrow(SnapshotFormatError);
    expect(steps).toBeGreaterThan(10); // the records before it were read in earlier steps
    expect(into.keyCount).toBe(0);
    expect(into.lastApplied).toBe(0);
    // A header that is not a snapshot's is refused at once.
    expect(() => new StateMachine().beginRestore(bytes.subarray(0, 20))).toThrow(SnapshotFormatError);
    expect(() => new StateMachine().beginRestore(new Uint8Array(64))).toThrow(/magic/);
  });

  it("is refused on a state machine that has applied entries", () => {
    const sm = new StateMachine();
    sm.applyCommand(1, { op: "put", key: "a", value: new Uint8Array(1) } as Command);
    expect(() => sm.beginRestore(new StateMachine().snapshot())).toThrow(/applied entries/);
  });
});
