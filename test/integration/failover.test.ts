// Three real member processes: writes through any member, linearizable reads on every member, leader SIGKILL
// under a write load with no acknowledged write lost, and a killed member catching up — by log after a short
// absence, by snapshot after the leader compacted past it.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster, retrying, waitUntil } from "../../src/harness/index.js";
import { SessionWriter, checkWriter, readPrefix } from "./writer.js";

const SNAPSHOT_ENTRIES = 300;

describe.sequential("3-member cluster: writes, linearizable reads, leader failover, catch-up", () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ size: 3, basePort: 9100, tickMs: 50, snapshotEntries: SNAPSHOT_ENTRIES });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it("accepts writes on every member and serves linearizable reads on every member", async () => {
    const names = cluster.running().sort();
    const socks = await Promise.all(names.map((n) => cluster.connect(n)));
    try {
      // A write acknowledged by one member is seen by a linearizable read that starts afterwards on any other.
      for (let i = 0; i < 30; i++) {
        const writer = socks[i % 3];
        const reader = socks[(i + 1) % 3];
        const put = await retrying(() =>
          writer.request<{ revision: number }>("put", { key: "lin/x", value: `v${i}` }, 5000),
        );
        const got = await reader.request<{ revision: number; kvs: { value: Uint8Array; modRevision: number }[] }>(
          "range",
          { key: "lin/x" },
          5000,
        );
        expect(Buffer.from(got.kvs[0].value).toString()).toBe(`v${i}`);
        expect(got.kvs[0].modRevision).toBe(put.revision);
        expect(got.revision).toBeGreaterThanOrEqual(put.revision);
      }
    } finally {
      for (const s of socks) s.close();
    }
  });

  it("SIGKILL of the leader: a new leader serves writes and no acknowledged write is lost; the killed member catches up by log", async () => {
    const oldLeader = await cluster.waitForLeader();
    const survivors = () => cluster.running().filter((n) => n !== oldLeader);
    const writer = new SessionWriter(cluster, survivors, "fo/a/");
    await writer.open();
    let stop = false;
    const load = writer.run(() => stop, 5);
    try {
      await waitUntil("20 writes before the kill", 10_000, () => (writer.acked.length >= 20 ? true : undefined));
      const before = writer.acked.length;
      await cluster.kill(oldLeader);
      const killedAt = performance.now();
      await waitUntil("20 writes after the kill", 20_000, () => (writer.acked.length >= before + 20 ? true : undefined));
      const newLeader = await cluster.waitForLeader(10_000);
      expect(newLeader).not.toBe(oldLeader);
      expect(performance.now() - killedAt).toBeLessThan(20_000);
    } finally {
      stop = true;
      await load;
      writer.client.close();
    }
    expect(writer.client.fatalErrors).toEqual([]);

    // Every acknowledged write is on both survivors (after they applied everything the leader committed).
    const leader = await cluster.waitForLeader();
    const commit = (await cluster.status(leader)).commit;
    for (const n of survivors()) {
      await cluster.waitForApplied(n, commit);
      expect(checkWriter(writer, n, await readPrefix(cluster, n, "fo/a/"))).toEqual([]);
    }

    // The killed member restarts from its data directory and catches up from the leader's log (nothing was
    // compacted yet: fewer than SNAPSHOT_ENTRIES entries so far).
    expect((await cluster.status(leader)).snapshotIndex).toBeLessThan(10);
    await cluster.restart(oldLeader);
    const caughtUp = await cluster.waitForApplied(oldLeader, commit, 30_000);
    expect(caughtUp.applied).toBeGreaterThanOrEqual(commit);
    expect(checkWriter(writer, oldLeader, await readPrefix(cluster, oldLeader, "fo/a/"))).toEqual([]);
    expect(cluster.logTail(oldLeader, 10_000)).not.toContain("installed a snapshot from the leader");
  });

  it("a member down while the leader compacts its log catches up by snapshot", async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.running().find((n) => n !== leader)!;
    await cluster.kill(follower);

    // Writes pipelined 50 at a time force a snapshot and log compaction on the leader: more than SNAPSHOT_ENTRIES
    // make one due, and members take turns in spans of SNAPSHOT_ENTRIES indexes (snapshot-policy.ts), so the
    // leader's own span comes within three of them, whatever its place.
    const sock = await cluster.connect(leader);
    const total = 3 * SNAPSHOT_ENTRIES + 150;
    try {
      for (let i = 0; i < total; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, j) =>
            sock.request("put", { key: `snap/${String(i + j).padStart(4, "0")}`, value: `s${i + j}` }, 10_000),
          ),
        );
      }
    } finally {
      sock.close();
    }
    const ls = await waitUntil("a snapshot on the leader", 10_000, async () => {
      const s = await cluster.status(leader);
      return s.snapshotIndex > SNAPSHOT_ENTRIES ? s : undefined;
    });
    expect(ls.snapshotIndex).toBeGreaterThan(SNAPSHOT_ENTRIES);

    await cluster.restart(follower);
    const commit = (await cluster.status(leader)).commit;
    await cluster.waitForApplied(follower, commit, 30_000);
    expect(cluster.logTail(follower, 10_000)).toContain("installed a snapshot from the leader");

    // Same state everywhere: same revision and the same keys and values.
    const want = await readPrefix(cluster, leader, "");
    await waitUntil("the leader's snapshot to be saved", 10_000, () =>
      cluster.logTail(leader, 10_000).includes("snapshot saved") ? true : undefined,
    );
    const wantRevision = (await cluster.status(leader)).revision;
    expect(want.size).toBeGreaterThanOrEqual(total);
    for (const n of cluster.running()) {
      await cluster.waitForApplied(n, commit);
      expect((await cluster.status(n)).revision).toBe(wantRevision);
      expect(await readPrefix(cluster, n, "")).toEqual(want);
    }
  });
});

