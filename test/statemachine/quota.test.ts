// The storage quota: the state machine's own space accounting (space.ts), the NO_SPACE alarm it raises at the
// quota, what is refused and what still applies while it is raised, disarming, and that size and alarm are the
// same on every replica — applied or restored from a snapshot.

import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  createCoordinationStateMachine,
  restoreCoordinationStateMachine,
  type Coordination,
} from "../../src/locks/index.js";
import {
  encodeCommand,
  StateMachine,
  type ApplyOutput,
  type Command,
  type Outcome,
  type StateMachineOptions,
} from "../../src/statemachine/index.js";
import {
  dataBytes,
  ENTRY_OVERHEAD,
  EVENT_OVERHEAD,
  LEASE_OVERHEAD,
  NAMED_OVERHEAD,
  RECORD_OVERHEAD,
  SESSION_OVERHEAD,
} from "../../src/statemachine/space.js";

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

function driver(sm: StateMachine) {
  return (command: Command): ApplyOutput => sm.applyCommand(sm.lastApplied + 1, command);
}
const value = <T>(o: Outcome): T => {
  if (!o.ok) throw new Error(`expected ok, got ${o.error.code}: ${o.error.message}`);
  return o.value as T;
};
const code = (o: Outcome) => (o.ok ? "OK" : o.error.code);
/** Uint8Array-aware JSON, to compare outputs. */
const canonical = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? `bytes:${x.length}:${x[0] ?? ""}` : x));

/** Puts 1000-byte values under fill/<i> until a put raises the alarm; returns how many were written. */
function fill(run: (c: Command) => ApplyOutput, sm: StateMachine): number {
  for (let i = 0; i < 10_000; i++) {
    const out = run({ op: "put", key: `fill/${i}`, value: bytes(1000) });
    expect(code(out.result), `put ${i}`).toBe("OK");
    if (sm.alarms().length > 0) return i + 1;
  }
  throw new Error("the alarm never rose");
}

describe("space accounting", () => {
  it("counts records, held history, leases and sessions; deleted and overwritten values stay until compaction", () => {
    const sm = new StateMachine();
    const run = driver(sm);
    expect(sm.sizeBytes).toBe(0);
    const rec = (key: string, n: number) => RECORD_OVERHEAD + new TextEncoder().encode(key).length + n;

    run({ op: "put", key: "ké", value: bytes(10) });
    expect(sm.sizeBytes).toBe(rec("ké", 10) + EVENT_OVERHEAD);
    run({ op: "put", key: "ké", value: bytes(20) });
    // The overwritten record is now the second event's prevKv.
    expect(sm.sizeBytes).toBe(rec("ké", 20) + EVENT_OVERHEAD + EVENT_OVERHEAD + rec("ké", 10));
    run({ op: "delete", key: "ké" });
    expect(sm.sizeBytes).toBe(3 * EVENT_OVERHEAD + rec("ké", 10) + rec("ké", 20));
    run({ op: "compact", revision: sm.revision });
    expect(sm.sizeBytes).toBe(0);

    const lease = value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 }).result).id;
    expect(sm.sizeBytes).toBe(LEASE_OVERHEAD);
    const clientId = value<{ clientId: number }>(run({ op: "registerClient", lease }).result).clientId;
    expect(sm.sizeBytes).toBe(LEASE_OVERHEAD + SESSION_OVERHEAD);
    const tagged = run({
      op: "put",
      key: "s",
      value: bytes(5),
      lease,
      session: { clientId, seq: 1, lowestUnacked: 1 },
    });
    const afterTagged = LEASE_OVERHEAD + SESSION_OVERHEAD + dataBytes(tagged.result) + rec("s", 5) + EVENT_OVERHEAD;
    expect(sm.sizeBytes).toBe(afterTagged);
    // Acknowledging seq 1 forgets its outcome (the second write's own outcome is recorded instead).
    const second = run({ op: "delete", key: "nothing", session: { clientId, seq: 2, lowestUnacked: 2 } });
    expect(sm.sizeBytes).toBe(afterTagged - dataBytes(tagged.result) + dataBytes(second.result));
    // Revoking the lease ends its key (into the history), its session and itself.
    run({ op: "leaseRevoke", id: lease });
    expect(sm.sizeBytes).toBe(2 * EVENT_OVERHEAD + rec("s", 5));
  });

  it("counts locks and elections: names, holders, waiters, candidates' values and recorded changes", () => {
    const c = createCoordinationStateMachine();
    const sm = c.stateMachine;
    const run = driver(sm);
    const lease = () => value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 }).result).id;
    const [a, b] = [lease(), lease()];
    const base = sm.sizeBytes;
    expect(base).toBe(2 * LEASE_OVERHEAD);
    run({ op: "lockAcquire", name: "job", lease: a, wait: true, limit: 1 });
    run({ op: "lockAcquire", name: "job", lease: b, wait: true, limit: 1 });
    expect(sm.sizeBytes - base).toBe(NAMED_OVERHEAD + 3 + 2 * ENTRY_OVERHEAD);
    run({ op: "electionCampaign", name: "e", lease: a, value: bytes(100) });
    const election = NAMED_OVERHEAD + 1 + (ENTRY_OVERHEAD + 100) + (ENTRY_OVERHEAD + 100); // candidate + change
    expect(sm.sizeBytes - base).toBe(NAMED_OVERHEAD + 3 + 2 * ENTRY_OVERHEAD + election);
    // a's lease ends: b is granted the lock, the election goes idle (its history stays, one more change).
    run({ op: "leaseRevoke", id: a });
    expect(sm.sizeBytes).toBe(
      LEASE_OVERHEAD + NAMED_OVERHEAD + 3 + ENTRY_OVERHEAD + election - (ENTRY_OVERHEAD + 100) + ENTRY_OVERHEAD,
    );
    const restored = restoreCoordinationStateMachine(sm.snapshot());
    expect(restored.stateMachine.sizeBytes).toBe(sm.sizeBytes);
  });
});

