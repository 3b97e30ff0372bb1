// Membership changes under a write load: add a 4th member (learner, catch-up, promote), remove an original
// one; the new configuration really is the quorum afterwards.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster, retrying, waitUntil } from "../../src/harness/index.js";
import { SessionWriter, checkWriter, readPrefix } from "./writer.js";

describe.sequential("membership changes under load", () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ size: 3, basePort: 9300, tickMs: 50, snapshotEntries: 200 });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it("adds n4, removes an original member (the leader), keeps every acknowledged write, and the new configuration forms the quorum", async () => {
    let removing: string | null = null;
    const candidates = () =>
      cluster
        .running()
        .filter((n) => n !== removing)
        .sort();
    const writers = [0, 1].map((i) => new SessionWriter(cluster, candidates, `mb/c${i}/`, i));
    await Promise.all(writers.map((w) => w.open()));
    let stop = false;
    const loads = writers.map((w) => w.run(() => stop, 2));
    const progress = async (what: string) => {
      const marks = writers.map((w) => w.acked.length);
      await waitUntil(what, 20_000, () => (writers.every((w, i) => w.acked.length >= marks[i] + 10) ? true : undefined));
    };
    try {
      await progress("writes before the change");
      await cluster.addMember("n4");
      const s4 = await cluster.status("n4");
      expect(s4.confState.voters.sort()).toEqual(["n1", "n2", "n3", "n4"]);
      await progress("writes with n4 a voter");

      // Remove the current leader if it is an original member (the harder case: it must hand over).
      const leaderNow = await cluster.waitForLeader();
      removing = leaderNow === "n4" ? "n1" : leaderNow;
      await cluster.removeMember(removing, "n4");
      await progress(`writes after removing ${removing}`);
    } finally {
      stop = true;
      await Promise.allSettled(loads);
      for (const w of writers) w.client.close();
    }
    for (const w of writers) expect(w.client.fatalErrors).toEqual([]);
    await Promise.all(loads);

    const removed = removing!;
    const remaining = ["n1", "n2", "n3", "n4"].filter((n) => n !== removed);
    const leader = await cluster.waitForLeader();
    const ls = await cluster.status(leader);
    expect(ls.confState.voters.sort()).toEqual(remaining);
    expect(ls.members.map((m) => m.id).sort()).toEqual(remaining);
    for (const n of remaining) {
      await cluster.waitForApplied(n, ls.commit);
      const kvs = await readPrefix(cluster, n, "mb/");
      for (const w of writers) expect(checkWriter(w, n, kvs)).toEqual([]);
    }

    // With the removed member gone for good, the old configuration {n1,n2,n3} would have no quorum once one
    // more original member stops; the new one still has two of three.
    const stopped = leader === "n4" ? remaining.find((n) => n !== "n4")! : leader;
    await cluster.kill(stopped);
    const rest = cluster.running().sort();
    expect(rest).toHaveLength(2);
    expect(rest).toContain("n4");
    const sock = await cluster.connect(rest[0]);
    try {
      const r = await retrying(() =>
        sock.request<{ revision: number }>("put", { key: "mb/after", value: "quorum of the new configuration" }, 5000),
      );
      expect(r.revision).toBeGreaterThan(0);
    } finally {
      sock.close();
    }
  });
});
