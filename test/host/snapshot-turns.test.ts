// A member takes its snapshot a run per event-loop turn (Replica.maybeSnapshot, StateMachine.beginSnapshot): the
// production hosts on the simulated world, with one key record per run, so a snapshot spans hundreds of turns
// while writes go on. Its bytes are the state's at the snapshot index, and a snapshot from the leader installed
// meanwhile abandons it. A snapshot from the leader is restored the same way, a record per run (installSnapshot).

import { describe, expect, it } from "vitest";
import type { SimHost } from "../../sim/cluster.js";
import { TICK } from "../../sim/cluster.js";
import { valueBytes } from "../../sim/entry-data.js";
import { Scenario } from "../../sim/scenario.js";
import { contentHash } from "../../src/statemachine/hash.js";

const PARAMS = { snapshotEntries: 50, snapshotBytes: 1 << 30, snapshotStepBytes: 1 };

/**
 * Writes `rounds` rounds of 4 concurrent writes, from `first` on: two puts of new keys, an overwrite and a delete
 * of older keys (which a snapshot under way may not have captured yet). Every write changes the state.
 */
async function write(s: Scenario, first: number, rounds: number): Promise<void> {
  const sessions = ["c1", "c2", "c3", "c4"].map((c) => s.client(c).session);
  for (let r = 0; r < rounds; r++) {
    const n = first + 4 * r;
    const older = (k: number) => `k${Math.floor((n * k) % Math.max(1, n))}`;
    await s.settle(
      Promise.all([
        sessions[0].write("put", { key: `k${n}`, value: valueBytes(n) }),
        sessions[1].write("put", { key: `k${n + 1}`, value: valueBytes(n + 1) }),
        sessions[2].write("put", { key: older(0.37), value: valueBytes(n + 2) }),
        // k(n - 40) was put 10 rounds ago (if this run wrote that round) and deleted by no one since.
        n >= first + 40
          ? sessions[3].write("delete", { key: `k${n - 40}` })
          : sessions[3].write("put", { key: `k${n + 3}`, value: valueBytes(n + 3) }),
      ]),
    );
  }
}

/** Records the state's whole snapshot hash at every index a member applies (every write here has events). */
function hashesByIndex(s: Scenario): Map<string, Map<number, string>> {
  const out = new Map<string, Map<number, string>>();
  for (const h of s.cluster.hosts.values()) {
    const hashes = new Map<number, string>();
    out.set(h.id, hashes);
    h.replica.applied.add(({ index }) => hashes.set(index, h.replica.sm.hash()));
  }
  return out;
}

/** Records each member snapshot taken from now on (after the simulator's own check of it): where, and its hash. */
function snapshotsTaken(s: Scenario): { host: string; index: number; hash: string }[] {
  const taken: { host: string; index: number; hash: string }[] = [];
  const check = s.ctx.coordination.snapshotTaken.bind(s.ctx.coordination);
  s.ctx.coordination.snapshotTaken = (host, index, data) => {
    check(host, index, data);
    taken.push({ host, index, hash: contentHash(data) });
  };
  return taken;
}

