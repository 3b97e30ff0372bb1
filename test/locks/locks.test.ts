import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeCommand, SnapshotFormatError, StateMachine } from "../../src/statemachine/index.js";
import { decodeSnapshot, encodeSnapshot } from "../../src/statemachine/snapshot.js";
import { restoreCoordinationStateMachine, type AcquireResult, type LockStatus } from "../../src/locks/index.js";
import { bytes, errorCode, harness, value } from "./harness.js";

const acquire = (name: string, lease: number, extra: { wait?: boolean; limit?: number } = {}) => ({
  op: "lockAcquire",
  name,
  lease,
  ...extra,
});

describe("locks", () => {
  it("grants a free lock with the granting index as token, readable by anyone", () => {
    const h = harness();
    const lease = h.lease();
    const out = h.run(acquire("db", lease));
    const index = h.c.stateMachine.lastApplied;
    expect(value(out.result)).toEqual({ granted: true, token: index });
    expect(h.events(out)).toEqual([{ kind: "lockGranted", name: "db", lease, token: index }]);
    expect(h.c.lockStatus("db")).toEqual({ name: "db", limit: 1, holders: [{ lease, token: index }], waiters: [] });
    expect(h.c.lockStatus("other")).toEqual({ name: "other", limit: 0, holders: [], waiters: [] });
    // lockStatus is also an op, for reads through the log.
    expect(value(h.run({ op: "lockStatus", name: "db" }).result)).toEqual(h.c.lockStatus("db"));
  });

  it("queues FIFO and hands off on release with a new, larger token", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    const ta = value<{ token: number }>(h.run(acquire("db", a)).result).token;
    expect(value(h.run(acquire("db", b)).result)).toEqual({ granted: false, queued: 1 });
    expect(value(h.run(acquire("db", c)).result)).toEqual({ granted: false, queued: 2 });
    const rel = h.run({ op: "lockRelease", name: "db", token: ta });
    const index = h.c.stateMachine.lastApplied;
    expect(value(rel.result)).toEqual({ granted: [{ lease: b, token: index }] });
    expect(h.events(rel)).toEqual([
      { kind: "lockReleased", name: "db", lease: a, token: ta, reason: "released" },
      { kind: "lockGranted", name: "db", lease: b, token: index },
    ]);
    expect(index).toBeGreaterThan(ta);
    expect(h.c.lockStatus("db").waiters).toEqual([c]);
  });

  it("answers try-lock with the holder, and a repeated acquire with the existing state", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    const token = value<{ token: number }>(h.run(acquire("db", a)).result).token;
    expect(value(h.run(acquire("db", b, { wait: false })).result)).toEqual({
      granted: false,
      held: true,
      holder: a,
      token,
    });
    expect(h.c.lockStatus("db").waiters).toEqual([]);
    expect(value(h.run(acquire("db", a)).result)).toEqual({ granted: true, token });
    h.run(acquire("db", b));
    h.run(acquire("db", c));
    expect(value(h.run(acquire("db", c)).result)).toEqual({ granted: false, queued: 2 });
    expect(value(h.run(acquire("db", c, { wait: false })).result)).toEqual({ granted: false, queued: 2 });
    expect(h.c.lockStatus("db").waiters).toEqual([b, c]);
  });

  it("refuses a stale token release and changes nothing", () => {
    const h = harness();
    const [a, b] = [h.lease(), h.lease()];
    const ta = value<{ token: number }>(h.run(acquire("db", a)).result).token;
    h.run(acquire("db", b));
    h.run({ op: "lockRelease", name: "db", token: ta });
    const before = h.c.lockStatus("db");
    const out = h.run({ op: "lockRelease", name: "db", token: ta });
    expect(errorCode(out.result)).toBe("LOCK_NOT_HELD");
    expect(out.result.ok ? "" : out.result.error.message).toMatch(
      /token \d+ is not held \(current tokens: \d+\); nothing changed/,
    );
    expect(out.events).toEqual([]);
    expect(errorCode(h.run({ op: "lockRelease", name: "nothing", token: 3 }).result)).toBe("LOCK_NOT_HELD");
    expect(h.c.lockStatus("db")).toEqual(before);
    expect(before.holders.map((x) => x.lease)).toEqual([b]);
  });

  it("refuses acquire with a dead lease and a conflicting limit", () => {
    const h = harness();
    const a = h.lease();
    expect(errorCode(h.run(acquire("db", 999)).result)).toBe("LEASE_NOT_FOUND");
    h.run(acquire("db", a, { limit: 2 }));
    const out = h.run(acquire("db", h.lease(), { limit: 1 }));
    expect(errorCode(out.result)).toBe("LOCK_LIMIT_MISMATCH");
    expect(out.result.ok ? "" : out.result.error.message).toContain("limit 2");
  });

  it("validates every field with a typed error naming it", () => {
    const h = harness({ coordinationLimits: { maxNameBytes: 8, maxSemaphoreLimit: 10 } });
    const cases: [Record<string, unknown>, string][] = [
      [{ op: "lockAcquire", lease: 1 }, "name"],
      [{ op: "lockAcquire", name: "", lease: 1 }, "name"],
      [{ op: "lockAcquire", name: "123456789", lease: 1 }, "name"],
      [{ op: "lockAcquire", name: "a\ud800", lease: 1 }, "name"],
      [{ op: "lockAcquire", name: "a", lease: 0 }, "lease"],
      [{ op: "lockAcquire", name: "a", lease: 1.5 }, "lease"],
      [{ op: "lockAcquire", name: "a", lease: 1, wait: "yes" }, "wait"],
      [{ op: "lockAcquire", name: "a", lease: 1, limit: 0 }, "limit"],
      [{ op: "lockAcquire", name: "a", lease: 1, limit: 11 }, "limit"],
      [{ op: "lockRelease", name: "a" }, "token"],
      [{ op: "lockRelease", name: "a", token: 1, lease: -1 }, "lease"],
      // A fence's lease, checked here as well as in the client (whose checkFence refuses these before sending).
      [{ op: "put", key: "k", value: new Uint8Array(1), fence: { lock: "a", token: 1, lease: 0 } }, "fence.lease"],
      [{ op: "put", key: "k", value: new Uint8Array(1), fence: { lock: "a", token: 1, lease: 2.5 } }, "fence.lease"],
      [{ op: "delete", key: "k", fence: { lock: "a", token: 1, lease: "2" } }, "fence.lease"],
    ];
    for (const [command, field] of cases) {
      const bytesOut = h.c.stateMachine.apply(h.c.stateMachine.lastApplied + 1, encodeCommand(command as never));
      expect(bytesOut.result, JSON.stringify(command)).toMatchObject({
        ok: false,
        error: { code: "INVALID_ARGUMENT", field },
      });
    }
  });

  it("releases on lease revoke and grants the next live waiter at the same index", () => {
    const h = harness();
    const [a, b] = [h.lease(), h.lease()];
    const ta = value<{ token: number }>(h.run(acquire("db", a)).result).token;
    h.run(acquire("db", b));
    const out = h.run({ op: "leaseRevoke", id: a });
    const index = h.c.stateMachine.lastApplied;
    expect(h.events(out)).toEqual([
      { kind: "lockReleased", name: "db", lease: a, token: ta, reason: "leaseEnded" },
      { kind: "lockGranted", name: "db", lease: b, token: index },
    ]);
    // Lease-end events carry the lock section, not "core".
    expect(out.events.filter((e) => e.type === "extension").map((e) => (e as { section: string }).section)).toEqual([
      "locks",
      "locks",
    ]);
  });

  it("never grants to a lease that expired while queued", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    const ta = value<{ token: number }>(h.run(acquire("db", a)).result).token;
    h.run(acquire("db", b));
    h.run(acquire("db", c));
    const expired = h.run({ op: "leaseExpire", ids: [b] });
    expect(h.events(expired)).toEqual([]);
    expect(h.c.lockStatus("db").waiters).toEqual([c]);
    const rel = h.run({ op: "lockRelease", name: "db", token: ta });
    expect(h.events(rel).filter((e) => e.kind === "lockGranted")).toEqual([
      { kind: "lockGranted", name: "db", lease: c, token: h.c.stateMachine.lastApplied },
    ]);
  });

  it("one entry ending the holder and the next waiter grants only the live third, once", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    const ta = value<{ token: number }>(h.run(acquire("db", a)).result).token;
    h.run(acquire("db", b));
    h.run(acquire("db", c));
    const out = h.run({ op: "leaseExpire", ids: [a, b] });
    const index = h.c.stateMachine.lastApplied;
    expect(h.events(out)).toEqual([
      { kind: "lockReleased", name: "db", lease: a, token: ta, reason: "leaseEnded" },
      { kind: "lockGranted", name: "db", lease: c, token: index },
    ]);
  });

  it("a semaphore never exceeds its limit; holders freed by one entry share its index", () => {
    const h = harness();
    const leases = [h.lease(), h.lease(), h.lease(), h.lease(), h.lease()];
    const results = leases.map((l) => value<AcquireResult>(h.run(acquire("pool", l, { limit: 2 })).result));
    expect(results.map((r) => r.granted)).toEqual([true, true, false, false, false]);
    expect(h.c.lockStatus("pool").holders).toHaveLength(2);
    const out = h.run({ op: "leaseExpire", ids: [leases[0], leases[1]] });
    const index = h.c.stateMachine.lastApplied;
    const status: LockStatus = h.c.lockStatus("pool");
    expect(status.holders).toEqual([
      { lease: leases[2], token: index },
      { lease: leases[3], token: index },
    ]);
    expect(h.events(out).filter((e) => e.kind === "lockGranted")).toHaveLength(2);
    // A shared token needs the lease to say which hold is released.
    expect(h.run({ op: "lockRelease", name: "pool", token: index }).result).toMatchObject({
      ok: false,
      error: { field: "lease" },
    });
    expect(value(h.run({ op: "lockRelease", name: "pool", token: index, lease: leases[3] }).result)).toEqual({
      granted: [{ lease: leases[4], token: h.c.stateMachine.lastApplied }],
    });
  });

  it("a token shared by one entry's grants stays shared: a gone sharer's late write and release are refused", () => {
    const h = harness();
    const leases = [h.lease(), h.lease(), h.lease(), h.lease()];
    for (const l of leases) h.run(acquire("pool", l, { limit: 2 }));
    h.run({ op: "leaseExpire", ids: [leases[0], leases[1]] });
    const shared = h.c.stateMachine.lastApplied;
    const [gone, stays] = [leases[2], leases[3]];
    h.run({ op: "leaseRevoke", id: gone });
    expect(h.c.lockStatus("pool").holders).toEqual([{ lease: stays, token: shared }]);
    const put = (fence: { lock: string; token: number; lease?: number }) =>
      h.run({ op: "put", key: "res", value: bytes("v"), fence }).result;
    // The token alone names no single hold any more: `stays` has it, and so did `gone`, whose write this may be.
    const unnamed = put({ lock: "pool", token: shared });
    expect(unnamed).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT", field: "fence.lease" } });
    expect(unnamed.ok ? "" : unnamed.error.message).toContain(`current: lease ${stays}`);
    expect(put({ lock: "pool", token: shared, lease: gone })).toMatchObject({ ok: false, error: { code: "FENCED" } });
    expect(put({ lock: "pool", token: shared, lease: stays }).ok).toBe(true);
    expect(h.run({ op: "lockRelease", name: "pool", token: shared }).result).toMatchObject({
      ok: false,
      error: { field: "lease" },
    });
    expect(h.c.lockStatus("pool").holders).toHaveLength(1);
    // A restored replica keeps the token shared, and hashes the same.
    const r = restoreCoordinationStateMachine(h.c.stateMachine.snapshot());
    expect(r.stateMachine.hash()).toBe(h.c.stateMachine.hash());
    const index = h.c.stateMachine.lastApplied + 1;
    const again = { op: "put", key: "res", value: bytes("w"), fence: { lock: "pool", token: shared } } as const;
    expect(r.stateMachine.applyCommand(index, again)).toEqual(h.c.stateMachine.applyCommand(index, again));
    expect(r.stateMachine.hash()).toBe(h.c.stateMachine.hash());
    // A token one hold alone was granted needs no lease, and a named lease must be the holder.
    const solo = h.lease();
    const token = value<{ token: number }>(h.run(acquire("pool", solo, { limit: 2 })).result).token;
    expect(put({ lock: "pool", token }).ok).toBe(true);
    expect(put({ lock: "pool", token, lease: stays })).toMatchObject({ ok: false, error: { code: "FENCED" } });
    // Once no holder has the shared token it is forgotten with the hold.
    expect(h.run({ op: "lockRelease", name: "pool", token: shared, lease: stays }).result.ok).toBe(true);
    expect(put({ lock: "pool", token: shared })).toMatchObject({ ok: false, error: { code: "FENCED" } });
  });

  it("fenced writes pass only with a current token; a deposed holder's write fails", () => {
    const h = harness();
    const [a, b] = [h.lease(), h.lease()];
    const ta = value<{ token: number }>(h.run(acquire("db", a)).result).token;
    h.run(acquire("db", b));
    expect(h.run({ op: "put", key: "k", value: bytes("1"), fence: { lock: "db", token: ta } }).result.ok).toBe(true);
    h.run({ op: "leaseRevoke", id: a }); // a is deposed; b holds
    const tb = h.c.lockStatus("db").holders[0].token;
    const stale = h.run({ op: "put", key: "k", value: bytes("2"), fence: { lock: "db", token: ta } });
    expect(stale.result).toMatchObject({ ok: false, error: { code: "FENCED" } });
    expect(stale.result.ok ? "" : stale.result.error.message).toContain(`current: ${tb}`);
    expect(h.run({ op: "delete", key: "k", fence: { lock: "db", token: ta } }).result).toMatchObject({
      ok: false,
      error: { code: "FENCED" },
    });
    const txn = { op: "txn", compare: [], success: [{ op: "put", key: "k", value: bytes("3") }], failure: [] };
    expect(h.run({ ...txn, fence: { lock: "db", token: ta } } as never).result).toMatchObject({
      ok: false,
      error: { code: "FENCED" },
    });
    expect(h.run({ ...txn, fence: { lock: "db", token: tb } } as never).result.ok).toBe(true);
    expect(new TextDecoder().decode(h.c.stateMachine.get("k")!.value)).toBe("3");
    h.run({ op: "lockRelease", name: "db", token: tb });
    expect(h.run({ op: "put", key: "k", value: bytes("4"), fence: { lock: "db", token: tb } }).result).toMatchObject({
      ok: false,
      error: { code: "FENCED" },
    });
  });

  it("a retried release with the same session tag answers the first result (exactly once)", () => {
    const h = harness();
    const [a, b] = [h.lease(), h.lease()];
    const clientId = value<{ clientId: number }>(h.run({ op: "registerClient", lease: a }).result).clientId;
    const ta = value<{ token: number }>(h.run(acquire("db", a)).result).token;
    h.run(acquire("db", b));
    const release = { op: "lockRelease", name: "db", token: ta, session: { clientId, seq: 1, lowestUnacked: 1 } };
    const first = h.run(release);
    const retry = h.run(release);
    expect(retry.result).toEqual(first.result);
    expect(retry.events).toEqual([]);
    // Without the session tag, the same release is stale.
    expect(errorCode(h.run({ op: "lockRelease", name: "db", token: ta }).result)).toBe("LOCK_NOT_HELD");
  });

  it("refuses a waiter beyond the queue limit", () => {
    const h = harness({ coordinationLimits: { maxQueueLength: 2 } });
    h.run(acquire("db", h.lease()));
    h.run(acquire("db", h.lease()));
    h.run(acquire("db", h.lease()));
    expect(errorCode(h.run(acquire("db", h.lease())).result)).toBe("QUEUE_FULL");
  });

  it("snapshot/restore keeps holders, queues and lease bindings", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    h.run(acquire("x", a));
    h.run(acquire("x", b));
    h.run(acquire("y", c, { limit: 3 }));
    h.run(acquire("y", b, { limit: 3 }));
    const snap = h.c.stateMachine.snapshot();
    const r = restoreCoordinationStateMachine(snap);
    expect(r.stateMachine.hash()).toBe(h.c.stateMachine.hash());
    const cmd = { op: "leaseRevoke", id: a } as const;
    const index = h.c.stateMachine.lastApplied + 1;
    const o1 = h.c.stateMachine.applyCommand(index, cmd);
    const o2 = r.stateMachine.applyCommand(index, cmd);
    expect(o2).toEqual(o1);
    expect(r.lockStatus("x")).toEqual(h.c.lockStatus("x"));
    expect(r.stateMachine.hash()).toBe(h.c.stateMachine.hash());
  });

  it("refuses a damaged lock section with SnapshotFormatError", () => {
    const h = harness();
    h.run(acquire("x", h.lease()));
    const good = h.c.stateMachine.snapshot();
    expect(() => restoreCoordinationStateMachine(good)).not.toThrow();
    // A snapshot without the lock sections (plain state machine) is refused, not half-restored.
    expect(() => restoreCoordinationStateMachine(new StateMachine().snapshot())).toThrow(/no section "locks"/);
    const state = decodeSnapshot(good);
    const damaged = (locks: unknown) =>
      encodeSnapshot({ ...state, extensions: state.extensions.map(([n, d]) => [n, n === "locks" ? locks : d]) });
    expect(() => restoreCoordinationStateMachine(damaged({}))).toThrow(SnapshotFormatError);
    expect(() => restoreCoordinationStateMachine(damaged([["x", 0, [], [], 1]]))).toThrow(/"x" has limit 0/);
    expect(() => restoreCoordinationStateMachine(damaged([["x", 2, [[1, 5]], [], 5, [6]]]))).toThrow(
      /"x" has shared tokens no holder has/,
    );
    expect(() => restoreCoordinationStateMachine(damaged([["x", 2, [[1, 5]], [], 5, 5]]))).toThrow(SnapshotFormatError);
  });

  it("tokens strictly increase per lock over random holder crashes and releases (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 5 })), {
          minLength: 10,
          maxLength: 120,
          size: "max",
        }),
        (steps) => {
          const h = harness();
          const leases = Array.from({ length: 6 }, () => h.lease());
          let last = 0;
          for (const [kind, i] of steps) {
            let out;
            if (kind === 0) out = h.run(acquire("L", leases[i]));
            else if (kind === 1) {
              const holder = h.c.lockStatus("L").holders[0];
              out = h.run({ op: "lockRelease", name: "L", token: holder?.token ?? 1 });
            } else if (kind === 2) out = h.run({ op: "leaseRevoke", id: leases[i] });
            else {
              leases[i] = h.lease();
              continue;
            }
            for (const e of h.events(out)) {
              if (e.kind !== "lockGranted") continue;
              expect(e.token).toBeGreaterThan(last);
              last = e.token;
            }
            expect(h.c.lockStatus("L").holders.length).toBeLessThanOrEqual(1);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("lock totals (metrics)", () => {
  it("counts holders and waiters over every lock", async () => {
    const { createCoordinationStateMachine } = await import("../../src/locks/index.js");
    const { encodeCommand } = await import("../../src/statemachine/commands.js");
    const c = createCoordinationStateMachine();
    let i = 1;
    const apply = (cmd: Record<string, unknown>) => c.stateMachine.apply(i++, encodeCommand(cmd as never));
    apply({ op: "leaseGrant", ttlMs: 10_000, grantedAt: 0 });
    apply({ op: "leaseGrant", ttlMs: 10_000, grantedAt: 0 });
    expect(c.lockTotals()).toEqual({ holders: 0, waiters: 0 });
    apply({ op: "lockAcquire", name: "a", lease: 1, wait: true, limit: 1 });
    apply({ op: "lockAcquire", name: "a", lease: 2, wait: true, limit: 1 });
    apply({ op: "lockAcquire", name: "b", lease: 2, wait: true, limit: 1 });
    expect(c.lockTotals()).toEqual({ holders: 2, waiters: 1 });
  });
});