describe("NO_SPACE", () => {
  const QUOTA = 20_000;
  const limits = { quotaBytes: QUOTA };

  it("is raised at the entry that reaches the quota; then writes that add data fail, reads and deletes apply", () => {
    const sm = new StateMachine({ limits });
    const run = driver(sm);
    const lease = value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 }).result).id;
    const written = fill(run, sm);
    const raisedAt = sm.lastApplied;
    expect(sm.alarms()).toEqual([{ alarm: "NO_SPACE", raisedAt }]);
    expect(sm.sizeBytes).toBeGreaterThanOrEqual(QUOTA);
    expect(sm.sizeBytes).toBeLessThan(QUOTA + 1500); // at most one command beyond
    expect(written).toBeGreaterThan(10);

    const refused = run({ op: "put", key: "tiny", value: bytes(1) });
    expect(refused.result).toMatchObject({ ok: false, error: { code: "NO_SPACE" } });
    const message = (refused.result as { error: { message: string } }).error.message;
    expect(message).toContain(`quota is ${QUOTA} bytes`);
    expect(message).toContain(`holds ${sm.sizeBytes} bytes`);
    expect(message).toContain(`since index ${raisedAt}`);
    const before = sm.sizeBytes;
    const revision = sm.revision;
    for (const c of [
      { op: "txn", compare: [], success: [{ op: "put", key: "t", value: bytes(1) }], failure: [] },
      { op: "leaseGrant", ttlMs: 1000, grantedAt: 0 },
      { op: "registerClient", lease },
    ] as Command[]) {
      expect(code(run(c).result), c.op).toBe("NO_SPACE");
    }
    expect(sm.revision).toBe(revision);
    expect(sm.sizeBytes).toBe(before);

    // Reads, txns without a put in the branch taken, deletes, compaction and lease ends still apply.
    expect(sm.get("fill/0")?.value.length).toBe(1000);
    const txn = run({
      op: "txn",
      compare: [{ key: "fill/0", target: "version", result: "=", value: 7 }],
      success: [{ op: "put", key: "t", value: bytes(1) }],
      failure: [
        { op: "range", key: "fill/0" },
        { op: "delete", key: "fill/1" },
      ],
    });
    expect(value<{ succeeded: boolean }>(txn.result).succeeded).toBe(false);
    expect(code(run({ op: "delete", key: "fill/", prefix: true }).result)).toBe("OK");
    expect(sm.keyCount).toBe(0);
    expect(code(run({ op: "compact", revision: sm.revision }).result)).toBe("OK");
    expect(code(run({ op: "leaseExpire", ids: [lease] }).result)).toBe("OK");
    expect(sm.sizeBytes).toBe(0);
    // Still raised: freeing space does not disarm it.
    expect(sm.alarms()).toEqual([{ alarm: "NO_SPACE", raisedAt }]);
    expect(code(run({ op: "put", key: "tiny", value: bytes(1) }).result)).toBe("NO_SPACE");
  });

  it("disarm is refused while the state holds the quota; once deletes and compaction freed space it clears", () => {
    const sm = new StateMachine({ limits });
    const run = driver(sm);
    expect(value(run({ op: "alarmDisarm" }).result)).toEqual({ disarmed: [] });
    fill(run, sm);
    const raisedAt = sm.alarms()[0].raisedAt;

    const early = run({ op: "alarmDisarm" });
    expect(early.result).toMatchObject({ ok: false, error: { code: "NO_SPACE" } });
    expect((early.result as { error: { message: string } }).error.message).toMatch(
      new RegExp(`cannot disarm NO_SPACE: the state still holds ${sm.sizeBytes} bytes and the quota is ${QUOTA} bytes`),
    );
    // Deleting alone frees nothing yet: the deleted values are held by the watch history.
    for (let i = 0; i < 8; i++) run({ op: "delete", key: `fill/${i}` });
    expect(sm.sizeBytes).toBeGreaterThanOrEqual(QUOTA);
    expect(code(run({ op: "alarmDisarm" }).result)).toBe("NO_SPACE");
    run({ op: "compact", revision: sm.revision });
    expect(sm.sizeBytes).toBeLessThan(QUOTA);

    const disarm = run({ op: "alarmDisarm" });
    expect(value(disarm.result)).toEqual({ disarmed: [{ alarm: "NO_SPACE", raisedAt }] });
    expect(disarm.events).toEqual([
      { type: "alarm", alarm: "NO_SPACE", raised: false, stateBytes: sm.sizeBytes, quotaBytes: QUOTA },
    ]);
    expect(sm.alarms()).toEqual([]);
    expect(code(run({ op: "put", key: "again", value: bytes(10) }).result)).toBe("OK");
    // Filling up again raises it again, with an event at the crossing entry.
    let raised: ApplyOutput | undefined;
    for (let i = 0; raised === undefined; i++) {
      const out = run({ op: "put", key: `more/${i}`, value: bytes(1000) });
      if (out.events.some((e) => e.type === "alarm")) raised = out;
    }
    expect(raised.result.ok).toBe(true);
    expect(raised.events.at(-1)).toEqual({
      type: "alarm",
      alarm: "NO_SPACE",
      raised: true,
      stateBytes: sm.sizeBytes,
      quotaBytes: QUOTA,
    });
  });

  it("the quota is replicated state: setQuota changes it, snapshots carry it, a lower one raises the alarm", () => {
    const sm = new StateMachine(); // starts with the default quota
    const run = driver(sm);
    for (let i = 0; i < 30; i++) run({ op: "put", key: `k/${i}`, value: bytes(1000) });
    expect(sm.quotaBytes).toBe(2 * 1024 ** 3);
    // Lowered below the state's size: raised at that very entry, which is never refused itself.
    const lowered = run({ op: "setQuota", quotaBytes: QUOTA });
    expect(value(lowered.result)).toEqual({ quotaBytes: QUOTA });
    expect(lowered.events).toMatchObject([{ type: "alarm", raised: true, quotaBytes: QUOTA }]);
    expect(sm.alarms()).toEqual([{ alarm: "NO_SPACE", raisedAt: sm.lastApplied }]);
    expect(code(run({ op: "put", key: "x", value: bytes(1) }).result)).toBe("NO_SPACE");
    // A restore keeps the replicated quota, whatever quota its own limits start new state machines with.
    const restored = StateMachine.restore(sm.snapshot(), { limits: { quotaBytes: 1 << 30 } });
    expect(restored.quotaBytes).toBe(QUOTA);
    expect(restored.alarms()).toEqual(sm.alarms());
    // Raised back: the alarm stays until disarmed, which now succeeds (the state is below the new quota).
    expect(code(run({ op: "setQuota", quotaBytes: 1 << 20 }).result)).toBe("OK");
    expect(code(run({ op: "put", key: "x", value: bytes(1) }).result)).toBe("NO_SPACE");
    expect(code(run({ op: "alarmDisarm" }).result)).toBe("OK");
    expect(code(run({ op: "put", key: "x", value: bytes(1) }).result)).toBe("OK");
    expect(run({ op: "setQuota", quotaBytes: 0 }).result).toMatchObject({
      ok: false,
      error: { code: "INVALID_ARGUMENT", field: "quotaBytes" },
    });
  });

  it("a replica replaying its log with another configured quota reaches the same results (no re-judging)", () => {
    // The log as a member's leader would write it: its configured quota first, then a client filling up.
    const log: Uint8Array[] = [encodeCommand({ op: "setQuota", quotaBytes: QUOTA })];
    for (let i = 0; i < 40; i++) log.push(encodeCommand({ op: "put", key: `k/${i}`, value: bytes(1000) }));
    const original = new StateMachine();
    const start = original.snapshot(); // the snapshot a member restarts from
    const results = log.map((entry, i) => canonical(original.apply(i + 1, entry)));
    expect(results.filter((r) => r.includes("NO_SPACE")).length).toBeGreaterThan(10);
    // Restarted with a quota of 1 GiB in its configuration (limits): the log still says 20,000 bytes.
    const replay = StateMachine.restore(start, { limits: { quotaBytes: 1 << 30 } });
    expect(log.map((entry, i) => canonical(replay.apply(i + 1, entry)))).toEqual(results);
    expect(replay.hash()).toBe(original.hash());
  });

  it("locks and elections: acquires and campaigns are refused, releases, resignations and lease ends apply", () => {
    const c = createCoordinationStateMachine({ limits });
    const sm = c.stateMachine;
    const run = driver(sm);
    const lease = () => value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 }).result).id;
    const [a, b] = [lease(), lease()];
    const token = value<{ token: number }>(
      run({ op: "lockAcquire", name: "job", lease: a, wait: true, limit: 1 }).result,
    ).token;
    const queued = run({ op: "lockAcquire", name: "job", lease: b, wait: true, limit: 1 });
    expect(value(queued.result)).toEqual({ granted: false, queued: 1 });
    const leader = value<{ token: number }>(
      run({ op: "electionCampaign", name: "e", lease: a, value: bytes(10) }).result,
    ).token;
    fill(run, sm);

    expect(code(run({ op: "lockAcquire", name: "other", lease: a, wait: true, limit: 1 }).result)).toBe("NO_SPACE");
    expect(code(run({ op: "electionCampaign", name: "e", lease: b, value: bytes(10) }).result)).toBe("NO_SPACE");
    expect(code(run({ op: "electionProclaim", name: "e", token: leader, value: bytes(10) }).result)).toBe("NO_SPACE");
    expect(code(run({ op: "lockStatus", name: "job" }).result)).toBe("OK");
    expect(code(run({ op: "electionLeader", name: "e" }).result)).toBe("OK");
    // The release hands the lock to the waiter, as always.
    const released = run({ op: "lockRelease", name: "job", token });
    expect(value<{ granted: { lease: number }[] }>(released.result).granted.map((g) => g.lease)).toEqual([b]);
    expect(code(run({ op: "electionResign", name: "e", token: leader }).result)).toBe("OK");
    expect(c.electionLeader("e")).toBeNull();
    expect(code(run({ op: "leaseExpire", ids: [a, b] }).result)).toBe("OK");
    expect(c.lockStatus("job").holders).toEqual([]);
  });

  it("snapshot and restore keep the size and the alarm; a format-1 snapshot (before alarms) still restores", () => {
    const c = createCoordinationStateMachine({ limits });
    const run = driver(c.stateMachine);
    const lease = value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 }).result).id;
    run({ op: "lockAcquire", name: "job", lease, wait: true, limit: 1 });
    run({ op: "electionCampaign", name: "e", lease, value: bytes(50) });
    fill(run, c.stateMachine);
    const snap = c.stateMachine.snapshot();
    const r = restoreCoordinationStateMachine(snap, { limits });
    expect(r.stateMachine.sizeBytes).toBe(c.stateMachine.sizeBytes);
    expect(r.stateMachine.alarms()).toEqual(c.stateMachine.alarms());
    expect(r.stateMachine.hash()).toBe(c.stateMachine.hash());
    const next = c.stateMachine.lastApplied + 1;
    const cmd = encodeCommand({ op: "put", key: "x", value: bytes(1) });
    expect(r.stateMachine.apply(next, cmd)).toEqual(c.stateMachine.apply(next, cmd));

    // Format 1: version byte 1 and a 7-element meta (no alarms). Restored with no alarm raised.
    const v1 = toFormat1(c.stateMachine.snapshot());
    const old = restoreCoordinationStateMachine(v1, { limits });
    expect(old.stateMachine.alarms()).toEqual([]);
    expect(old.stateMachine.sizeBytes).toBe(c.stateMachine.sizeBytes);
    expect(old.stateMachine.keyCount).toBe(c.stateMachine.keyCount);
    // The next write that would add data finds the state over the quota and raises the alarm then.
    expect(code(old.stateMachine.apply(next + 1, cmd).result)).toBe("NO_SPACE");
    expect(old.stateMachine.alarms()).toEqual([{ alarm: "NO_SPACE", raisedAt: next + 1 }]);
  });
});