describe("a member's snapshot taken over many turns", () => {
  it("holds the state at its index while writes apply during it, on every member", async () => {
    const s = new Scenario(["n1", "n2", "n3"], PARAMS);
    expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
    const whole = hashesByIndex(s);
    const taken = snapshotsTaken(s);

    await write(s, 0, 100);
    await s.run(100 * TICK);

    expect(taken.length).toBeGreaterThanOrEqual(6); // two or more on each member
    for (const t of taken) expect(t.hash, `${t.host}'s snapshot at ${t.index}`).toBe(whole.get(t.host)!.get(t.index));
    expect(s.ctx.stats.snapshotsAcrossTurns).toBe(taken.length);
    expect(s.ctx.stats.snapshotsAppliedMeanwhile).toBeGreaterThan(0);
  });

  it("waits for its file's writes when it runs ahead of them by the bound, and its bytes are still the state's", async () => {
    const diskWaits = async (snapshotBacklogBytes?: number) => {
      // Pieces of a few records, several made by each run.
      const s = new Scenario(["n1", "n2", "n3"], { ...PARAMS, snapshotStepBytes: 2048, snapshotPieceBytes: 64, snapshotBacklogBytes });
      expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
      // Each disk call takes 20–40 ms, a run of the job 10 (sim/clock.ts): the job makes pieces faster than they go.
      for (const h of s.cluster.hosts.values()) h.diskProfile = { minLatency: 20, maxLatency: 40 };
      const whole = hashesByIndex(s);
      const taken = snapshotsTaken(s);
      await write(s, 0, 60);
      await s.run(100 * TICK);
      const saved = s.lines.filter((l) => l.includes("info: snapshot saved"));
      expect(saved.length).toBeGreaterThanOrEqual(3);
      for (const t of taken) expect(t.hash, `${t.host}'s snapshot at ${t.index}`).toBe(whole.get(t.host)!.get(t.index));
      return saved.map((l) => (JSON.parse(l.replace(/^.*snapshot saved /, "")) as { diskWaits: number }).diskWaits);
    };
    const bounded = await diskWaits(128);
    expect(Math.min(...bounded)).toBeGreaterThan(0);
    // The production bound is never reached by states this small: the same runs never wait.
    expect(Math.max(...(await diskWaits(undefined)))).toBe(0);
  });

  it("is abandoned when a snapshot from the leader is installed meanwhile; the member then catches up", async () => {
    const s = new Scenario(["n1", "n2", "n3"], PARAMS);
    expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
    const leader = s.cluster.leader()!;
    const follower: SimHost = [...s.cluster.hosts.values()].find((h) => h !== leader)!;
    const started = () => s.lines.some((l) => l.includes(`${follower.id} info: snapshot started`));
    await write(s, 0, 30);
    // Writes until the follower starts a snapshot; then it stops running for a while (a long pause) with its
    // snapshot half taken, and the others write on, snapshot and compact their logs past it.
    let n = 120;
    while (!started()) {
      await write(s, n, 1);
      n += 4;
      expect(n).toBeLessThan(2000);
    }
    s.cluster.pause(follower, 60 * TICK);
    await write(s, n, 60);
    expect(await s.runUntil(() => s.ctx.stats.snapshotsInstalled > 0, 200 * TICK)).toBe(true);
    expect(s.ctx.stats.snapshotsAbandoned).toBe(1);
    expect(s.lines.some((l) => l.includes(`${follower.id} info: snapshot abandoned`))).toBe(true);
    // It carries on from the installed state: its next snapshots are taken whole, like everyone's.
    await write(s, n + 240, 60);
    await s.run(100 * TICK);
    const last = n + 240 + 4 * 59 + 1;
    expect(follower.replica.sm.get(`k${last}`)).toBeDefined();
    expect(s.lines.filter((l) => l.includes(`${follower.id} info: snapshot saved`)).length).toBeGreaterThan(0);
  });

  it("from the leader is restored a record per run, the replaced state serving meanwhile; then the member is the leader's equal", async () => {
    const s = new Scenario(["n1", "n2", "n3"], PARAMS);
    expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
    const leader = s.cluster.leader()!;
    const follower: SimHost = [...s.cluster.hosts.values()].find((h) => h !== leader)!;
    await write(s, 0, 30);
    s.cluster.pause(follower, 60 * TICK);
    await write(s, 120, 60);
    const line = (text: string) => s.lines.find((l) => l.includes(`${follower.id} info: ${text}`));
    expect(await s.runUntil(() => line("restoring a snapshot from the leader") !== undefined, 200 * TICK)).toBe(true);
    // The restore has begun: the state it replaces still answers, unchanged, and the member says it is not ready.
    const before = { keys: follower.replica.sm.keyCount, hash: follower.replica.sm.hash(), applied: follower.replica.appliedTo };
    await s.run(5 * TICK);
    expect(follower.replica.readiness()).toMatchObject({ ready: false, reason: expect.stringContaining("restoring a snapshot") });
    expect({ keys: follower.replica.sm.keyCount, hash: follower.replica.sm.hash(), applied: follower.replica.appliedTo }).toEqual(before);
    expect(await s.runUntil(() => line("installed a snapshot from the leader") !== undefined, 200 * TICK)).toBe(true);
    const installed = JSON.parse(line("installed a snapshot from the leader")!.replace(/^.*installed a snapshot from the leader /, "")) as { keys: number; turns: number };
    expect(installed.keys).toBeGreaterThan(100);
    expect(installed.turns).toBeGreaterThanOrEqual(installed.keys); // one record per run
    expect(s.ctx.stats.installsAcrossTurns).toBe(1);
    // It applies what follows, and holds exactly the leader's state.
    await write(s, 400, 20);
    expect(await s.runUntil(() => follower.replica.appliedTo === leader.replica.appliedTo, 100 * TICK)).toBe(true);
    expect(follower.replica.readiness()).toEqual({ ready: true });
    expect(follower.replica.sm.hash()).toBe(leader.replica.sm.hash());
  });
});
