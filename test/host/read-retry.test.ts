// A linearizable read whose ReadIndex request, or the leader's answer, is lost with no change of leader is asked
// again after half an election timeout (ReadBarrier.tick), instead of waiting until the client gives up: the
// production hosts on the simulated world, with the network dropping the first request or the first answer.

import { describe, expect, it } from "vitest";
import type { SimHost } from "../../sim/cluster.js";
import { TICK } from "../../sim/cluster.js";
import { Scenario } from "../../sim/scenario.js";
import type { Message } from "../../src/raft/types.js";

describe("a follower's linearizable read", () => {
  it.each([
    { lost: "readIndex", what: "its request to the leader" },
    { lost: "readIndexResp", what: "the leader's answer" },
  ] as const)("is answered although $what was lost", async ({ lost }) => {
    const s = new Scenario(["n1", "n2", "n3"], {});
    expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
    const leader = s.cluster.leader()!;
    const follower: SimHost = [...s.cluster.hosts.values()].find((h) => h !== leader)!;
    expect(await s.runUntil(() => follower.replica.leaderId === leader.replica.id, 50 * TICK)).toBe(true);
    await s.run(5 * TICK); // the roles settled: no change of leader fails the read
    let dropped = 0;
    s.ctx.network.dropIf = (m: Message) => m.type === lost && dropped++ === 0;
    let answered: string | undefined;
    follower.replica.readBarrier().then(
      () => (answered = "answered"),
      (e: Error) => (answered = e.message),
    );
    expect(await s.runUntil(() => answered !== undefined, 30 * TICK)).toBe(true);
    expect(answered).toBe("answered");
    expect(dropped).toBeGreaterThanOrEqual(2); // the first was dropped, a second went through
    expect(leader.replica.isLeader).toBe(true);
  });
});
