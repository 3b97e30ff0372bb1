import { describe, expect, it } from "vitest";
import {
  commandError,
  invalidArgument,
  SnapshotFormatError,
  StateMachine,
  type ApplyContext,
  type Command,
  type CommandHandler,
  type ExtensionCommand,
  type Fence,
  type Outcome,
} from "../../src/statemachine/index.js";

const v = (s: string) => new TextEncoder().encode(s);

/** Applies commands at consecutive indexes. */
function driver(sm: StateMachine) {
  return (command: Command) => sm.applyCommand(sm.lastApplied + 1, command);
}
const value = <T>(o: Outcome): T => {
  if (!o.ok) throw new Error(`expected ok, got ${o.error.code}: ${o.error.message}`);
  return o.value as T;
};

describe("StateMachine", () => {
  it("counts key size in UTF-8 bytes and refuses lone surrogates", () => {
    const sm = new StateMachine({ limits: { maxKeyBytes: 4, maxValueBytes: 2 } });
    const run = driver(sm);
    expect(run({ op: "put", key: "éé", value: v("") }).result.ok).toBe(true); // 4 bytes
    expect(run({ op: "put", key: "ééa", value: v("") }).result).toMatchObject({
      ok: false,
      error: { code: "KEY_TOO_LARGE" },
    });
    expect(run({ op: "put", key: "a\ud800", value: v("") }).result).toMatchObject({
      ok: false,
      error: { code: "INVALID_ARGUMENT", field: "key" },
    });
    expect(run({ op: "put", key: "k", value: v("abc") }).result).toMatchObject({
      ok: false,
      error: { code: "VALUE_TOO_LARGE" },
    });
    expect(sm.revision).toBe(1);
  });

  it("pages through a prefix with the cursor, each key exactly once", () => {
    const sm = new StateMachine();
    const run = driver(sm);
    for (let i = 0; i < 3000; i++) run({ op: "put", key: `p/${(i * 7919) % 3000}`, value: v("x") });
    run({ op: "put", key: "q", value: v("x") });
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = sm.range({ op: "range", key: "p/", prefix: true, limit: 128, ...(after ? { after } : {}) });
      if ("code" in page) throw new Error(page.message);
      seen.push(...page.kvs.map((kv) => kv.key));
      if (!page.more) break;
      after = page.cursor;
    }
    expect(seen.length).toBe(3000);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(3000);
  });

  it("does compare-and-swap on modRevision", () => {
    const sm = new StateMachine();
    const run = driver(sm);
    run({ op: "put", key: "cfg", value: v("1") });
    const cas = (expected: number, next: string) =>
      value<{ succeeded: boolean }>(
        run({
          op: "txn",
          compare: [{ key: "cfg", target: "modRevision", result: "=", value: expected }],
          success: [{ op: "put", key: "cfg", value: v(next) }],
          failure: [{ op: "range", key: "cfg" }],
        }).result,
      ).succeeded;
    expect(cas(1, "2")).toBe(true);
    expect(cas(1, "3")).toBe(false);
    expect(new TextDecoder().decode(sm.get("cfg")!.value)).toBe("2");
    expect(sm.get("cfg")).toMatchObject({ createRevision: 1, modRevision: 2, version: 2 });
  });

  it("answers COMPACTED with the compaction revision, by window and by explicit compact", () => {
    const sm = new StateMachine({ limits: { historyRevisions: 5 } });
    const run = driver(sm);
    for (let i = 0; i < 10; i++) run({ op: "put", key: "k", value: v(String(i)) });
    expect(sm.watchEventsSince(5)).toMatchObject({ code: "COMPACTED", compactRevision: 5 });
    expect((sm.watchEventsSince(6) as unknown[]).length).toBe(5);
    expect(value(run({ op: "compact", revision: 8 }).result)).toEqual({ revision: 10, compactRevision: 8 });
    expect(sm.watchEventsSince(8)).toMatchObject({ code: "COMPACTED", compactRevision: 8 });
    expect(run({ op: "compact", revision: 7 }).result).toMatchObject({
      error: { code: "COMPACTED", compactRevision: 8 },
    });
    expect(run({ op: "compact", revision: 11 }).result).toMatchObject({ error: { code: "FUTURE_REVISION" } });
  });

  it("keeps the history within its event budget on a large prefix delete", () => {
    const sm = new StateMachine({ limits: { historyMaxEvents: 100 } });
    const run = driver(sm);
    for (let i = 0; i < 150; i++) run({ op: "put", key: `d/${i}`, value: v("x") });
    const { result, events } = run({ op: "delete", key: "d/", prefix: true });
    expect(value<{ deleted: number }>(result).deleted).toBe(150);
    expect(events.length).toBe(150); // pushed to live watchers even though the history cannot hold them
    expect(sm.watchEventsSince(151)).toMatchObject({ code: "COMPACTED", compactRevision: 151 });
    expect(sm.watchEventsSince(152)).toEqual([]);
  });

  it("deletes a lease's keys when it is revoked or expires, and provides what a new leader needs", () => {
    const sm = new StateMachine();
    const run = driver(sm);
    const a = value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 3000, grantedAt: 1000 }).result).id;
    const b = value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 500, grantedAt: 2000 }).result).id;
    run({ op: "put", key: "x", value: v("1"), lease: a });
    run({ op: "put", key: "y", value: v("1"), lease: b });
    run({ op: "put", key: "y2", value: v("1"), lease: b });
    run({ op: "put", key: "x", value: v("2"), lease: b }); // moves x from lease a to lease b
    expect(sm.leases()).toEqual([
      { id: a, ttlMs: 3000, grantedAt: 1000 },
      { id: b, ttlMs: 500, grantedAt: 2000 },
    ]);
    expect(sm.leaseTimeToLive(a)?.keys).toEqual([]);
    const revoked = run({ op: "leaseRevoke", id: a });
    expect(value(revoked.result)).toEqual({ revision: 4, deleted: 0 });
    const expired = run({ op: "leaseExpire", ids: [a, b, b] });
    expect(value(expired.result)).toEqual({ revision: 5, expired: [b] });
    expect(expired.events.map((e) => (e.type === "delete" ? e.key : e.type))).toEqual(["x", "y", "y2", "leaseEnded"]);
    expect(sm.keyCount).toBe(0);
    expect(sm.leaseAlive(b)).toBe(false);
    expect(run({ op: "put", key: "z", value: v(""), lease: b }).result).toMatchObject({
      error: { code: "LEASE_NOT_FOUND" },
    });
  });

  it("refuses a fenced write when no lock support is installed", () => {
    const sm = new StateMachine();
    const { result } = driver(sm)({ op: "put", key: "k", value: v("x"), fence: { lock: "l", token: 3 } });
    expect(result).toMatchObject({
      ok: false,
      error: { code: "FENCED", message: expect.stringMatching(/no such lock/) },
    });
  });

  it("refuses a damaged snapshot with a typed error", () => {
    const sm = new StateMachine();
    driver(sm)({ op: "put", key: "k", value: v("x") });
    const bytes = sm.snapshot();
    expect(() => StateMachine.restore(bytes.subarray(0, bytes.length - 3))).toThrow(SnapshotFormatError);
    const foreign = bytes.slice();
    foreign[0] = 0;
    expect(() => StateMachine.restore(foreign)).toThrow(/magic/);
  });
});