describe.sequential("exactly-once session writes across members", () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ size: 3, basePort: 9150, tickMs: 50 });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it("a write retried with the same (clientId, seq) on another member returns the recorded outcome and applies once", async () => {
    const names = cluster.running().sort();
    const socks = await Promise.all(names.map((n) => cluster.connect(n)));
    try {
      const lease = await retrying(() => socks[0].request<{ id: number }>("leaseGrant", { ttlMs: 60_000 }, 5000));
      const { clientId } = await socks[0].request<{ clientId: number }>("registerClient", { lease: lease.id }, 5000);
      for (let seq = 1; seq <= 5; seq++) {
        const session = { clientId, seq, lowestUnacked: seq };
        // The same request through every member, as a client would retry after losing a reply.
        const outcomes = await Promise.all(
          socks.map((s) =>
            s.request<{ revision: number }>("put", { key: `once/${seq}`, value: `v${seq}`, session }, 5000),
          ),
        );
        expect(new Set(outcomes.map((o) => o.revision)).size).toBe(1);
        const got = await socks[seq % 3].request<{ kvs: { version: number }[] }>("range", { key: `once/${seq}` }, 5000);
        expect(got.kvs[0].version).toBe(1);
      }
      // An increment through txn retried with its seq: the counter moves once.
      const session = { clientId, seq: 6, lowestUnacked: 6 };
      const txn = {
        compare: [{ key: "once/counter", target: "version", result: "=", value: 0 }],
        success: [{ op: "put", key: "once/counter", value: "1" }],
        failure: [],
        session,
      };
      const first = await socks[1].request<{ succeeded: boolean; revision: number }>("txn", txn, 5000);
      const retry = await socks[2].request<{ succeeded: boolean; revision: number }>("txn", txn, 5000);
      expect(first.succeeded).toBe(true);
      expect(retry).toEqual(first); // the recorded outcome, not a re-evaluation (which would fail the compare)
      // A seq below lowestUnacked is refused, not re-applied.
      await socks[0].request(
        "put",
        { key: "once/7", value: "x", session: { clientId, seq: 7, lowestUnacked: 7 } },
        5000,
      );
      const stale = await socks[0]
        .request("put", { key: "once/1", value: "again", session: { clientId, seq: 1, lowestUnacked: 1 } }, 5000)
        .then(
          () => "accepted",
          (e: { code: string }) => e.code,
        );
      expect(stale).toBe("STALE_SEQ");
      const one = await socks[0].request<{ kvs: { version: number; value: Uint8Array }[] }>(
        "range",
        { key: "once/1" },
        5000,
      );
      expect(one.kvs[0].version).toBe(1);
      expect(Buffer.from(one.kvs[0].value).toString()).toBe("v1");
    } finally {
      for (const s of socks) s.close();
    }
  });
});
