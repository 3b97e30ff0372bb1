import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { restoreCoordinationStateMachine, type CampaignResult, type LeadershipChange } from "../../src/locks/index.js";
import { bytes, errorCode, harness, value } from "./harness.js";
import { encodeCommand, type Command } from "../../src/statemachine/index.js";

const campaign = (name: string, lease: number, v = "v") => ({ op: "electionCampaign", name, lease, value: bytes(v) });
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

describe("elections", () => {
  it("keep their own copies of candidates' values: rewriting an applied entry's bytes changes nothing", () => {
    const h = harness();
    const lease = h.lease();
    for (const command of [
      campaign("e", lease, "first"),
      { op: "electionProclaim", name: "e", token: 2, value: bytes("second") },
    ]) {
      const entry = encodeCommand(command as Command);
      expect(h.c.stateMachine.apply(h.c.stateMachine.lastApplied + 1, entry).result.ok).toBe(true);
      entry.fill(0);
      expect(text(h.c.electionLeader("e")!.value)).toBe(text(command.value));
    }
  });

  it("the first candidate leads with the index as token; the others queue FIFO", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    const out = h.run(campaign("svc", a, "a"));
    const token = h.c.stateMachine.lastApplied;
    expect(value(out.result)).toEqual({ leader: true, token });
    expect(h.events(out).map((e) => e.kind)).toEqual(["leadershipGained", "leaderChanged"]);
    expect(value(h.run(campaign("svc", b, "b")).result)).toEqual({ leader: false, position: 1 });
    expect(value(h.run(campaign("svc", c, "c")).result)).toEqual({ leader: false, position: 2 });
    expect(value(h.run(campaign("svc", b, "other")).result)).toEqual({ leader: false, position: 1 }); // idempotent
    expect(h.c.electionCandidates("svc")).toEqual([a, b, c]);
    const leader = h.c.electionLeader("svc")!;
    expect([leader.lease, leader.token, text(leader.value)]).toEqual([a, token, "a"]);
    expect(value<{ leader: unknown }>(h.run({ op: "electionLeader", name: "svc" }).result).leader).toEqual(leader);
    expect(h.c.electionLeader("nobody")).toBeNull();
  });

  it("proclaim and resign need the current token; stale ones change nothing", () => {
    const h = harness();
    const [a, b] = [h.lease(), h.lease()];
    const ta = value<{ token: number }>(h.run(campaign("svc", a, "a1")).result).token;
    h.run(campaign("svc", b, "b"));
    const p = h.run({ op: "electionProclaim", name: "svc", token: ta, value: bytes("a2") });
    expect(value(p.result)).toEqual({ token: ta });
    expect(text(h.c.electionLeader("svc")!.value)).toBe("a2");
    expect(h.events(p)).toMatchObject([
      { kind: "leaderChanged", cause: "proclaimed", leader: { lease: a, token: ta } },
    ]);
    const r = h.run({ op: "electionResign", name: "svc", token: ta });
    const tb = h.c.stateMachine.lastApplied;
    expect(value<{ leader: { lease: number; token: number } }>(r.result).leader).toMatchObject({ lease: b, token: tb });
    expect(h.events(r).map((e) => e.kind)).toEqual(["leadershipLost", "leadershipGained", "leaderChanged"]);
    const before = h.c.electionLeader("svc");
    for (const op of ["electionProclaim", "electionResign"]) {
      const stale = h.run({ op, name: "svc", token: ta, value: bytes("x") });
      expect(errorCode(stale.result)).toBe("NOT_ELECTION_LEADER");
      expect(stale.result.ok ? "" : stale.result.error.message).toContain(`current token is ${tb}`);
      expect(stale.events).toEqual([]);
    }
    expect(h.c.electionLeader("svc")).toEqual(before);
    expect(errorCode(h.run({ op: "electionResign", name: "none", token: 1 }).result)).toBe("NOT_ELECTION_LEADER");
    expect(errorCode(h.run(campaign("svc", 12345)).result)).toBe("LEASE_NOT_FOUND");
  });

  it("the leader's lease loss hands leadership to the next live candidate, once per entry", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    const ta = value<{ token: number }>(h.run(campaign("svc", a)).result).token;
    h.run(campaign("svc", b));
    h.run(campaign("svc", c));
    const out = h.run({ op: "leaseExpire", ids: [a, b] });
    const index = h.c.stateMachine.lastApplied;
    expect(h.events(out)).toMatchObject([
      { kind: "leadershipLost", election: "svc", lease: a, token: ta, reason: "leaseEnded" },
      { kind: "leadershipGained", election: "svc", lease: c, token: index },
      { kind: "leaderChanged", election: "svc", leader: { lease: c, token: index }, index, cause: "elected" },
    ]);
    const end = h.run({ op: "leaseRevoke", id: c });
    expect(h.events(end)).toMatchObject([
      { kind: "leadershipLost", lease: c },
      { kind: "leaderChanged", leader: null, cause: "leaseEnded" },
    ]);
    expect(h.c.electionLeader("svc")).toBeNull();
  });

  it("observe replays every change from an index and answers COMPACTED for dropped ones", () => {
    const h = harness({ coordinationLimits: { electionHistory: 4 } });
    const changes: number[] = [];
    const lease = h.lease();
    const token = value<{ token: number }>(h.run(campaign("svc", lease)).result).token;
    changes.push(token);
    for (let i = 0; i < 9; i++) {
      h.run({ op: "electionProclaim", name: "svc", token, value: bytes(`v${i}`) });
      changes.push(h.c.stateMachine.lastApplied);
    }
    const held = h.c.electionHistory("svc", 1);
    expect(held).toMatchObject({ code: "COMPACTED" });
    const compactedThrough = (held as { compactRevision: number }).compactRevision;
    const tail = h.c.electionHistory("svc", compactedThrough + 1) as LeadershipChange[];
    expect(tail.map((c) => c.index)).toEqual(changes.filter((i) => i > compactedThrough));
    expect(tail.length).toBeGreaterThanOrEqual(2);
    expect(text(tail.at(-1)!.leader!.value)).toBe("v8");
    const from = changes[changes.length - 2];
    expect((h.c.electionHistory("svc", from) as LeadershipChange[]).map((c) => c.index)).toEqual(changes.slice(-2));
    expect(h.c.electionHistory("svc", 0)).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(h.c.electionHistory("never", 1)).toEqual([]);
  });

  it("forgets the longest-idle election beyond maxIdleElections and then answers COMPACTED", () => {
    const h = harness({ coordinationLimits: { maxIdleElections: 1 } });
    const lease = h.lease();
    const t1 = value<{ token: number }>(h.run(campaign("one", lease)).result).token;
    h.run({ op: "electionResign", name: "one", token: t1 });
    expect((h.c.electionHistory("one", 1) as LeadershipChange[]).map((c) => c.leader?.lease ?? null)).toEqual([
      lease,
      null,
    ]);
    const t2 = value<{ token: number }>(h.run(campaign("two", lease)).result).token;
    h.run({ op: "electionResign", name: "two", token: t2 });
    expect(h.c.electionHistory("one", 1)).toMatchObject({ code: "COMPACTED", compactRevision: t1 + 1 });
    expect(h.c.electionHistory("one", t1 + 2)).toEqual([]);
    expect((h.c.electionHistory("two", 1) as LeadershipChange[]).length).toBe(2);
  });

  it("observe never skips a leader, tokens strictly increase, and restore agrees (property)", () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant("campaign" as const), lease: fc.nat(4) }),
      fc.record({ kind: fc.constant("resign" as const), stale: fc.boolean() }),
      fc.record({ kind: fc.constant("proclaim" as const), stale: fc.boolean() }),
      fc.record({
        kind: fc.constant("end" as const),
        leases: fc.uniqueArray(fc.nat(4), { minLength: 1, maxLength: 3 }),
      }),
      fc.record({ kind: fc.constant("renew" as const), lease: fc.nat(4) }),
    );
    let totalChanges = 0;
    let totalCompactions = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 10, maxLength: 80, size: "max" }), fc.nat(80), (steps, snapshotAt) => {
        const h = harness({ coordinationLimits: { electionHistory: 8 } });
        const leases = Array.from({ length: 5 }, () => h.lease());
        const seen: LeadershipChange[] = [];
        let lastToken = 0;
        let oldToken = 0;
        let c = h.c;
        let compactions = 0;
        steps.forEach((s, i) => {
          if (i === snapshotAt)
            c = restoreCoordinationStateMachine(c.stateMachine.snapshot(), {
              coordinationLimits: { electionHistory: 8 },
            });
          const run = (cmd: Record<string, unknown>) =>
            c.stateMachine.applyCommand(c.stateMachine.lastApplied + 1, cmd as never);
          const token = c.electionLeader("e")?.token ?? 1;
          let out;
          if (s.kind === "campaign") out = run(campaign("e", leases[s.lease]));
          else if (s.kind === "resign")
            out = run({ op: "electionResign", name: "e", token: s.stale ? oldToken || 1 : token });
          else if (s.kind === "proclaim")
            out = run({
              op: "electionProclaim",
              name: "e",
              token: s.stale ? oldToken || 1 : token,
              value: bytes(`p${i}`),
            });
          else if (s.kind === "end") out = run({ op: "leaseExpire", ids: s.leases.map((l) => leases[l]) });
          else {
            const grant = run({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 });
            leases[s.lease] = value<{ id: number }>(grant.result).id;
            return;
          }
          let leaders = 0;
          for (const w of out.events) {
            if (w.type !== "extension") continue;
            const e = w.event as { kind: string; token?: number; index?: number; leader?: unknown; cause?: string };
            if (e.kind === "leadershipGained") {
              expect(e.token).toBeGreaterThan(lastToken);
              if (lastToken > 0) oldToken = lastToken;
              lastToken = e.token!;
              leaders++;
            }
            if (e.kind === "leaderChanged")
              seen.push({ index: e.index!, leader: e.leader as never, cause: e.cause as never });
          }
          expect(leaders).toBeLessThanOrEqual(1);
          expect(c.electionLeader("e")?.lease).toBe(c.electionCandidates("e")[0]);
          // Everything announced is replayable, in order, as long as it is held (at least the last 4 always are).
          if (seen.length > 0) {
            let from = seen[0].index;
            const first = c.electionHistory("e", from);
            if (!Array.isArray(first)) {
              expect(first.code).toBe("COMPACTED");
              expect(first.compactRevision!).toBeLessThan(seen[Math.max(0, seen.length - 4)].index);
              from = first.compactRevision! + 1;
              compactions++;
            }
            const history = c.electionHistory("e", from) as LeadershipChange[];
            expect(history.map((x) => x.index)).toEqual(seen.filter((x) => x.index >= from).map((x) => x.index));
            expect(history.map((x) => x.leader?.token ?? 0)).toEqual(
              seen.filter((x) => x.index >= from).map((x) => x.leader?.token ?? 0),
            );
          }
        });
        const r = restoreCoordinationStateMachine(c.stateMachine.snapshot(), {
          coordinationLimits: { electionHistory: 8 },
        });
        expect(r.stateMachine.hash()).toBe(c.stateMachine.hash());
        expect(r.stateMachine.sizeBytes).toBe(c.stateMachine.sizeBytes);
        expect(r.electionHistory("e", 1)).toEqual(c.electionHistory("e", 1));
        totalChanges += seen.length;
        totalCompactions += compactions;
        return true;
      }),
      { numRuns: 150 },
    );
    // The workload really changed leaders and compacted histories.
    expect(totalChanges).toBeGreaterThan(500);
    expect(totalCompactions).toBeGreaterThan(10);
  });

  it("validates campaign fields", () => {
    const h = harness({ coordinationLimits: { maxValueBytes: 4 } });
    const lease = h.lease();
    expect(h.run({ op: "electionCampaign", name: "e", lease, value: "str" } as never).result).toMatchObject({
      ok: false,
      error: { code: "INVALID_ARGUMENT", field: "value" },
    });
    expect(h.run({ op: "electionCampaign", name: "e", lease, value: bytes("12345") }).result).toMatchObject({
      ok: false,
      error: { code: "INVALID_ARGUMENT", field: "value" },
    });
    expect(
      value<CampaignResult>(h.run({ op: "electionCampaign", name: "e", lease, value: bytes("1234") }).result).leader,
    ).toBe(true);
  });
});