// A small but real extension: exclusive locks bound to leases, fencing token = the granting log index.
class TinyLocks implements CommandHandler {
  readonly section = "tinyLocks";
  holders = new Map<string, { lease: number; token: number }>();
  leaseEndedAt: number[] = [];
  readonly ops = {
    lockAcquire: (raw: Record<string, unknown>) =>
      typeof raw.name === "string" && typeof raw.lease === "number"
        ? ({ op: "lockAcquire", name: raw.name, lease: raw.lease } as ExtensionCommand)
        : invalidArgument("name", "a string and a lease id", raw.name),
  };
  apply(command: ExtensionCommand, ctx: ApplyContext): Outcome {
    const name = command.name as string;
    const lease = command.lease as number;
    if (!ctx.leaseAlive(lease)) return { ok: false, error: commandError("LEASE_NOT_FOUND", `lease ${lease}`) };
    if (this.holders.has(name)) return { ok: true, value: { acquired: false } };
    this.holders.set(name, { lease, token: ctx.index });
    ctx.emit({ granted: name, token: ctx.index });
    return { ok: true, value: { acquired: true, token: ctx.index } };
  }
  onLeaseEnded(leaseId: number, _reason: string, ctx: ApplyContext): void {
    expect(ctx.leaseAlive(leaseId)).toBe(false);
    this.leaseEndedAt.push(ctx.index);
    for (const [name, h] of [...this.holders]) if (h.lease === leaseId) this.holders.delete(name);
  }
  checkFence = (fence: Fence) =>
    this.holders.get(fence.lock)?.token === fence.token ? null : commandError("FENCED", `stale token ${fence.token}`);
  snapshot(): unknown {
    return [...this.holders].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([n, h]) => [n, h.lease, h.token]);
  }
  restore(data: unknown): void {
    for (const [n, lease, token] of data as [string, number, number][]) this.holders.set(n, { lease, token });
  }
  sizeBytes(): number {
    return this.holders.size * 100;
  }
}

describe("extension points", () => {
  it("dispatches extension ops, checks fences, notifies lease end inside the apply, snapshots the section", () => {
    const locks = new TinyLocks();
    const sm = new StateMachine({ handlers: [locks], fenceChecker: locks.checkFence });
    const run = driver(sm);
    const lease = value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 }).result).id;
    const acquired = run({ op: "lockAcquire", name: "db", lease });
    expect(value(acquired.result)).toEqual({ acquired: true, token: 2 });
    expect(acquired.events).toEqual([{ type: "extension", section: "tinyLocks", event: { granted: "db", token: 2 } }]);
    expect(run({ op: "lockAcquire", name: 5, lease } as Command).result).toMatchObject({
      error: { code: "INVALID_ARGUMENT" },
    });
    expect(run({ op: "put", key: "k", value: v("1"), fence: { lock: "db", token: 2 } }).result.ok).toBe(true);
    expect(run({ op: "put", key: "k", value: v("2"), fence: { lock: "db", token: 1 } }).result).toMatchObject({
      error: { code: "FENCED" },
    });

    const restored = StateMachine.restore(sm.snapshot(), {
      handlers: [new TinyLocks()],
      fenceChecker: () => null,
    });
    expect(restored.hash()).toBe(sm.hash());

    const expiry = run({ op: "leaseExpire", ids: [lease] });
    expect(locks.leaseEndedAt).toEqual([sm.lastApplied]);
    expect(expiry.events.map((e) => e.type)).toEqual(["leaseEnded"]);
    expect(locks.holders.size).toBe(0);
    expect(run({ op: "put", key: "k", value: v("3"), fence: { lock: "db", token: 2 } }).result).toMatchObject({
      error: { code: "FENCED" },
    });
    expect(() => new StateMachine({ handlers: [new TinyLocks(), new TinyLocks()] })).toThrow(/section/);
  });
});
