// A failed fsync stops the member: the production host on the simulated disk, whose fsync is made to fail. The
// member never retries the sync and carries on (its data may be gone from the page cache); it stops serving,
// and a restart recovers from what is really on disk, with every acknowledged write still in the cluster.

import { describe, expect, it } from "vitest";
import { ProposalError } from "../../src/host/proposals.js";
import type { Replica } from "../../src/host/replica.js";
import { TICK } from "../../sim/cluster.js";
import { valueBytes, valueOf } from "../../sim/entry-data.js";
import { Scenario } from "../../sim/scenario.js";

describe("a failed fsync", () => {
  it("stops the member for good (no retry, no carrying on); a restart recovers, and no acknowledged write is lost", async () => {
    const s = new Scenario(["n1", "n2", "n3"]);
    expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
    const { session } = s.client("c1");
    const first = await s.settle(session.write("put", { key: "a", value: valueBytes(1) }));
    expect(first.kind).toBe("ok");

    const victim = s.cluster.leader()!;
    const replica: Replica = victim.replica;
    const writesBefore = victim.disk.stats.writes;
    victim.disk.syncFailureRate = 1; // every fsync of the leader fails from now on
    const second = session.write("put", { key: "b", value: valueBytes(2) });
    expect(await s.runUntil(() => !replica.isRunning, 20 * TICK)).toBe(true);
    expect(s.lines.some((l) => l.includes(`${victim.id} stops after a fatal error`) && /EIO/.test(l))).toBe(true);
    // Stopped: it proposes nothing more, and writes nothing more to its disk (no retried fsync).
    expect(() => replica.propose({ op: "put", key: "x", value: valueBytes(9) })).toThrow(ProposalError);
    expect(() => replica.propose({ op: "put", key: "x", value: valueBytes(9) })).toThrow(/fatal error: .*EIO/);
    const writesAtStop = victim.disk.stats.writes;
    expect(writesAtStop).toBeGreaterThan(writesBefore);
    await s.run(TICK); // (the cluster restarts the process a little later, as an operator or systemd would)
    expect(replica.isRunning).toBe(false);

    victim.disk.syncFailureRate = 0;
    // The write the leader could not make durable: retried through the session, it lands at most once; a client
    // that gave up on it does not know (and the cluster may have it or not).
    const b = await s.settle(second);
    // Writes go on through the new leader.
    let c = await s.settle(session.write("put", { key: "c", value: valueBytes(3) }));
    while (c.kind !== "ok") c = await s.settle(session.write("put", { key: "c", value: valueBytes(3) }));
    expect(await s.runUntil(() => victim.up && victim.replica !== replica, 50 * TICK)).toBe(true);
    expect(s.ctx.stats.fatalStops).toBe(1);
    // Every member, the restarted one included, converges on every acknowledged write.
    const acked = b.kind === "ok" ? ["a", "b", "c"] : ["a", "c"];
    const converged = () => [...s.cluster.hosts.values()].every((h) => h.up && acked.every((k) => h.replica.sm.get(k) !== undefined));
    expect(await s.runUntil(converged, 100 * TICK)).toBe(true);
    for (const h of s.cluster.hosts.values()) {
      expect(valueOf(h.replica.sm.get("a")!.value)).toBe(1);
      expect(valueOf(h.replica.sm.get("c")!.value)).toBe(3);
    }
  });
});
