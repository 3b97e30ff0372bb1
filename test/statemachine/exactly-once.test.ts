// Exactly-once: retries of the same (clientId, seq), duplicated and out of order, apply once; a session ends
// with its lease.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCommand, type Command } from "../../src/statemachine/commands.js";
import { StateMachine } from "../../src/statemachine/state-machine.js";
import { normalize } from "./arbitraries.js";

function openSession(sm: StateMachine): { clientId: number; lease: number; next: () => number } {
  let index = sm.lastApplied;
  const lease = (
    sm.applyCommand(++index, { op: "leaseGrant", ttlMs: 5000, grantedAt: 0 }).result as { value: { id: number } }
  ).value.id;
  const clientId = (sm.applyCommand(++index, { op: "registerClient", lease }).result as { value: { clientId: number } })
    .value.clientId;
  return { clientId, lease, next: () => sm.lastApplied + 1 };
}

describe("exactly-once client sessions", () => {
  it("applies each seq once however often and in whatever order it arrives", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }).chain((n) =>
          fc.tuple(
            fc.constant(n),
            fc.shuffledSubarray(
              [...Array(3 * n).keys()].map((i) => 1 + (i % n)),
              { minLength: 3 * n },
            ),
          ),
        ),
        ([n, deliveries]) => {
          const sm = new StateMachine();
          const { clientId, next } = openSession(sm);
          const first = new Map<number, unknown>();
          for (const seq of deliveries) {
            // Each seq writes its own key: a second application would show as version 2 and a new revision.
            const command: Command = {
              op: "put",
              key: `k${seq}`,
              value: new Uint8Array([seq]),
              session: { clientId, seq, lowestUnacked: 1 },
            };
            const { result } = sm.apply(next(), encodeCommand(command));
            expect(result.ok).toBe(true);
            if (!first.has(seq)) first.set(seq, normalize(result));
            else expect(normalize(result)).toEqual(first.get(seq));
          }
          expect(sm.revision).toBe(n);
          for (let seq = 1; seq <= n; seq++) expect(sm.get(`k${seq}`)?.version).toBe(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("never applies twice when acknowledgements advance out of order", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.integer({ min: 1, max: 12 }).chain((seq) => fc.tuple(fc.constant(seq), fc.integer({ min: 1, max: seq }))),
          { minLength: 1, maxLength: 60 },
        ),
        (deliveries) => {
          const sm = new StateMachine({ limits: { maxSessionResponses: 4 } });
          const { clientId, next } = openSession(sm);
          const applied = new Map<number, unknown>();
          for (const [seq, lowestUnacked] of deliveries) {
            const { result } = sm.applyCommand(next(), {
              op: "put",
              key: `k${seq}`,
              value: new Uint8Array([seq]),
              session: { clientId, seq, lowestUnacked },
            });
            if (result.ok) {
              if (applied.has(seq)) expect(normalize(result)).toEqual(applied.get(seq));
              else applied.set(seq, normalize(result));
            } else {
              expect(["STALE_SEQ", "SESSION_BUSY"]).toContain(result.error.code);
            }
          }
          for (const seq of applied.keys()) expect(sm.get(`k${seq}`)?.version).toBe(1);
          expect(sm.revision).toBe(applied.size);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("answers STALE_SEQ for an acknowledged seq and keeps the recorded outcome across a snapshot", () => {
    const sm = new StateMachine();
    const { clientId, next } = openSession(sm);
    const put = (seq: number, lowestUnacked: number) =>
      sm.applyCommand(next(), {
        op: "put",
        key: "x",
        value: new Uint8Array([seq]),
        session: { clientId, seq, lowestUnacked },
      }).result;
    expect(put(1, 1)).toEqual({ ok: true, value: { revision: 1 } });
    expect(put(2, 1)).toEqual({ ok: true, value: { revision: 2 } });
    const restored = StateMachine.restore(sm.snapshot());
    const replay = restored.applyCommand(sm.lastApplied + 1, {
      op: "put",
      key: "x",
      value: new Uint8Array([9]),
      session: { clientId, seq: 2, lowestUnacked: 2 },
    }).result;
    expect(normalize(replay)).toEqual({ ok: true, value: { revision: 2 } });
    expect(restored.revision).toBe(2);
    expect(put(3, 3)).toEqual({ ok: true, value: { revision: 3 } });
    const stale = put(1, 1); // the session already moved lowestUnacked to 3
    expect(stale.ok === false && stale.error.code).toBe("STALE_SEQ");
    expect(sm.get("x")?.version).toBe(3);
  });

  it("ends the session with its lease", () => {
    const sm = new StateMachine();
    const { clientId, lease, next } = openSession(sm);
    sm.applyCommand(next(), { op: "leaseExpire", ids: [lease] });
    const { result } = sm.applyCommand(next(), {
      op: "put",
      key: "x",
      value: new Uint8Array(),
      session: { clientId, seq: 1, lowestUnacked: 1 },
    });
    expect(result.ok === false && result.error.code).toBe("SESSION_EXPIRED");
    expect(sm.keyCount).toBe(0);
  });
});