/** Rewrites a format-2 snapshot as format 1 (what members wrote before alarms existed). */
function toFormat1(snapshot: Uint8Array): Uint8Array {
  const packr = new Packr({ useRecords: false, copyBuffers: true, mapsAsObjects: true, moreTypes: false });
  const view = new DataView(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength);
  expect(snapshot[4]).toBe(2);
  const metaLength = view.getUint32(5, true);
  const meta = packr.unpack(snapshot.subarray(9, 9 + metaLength)) as unknown[];
  expect(meta).toHaveLength(8);
  const oldMeta = packr.pack(meta.slice(0, 7));
  const rest = snapshot.subarray(9 + metaLength);
  const out = new Uint8Array(9 + oldMeta.length + rest.length);
  out.set(snapshot.subarray(0, 4), 0);
  out[4] = 1;
  new DataView(out.buffer).setUint32(5, oldMeta.length, true);
  out.set(oldMeta, 9);
  out.set(rest, 9 + oldMeta.length);
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Determinism: random logs of KV, lease, session, lock, election, compaction and disarm commands against a small
// quota. Replica 0 applies everything; replica 1 is replaced by a restore of replica 0's snapshot at random
// points. After every entry both answer the same, hold the same size and alarms, and the size they keep up to
// date equals the size a restore computes from scratch.

type Step =
  | { t: "put"; key: number; size: number; tagged: boolean; leased: boolean }
  | { t: "delete"; key: number; prefix: boolean }
  | { t: "compact" }
  | { t: "grant" }
  | { t: "revoke"; k: number }
  | { t: "register"; k: number }
  | { t: "acquire"; k: number; name: number }
  | { t: "release"; name: number }
  | { t: "campaign"; k: number; size: number }
  | { t: "resign" }
  | { t: "disarm" }
  | { t: "quota"; bytes: number }
  | { t: "restore" };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant("put" as const),
      key: fc.nat(11),
      size: fc.nat(900),
      tagged: fc.boolean(),
      leased: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("delete" as const), key: fc.nat(11), prefix: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ t: "compact" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "grant" as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("revoke" as const), k: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("register" as const), k: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("acquire" as const), k: fc.nat(), name: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("release" as const), name: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("campaign" as const), k: fc.nat(), size: fc.nat(300) }) },
  { weight: 1, arbitrary: fc.constant({ t: "resign" as const }) },
  { weight: 2, arbitrary: fc.constant({ t: "disarm" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("quota" as const), bytes: fc.integer({ min: 2048, max: 16384 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ t: "restore" as const }) },
);

/** What the runs send that would add data (no seq is sent twice here, so a success is never a replay). */
const GROWING: ReadonlySet<string> = new Set([
  "put",
  "leaseGrant",
  "registerClient",
  "lockAcquire",
  "electionCampaign",
]);

describe("determinism", () => {
  it("replicas, restored at random points, agree on every result, size and alarm (property)", () => {
    const options = { limits: { quotaBytes: 8192, historyRevisions: 20 } } satisfies Pick<
      StateMachineOptions,
      "limits"
    >;
    const seen = { noSpace: 0, disarmed: 0, disarmRefused: 0, raised: 0, restores: 0 };
    fc.assert(
      fc.property(fc.array(step, { minLength: 20, maxLength: 150, size: "max" }), (steps) => {
        let replicas: Coordination[] = [
          createCoordinationStateMachine(options),
          createCoordinationStateMachine(options),
        ];
        const leases: number[] = [];
        const clients: number[] = [];
        const tokens = new Map<string, number>();
        let leaderToken = 0;
        let seq = 0;
        const apply = (command: Command): ApplyOutput => {
          const index = replicas[0].stateMachine.lastApplied + 1;
          const encoded = encodeCommand(command);
          const before = replicas[0].stateMachine;
          const admissible = before.alarms().length === 0 && before.sizeBytes < before.quotaBytes;
          const [a, b] = replicas.map((r) => r.stateMachine.apply(index, encoded));
          // A command that adds data applies only while no alarm is raised and the state is below the quota.
          if (GROWING.has(command.op) && !admissible) expect(code(a.result), command.op).not.toBe("OK");
          expect(canonical(b), `output at ${index}`).toBe(canonical(a));
          const [s0, s1] = replicas.map((r) => r.stateMachine);
          expect(s1.sizeBytes).toBe(s0.sizeBytes);
          expect(s1.alarms()).toEqual(s0.alarms());
          expect(s1.quotaBytes).toBe(s0.quotaBytes);
          expect(restoreCoordinationStateMachine(s0.snapshot(), options).stateMachine.sizeBytes).toBe(s0.sizeBytes);
          if (!a.result.ok && a.result.error.code === "NO_SPACE") seen.noSpace++;
          for (const e of a.events) {
            if (e.type === "leaseEnded" && leases.includes(e.id)) leases.splice(leases.indexOf(e.id), 1);
            if (e.type === "alarm" && e.raised) seen.raised++;
          }
          return a;
        };
        for (const s of steps) {
          const lease = leases.length > 0 ? leases[("k" in s ? s.k : 0) % leases.length] : undefined;
          switch (s.t) {
            case "put": {
              const c: Command = { op: "put", key: `k/${s.key}`, value: bytes(s.size, s.key) };
              if (s.leased && lease !== undefined) c.lease = lease;
              if (s.tagged && clients.length > 0) {
                seq++;
                c.session = { clientId: clients[s.key % clients.length], seq, lowestUnacked: Math.max(1, seq - 2) };
              }
              apply(c);
              break;
            }
            case "delete":
              apply(
                s.prefix ? { op: "delete", key: `k/${s.key % 2}`, prefix: true } : { op: "delete", key: `k/${s.key}` },
              );
              break;
            case "compact": {
              const sm = replicas[0].stateMachine;
              if (sm.revision > sm.compactRevision) apply({ op: "compact", revision: sm.revision });
              break;
            }
            case "grant": {
              const out = apply({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 });
              if (out.result.ok) leases.push((out.result.value as { id: number }).id);
              break;
            }
            case "revoke":
              if (lease !== undefined) apply({ op: "leaseRevoke", id: lease });
              break;
            case "register":
              if (lease !== undefined) {
                const out = apply({ op: "registerClient", lease });
                if (out.result.ok) clients.push((out.result.value as { clientId: number }).clientId);
              }
              break;
            case "acquire":
              if (lease !== undefined) {
                const name = `l${s.name}`;
                const out = apply({ op: "lockAcquire", name, lease, wait: true, limit: 1 });
                if (out.result.ok && (out.result.value as { granted: boolean }).granted)
                  tokens.set(name, (out.result.value as { token: number }).token);
              }
              break;
            case "release": {
              const name = `l${s.name}`;
              const token = tokens.get(name);
              if (token !== undefined) apply({ op: "lockRelease", name, token });
              break;
            }
            case "campaign":
              if (lease !== undefined) {
                const out = apply({ op: "electionCampaign", name: "e", lease, value: bytes(s.size) });
                if (out.result.ok && (out.result.value as { leader: boolean }).leader)
                  leaderToken = (out.result.value as { token: number }).token;
              }
              break;
            case "resign":
              if (leaderToken > 0) apply({ op: "electionResign", name: "e", token: leaderToken });
              break;
            case "disarm": {
              const out = apply({ op: "alarmDisarm" });
              if (!out.result.ok) seen.disarmRefused++;
              else if ((out.result.value as { disarmed: unknown[] }).disarmed.length > 0) seen.disarmed++;
              break;
            }
            case "quota":
              apply({ op: "setQuota", quotaBytes: s.bytes });
              break;
            case "restore":
              replicas = [replicas[0], restoreCoordinationStateMachine(replicas[0].stateMachine.snapshot(), options)];
              seen.restores++;
              break;
          }
        }
      }),
      { numRuns: 200 },
    );
    // The runs went through every path: refusals, raising, refused and successful disarms, restores.
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(20);
  });
});
