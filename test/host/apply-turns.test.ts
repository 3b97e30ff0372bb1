// A member catching up by many entries applies them a batch per turn (HostConfig.applyEntriesPerTurn: a Ready
// carries at most that many committed entries, and after a full one the ready loop waits a turn): the production
// hosts on the simulated world, where a turn's wait is 10 ms of virtual time.

import { describe, expect, it } from "vitest";
import type { SimHost } from "../../sim/cluster.js";
import { TICK } from "../../sim/cluster.js";
import { valueBytes } from "../../sim/entry-data.js";
import { Scenario } from "../../sim/scenario.js";

const PER_TURN = 4;

describe("a member catching up by entries", () => {
  it(`applies them ${PER_TURN} per Ready, a turn passing after each full one, and ends as the leader's equal`, async () => {
    const s = new Scenario(["n1", "n2", "n3"], { applyEntriesPerTurn: PER_TURN, snapshotEntries: 100_000, snapshotBytes: 1 << 30 });
    expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
    const leader = s.cluster.leader()!;
    const follower: SimHost = [...s.cluster.hosts.values()].find((h) => h !== leader)!;
    const { session } = s.client("c1");
    s.cluster.pause(follower, 100 * TICK);
    for (let i = 0; i < 60; i++) await s.settle(session.write("put", { key: `k${i}`, value: valueBytes(i) }));
    const behind = leader.replica.appliedTo - follower.replica.appliedTo;
    expect(behind).toBeGreaterThanOrEqual(60);
    // Entries the follower applies, by the virtual time at which it applied them.
    const byInstant = new Map<number, number>();
    follower.replica.applied.add(() => byInstant.set(s.ctx.now, (byInstant.get(s.ctx.now) ?? 0) + 1));
    expect(await s.runUntil(() => follower.replica.appliedTo === leader.replica.appliedTo, 200 * TICK)).toBe(true);
    // A non-full Ready may come before a full one in the same run of the loop; never more.
    expect(Math.max(...byInstant.values())).toBeLessThanOrEqual(2 * PER_TURN - 1);
    expect(byInstant.size).toBeGreaterThanOrEqual(60 / (2 * PER_TURN));
    expect(follower.replica.sm.hash()).toBe(leader.replica.sm.hash());
  });
});
