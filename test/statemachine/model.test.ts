// Model-based property tests: random command sequences applied to the state machine and to the reference
// model must agree on every result, every event and every watch query; snapshot/restore at a random point
// must give the same subsequent results, bytes, hash and space accounting (the size kept up to date as commands
// apply equals the size a restore computes from scratch).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCommand } from "../../src/statemachine/commands.js";
import { StateMachine } from "../../src/statemachine/state-machine.js";
import { normalize, resolve, templateArb, TEST_LIMITS } from "./arbitraries.js";
import { Model } from "./model.js";

const RUNS = 1000;

describe("state machine vs reference model", () => {
  it("agrees on every result, event and watch query", () => {
    fc.assert(
      fc.property(
        fc.array(templateArb, { minLength: 10, maxLength: 80, size: "max" }),
        fc.boolean(),
        (templates, viaBytes) => {
          const sm = new StateMachine({ limits: TEST_LIMITS });
          const model = new Model(TEST_LIMITS);
          templates.forEach((t, i) => {
            const command = resolve(t, model);
            const index = i + 1;
            const got = viaBytes ? sm.apply(index, encodeCommand(command)) : sm.applyCommand(index, command);
            const want = model.apply(index, command);
            expect(normalize(got.result), `result of #${index} ${JSON.stringify(normalize(command))}`).toEqual(
              normalize(want.result),
            );
            expect(normalize(got.events), `events of #${index}`).toEqual(normalize(want.events));
            expect(sm.revision).toBe(model.revision);
            expect(sm.compactRevision).toBe(model.compactRevision);
            const from = 1 + (index % (model.revision + 2));
            const watched = sm.watchEventsSince(from);
            const expected = model.watch(from);
            if (expected.ok) expect(normalize(watched)).toEqual(normalize(expected.value));
            else expect(normalize(watched)).toEqual(normalize(expected.error));
          });
          expect(sm.keyCount).toBe(model.kvs.size);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("snapshot and restore at a random point give the same later results, bytes and hash", () => {
    fc.assert(
      fc.property(fc.array(templateArb, { minLength: 10, maxLength: 60, size: "max" }), fc.nat(), (templates, cut) => {
        const split = cut % templates.length;
        const original = new StateMachine({ limits: TEST_LIMITS });
        const model = new Model(TEST_LIMITS);
        let restored: StateMachine | null = null;
        templates.forEach((t, i) => {
          if (i === split) {
            const bytes = original.snapshot();
            restored = StateMachine.restore(bytes, { limits: TEST_LIMITS });
            expect(restored.snapshot()).toEqual(bytes);
            expect(restored.hash()).toBe(original.hash());
            expect(restored.sizeBytes).toBe(original.sizeBytes);
          }
          const command = resolve(t, model);
          model.apply(i + 1, command);
          const a = original.apply(i + 1, encodeCommand(command));
          if (restored !== null) {
            const b = (restored as StateMachine).apply(i + 1, encodeCommand(command));
            expect(normalize(b)).toEqual(normalize(a));
            expect((restored as StateMachine).sizeBytes).toBe(original.sizeBytes);
          }
        });
        expect(restored).not.toBeNull();
        expect(restored!.snapshot()).toEqual(original.snapshot());
        expect(restored!.hash()).toBe(original.hash());
        expect(StateMachine.restore(original.snapshot(), { limits: TEST_LIMITS }).sizeBytes).toBe(original.sizeBytes);
      }),
      { numRuns: RUNS },
    );
  });
});
