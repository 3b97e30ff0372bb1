import { describe, expect, it } from "vitest";
import { EntryType } from "../../src/raft/types.js";
import type { RangeResult } from "../../src/statemachine/index.js";
import { machineGrantingToDeadLeases, machineIgnoringFences } from "../../sim/broken-locks.js";
import { TICK, type SimCluster, type SimContext, type SimHost } from "../../sim/cluster.js";
import { rawBytes, valueBytes, valueOf } from "../../sim/entry-data.js";
import { FencedResource } from "../../sim/fenced-resource.js";
import { checkKvHistory, checkLockHistories } from "../../sim/history.js";
import { InvariantChecker, InvariantViolation } from "../../sim/invariants.js";
import type { HistoryLine } from "../../sim/kv-clients.js";
import { realMachine } from "../../sim/machines.js";
import { Prng } from "../../sim/prng.js";
import { Scenario } from "../../sim/scenario.js";
import { SEEDS_IN_TESTS, nodesFor } from "../../sim/seeds.js";
import { runSeed, type SeedResult, type SimOptions } from "../../sim/simulation.js";

/** White-box access to a host's Raft state, for tests that break the core on purpose. */
const raftOf = (h: SimHost): Record<string, unknown> => (h.replica as unknown as { raft: { raft: Record<string, unknown> } }).raft.raft;

/** Seeds run with a hook until one breaks `invariant`; the invariants the failing seeds broke. */
async function violationsWith(hooks: Pick<SimOptions, "onHostStarted" | "machine">, seeds: number, invariant: string): Promise<string[]> {
  const found: string[] = [];
  for (let s = 1; s <= seeds && !found.includes(invariant); s++) {
    const r = await runSeed({ seed: s, nodes: nodesFor(s), ...hooks });
    if (r.violation) found.push(r.violation.invariant);
  }
  return found;
}

/** Run one seed, with `action` scheduled at `atTick` (retried every tick until it returns true). */
function runWithAction(seed: number, atTick: number, action: (cluster: SimCluster, ctx: SimContext) => boolean): Promise<SeedResult> {
  return runSeed({
    seed,
    nodes: 3,
    faultTicks: 100,
    tamper: ({ cluster, ctx }) => {
      const attempt = (): void => {
        if (!action(cluster, ctx)) ctx.queue.push(ctx.now + TICK, attempt);
      };
      ctx.queue.push(atTick * TICK, attempt);
    },
  });
}

describe("simulator: the workloads exercise what the checks check", () => {
  it("20 seeds: linearizable keys, locks, leases, fencing, elections, watches, restarts and failed fsyncs", async () => {
    const total: Record<string, number> = {};
    for (let s = 1; s <= 20; s++) {
      const r = await runSeed({ seed: s, nodes: nodesFor(s) });
      expect(r.violation).toBeNull();
      for (const [k, v] of Object.entries(r)) if (typeof v === "number") total[k] = (total[k] ?? 0) + v;
    }
    expect(total.kvOpsChecked).toBeGreaterThan(600);
    expect(total.linearizableKeys).toBeGreaterThanOrEqual(60); // 3..5 keys a seed, every one linearizable
    expect(total.lockGrants).toBeGreaterThan(50);
    // A floor of how much the seeds exercise, not a target: any change to the order of events moves every seed's
    // path (taking snapshots over turns moved it from 51 to 46, restoring them over turns to 40).
    expect(total.lockReleases).toBeGreaterThan(30);
    // Sparse (about one seed in two; 40-44 in seeds 1-80): 7 here before the WAL's preallocation, 5 with it.
    expect(total.leaseExpiriesChecked).toBeGreaterThan(3);
    expect(total.keepAlives).toBeGreaterThan(50);
    expect(total.electionChanges).toBeGreaterThan(50);
    expect(total.fencedAccepted).toBeGreaterThan(50);
    expect(total.fencedRefused).toBeGreaterThan(0); // a deposed holder's write refused by its fence
    expect(total.watchEvents).toBeGreaterThan(200);
    expect(total.restarts).toBeGreaterThan(20);
    expect(total.fatalStops).toBeGreaterThan(5);
    expect(total.snapshotsInstalled).toBeGreaterThan(5);
    expect(total.walReadsBack).toBeGreaterThan(20); // entries released from memory, read back (catch-ups, applies)
    expect(total.outputsCompared).toBeGreaterThan(total.committed);
  });
});

describe("simulator: determinism", () => {
  it("replays a seed identically: same result and same event trace", async () => {
    const run = async (): Promise<{ result: SeedResult; trace: string[] }> => {
      const trace: string[] = [];
      const result = await runSeed({ seed: 4242, nodes: 5, faultTicks: 120, onLog: (t, l) => trace.push(`${t} ${l}`) });
      return { result, trace };
    };
    const a = await run();
    const b = await run();
    expect(a.trace.length).toBeGreaterThan(10);
    expect(b.result).toEqual(a.result);
    expect(b.trace).toEqual(a.trace);
    // A different seed takes a different path.
    expect((await runSeed({ seed: 4243, nodes: 5, faultTicks: 120 })).events).not.toBe(a.result.events);
  });

  it("the PRNG is deterministic and well spread", () => {
    const a = new Prng(99);
    const b = new Prng(99);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
    expect(() => a.pick([])).toThrow(/empty list/);
  });

  it("rejects bad options with a clear error", async () => {
    await expect(runSeed({ seed: 1, nodes: 4 })).rejects.toThrow(/nodes must be 3 or 5, got 4/);
    await expect(runSeed({ seed: -1, nodes: 3 })).rejects.toThrow(/seed must be an integer/);
  });

  it("names the seeds npm test runs (what the mutation runs promise to catch within)", () => {
    expect(SEEDS_IN_TESTS).toBeGreaterThanOrEqual(200);
  });
});

describe("simulator: the checkers are not blind", () => {
  it("reports a fake second leader in the same term", async () => {
    const r = await runWithAction(11, 30, (cluster) => {
      const leader = cluster.leader();
      const follower = [...cluster.hosts.values()].find((h) => h.up && h !== leader);
      if (!leader || !follower) return false;
      const raft = raftOf(follower);
      raft.term = leader.replica.term; // white-box: make a follower believe it leads the same term
      raft.role = "leader";
      follower.replica.schedule();
      return true;
    });
    expect(r.violation?.invariant).toBe("election safety");
  });

  it("reports a member that cannot recover from its disk (a committed entry's bytes damaged in its WAL)", async () => {
    const r = await runWithAction(12, 40, (cluster) => {
      for (const h of cluster.hosts.values()) {
        if (!h.up || h === cluster.leader()) continue;
        const wal = h.disk.list("/data/wal");
        if (wal.length === 0) continue;
        const file = `/data/wal/${wal[0]}`;
        const bytes = h.disk.readFile(file);
        if (bytes.length < 200) continue;
        bytes[100] ^= 0xff;
        h.disk.truncateSync(file, 0);
        h.disk.writeFileSync(file, bytes);
        cluster.crash(h);
        cluster.restart(h); // recovers from its damaged disk
        return true;
      }
      return false;
    });
    expect(r.violation?.invariant).toBe("restart");
    expect(r.violation?.message).toMatch(/storage corruption/);
  });

  it("reports a leader elected with a stale log (the up-to-date vote check removed)", async () => {
    const found = await violationsWith(
      {
        onHostStarted: (h) => {
          (raftOf(h).log as { isUpToDate: () => boolean }).isUpToDate = () => true;
        },
      },
      60,
      "leader completeness",
    );
    expect(found).toContain("leader completeness");
  });

  it.each([
    { reads: "lease reads without CheckQuorum", lease: true, expected: "a stale read, reported by the linearizability check" },
    { reads: "the shipped ReadIndex reads", lease: false, expected: "no stale read" },
  ])("a deposed leader still reachable by a client, with $reads: $expected", async ({ lease }) => {
    // Scripted, not searched for by seed: a stale read needs a client to read from a deposed leader after another
    // client's newer write was acknowledged, which the seeds' random faults arrange rarely (first at seed 362 of a
    // search that cost a minute of every npm test). The same production hosts and the same history check as a seed.
    const s = new Scenario(["n1", "n2", "n3"], {}, 1, {
      onHostStarted: (h) => {
        if (!lease) return;
        const raft = raftOf(h);
        raft.readOnlyOption = "lease"; // answer reads at once …
        raft.checkQuorum = false; // … and never notice being deposed
      },
    });
    expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
    const old = s.cluster.leader()!;
    const others = [...s.cluster.hosts.values()].filter((h) => h !== old);
    const history: HistoryLine[] = [];
    const write = async (process: number, on: SimHost, value: number): Promise<void> => {
      const { conn, session } = s.client(`writer-${value}`);
      conn.guess = on.id;
      history.push({ process, type: "invoke", f: "write", key: "k", value });
      const w = await s.settle(session.write("put", { key: "k", value: valueBytes(value) }));
      expect(w.kind).toBe("ok");
      history.push({ process, type: "ok", f: "write", key: "k", value });
    };
    await write(0, old, 1);
    // The old leader and one client on one side; the other two members and a second writer on the other.
    s.ctx.network.partition([old.id, "reader"], [...others.map((h) => h.id), "writer-2"]);
    expect(await s.runUntil(() => others.some((h) => h.replica.isLeader), 50 * TICK)).toBe(true);
    await write(1, others.find((h) => h.replica.isLeader)!, 2);
    const { conn } = s.client("reader");
    conn.guess = old.id;
    history.push({ process: 2, type: "invoke", f: "read", key: "k", value: null });
    const r = await s.settle(conn.call("range", { key: "k" }));
    if (r.ok) {
      const kv = (r.value as RangeResult).kvs[0];
      history.push({ process: 2, type: "ok", f: "read", key: "k", value: kv === undefined ? null : valueOf(kv.value) });
    } else {
      history.push({ process: 2, type: "fail", f: "read", key: "k", value: null });
    }
    if (lease) {
      expect(history.at(-1)).toMatchObject({ type: "ok", value: 1 }); // the deposed leader answered from its own state …
      expect(() => checkKvHistory(history)).toThrow(expect.objectContaining({ invariant: "linearizability" })); // … and the check saw it
    } else {
      expect(r.ok).toBe(false); // a ReadIndex round cannot complete without a majority: the read fails …
      expect(checkKvHistory(history).linearizableKeys).toBe(1); // … and the history is linearizable
    }
  });

  it("reports a cluster that never elects a leader after the faults heal", async () => {
    const r = await runSeed({
      seed: 3,
      nodes: 3,
      faultTicks: 50,
      onHostStarted: (h) => {
        raftOf(h).hup = () => {}; // nobody ever campaigns
      },
    });
    expect(r.violation?.invariant).toBe("liveness");
  });

  it("reports a lock granted to an expired lease (a lock handler without the lease check)", async () => {
    const found = await violationsWith({ machine: machineGrantingToDeadLeases }, 60, "lock/election rules");
    expect(found).toContain("lock/election rules");
  });

  it("reports a fenced put accepted from a deposed holder (a store that ignores fences)", async () => {
    let violation: SeedResult["violation"] = null;
    for (let s = 1; s <= 60 && violation === null; s++) violation = (await runSeed({ seed: s, nodes: nodesFor(s), machine: machineIgnoringFences })).violation;
    expect(violation?.invariant).toBe("lock/election rules");
    expect(violation?.message).toMatch(/store accepts only a current holder/);
  });

  it("reports a follower whose state machine lost its state (outputs differ between members)", async () => {
    // In a few seeds the follower installs a snapshot (healing it) before its outputs differ: ask for most.
    const found: (string | undefined)[] = [];
    for (let i = 1; i <= 10; i++) {
      const r = await runWithAction(i, 40, (cluster) => {
        const leader = cluster.leader();
        const follower = [...cluster.hosts.values()].find((h) => h.up && h !== leader && h.replica.appliedTo > 5);
        if (!leader || !follower) return false;
        follower.replica.coord = realMachine.create(); // white-box: forget everything, keep applying
        return true;
      });
      found.push(r.violation?.invariant);
    }
    const reported = found.filter((v) => v !== undefined);
    expect(reported.length).toBeGreaterThanOrEqual(7);
    expect(reported.filter((v) => v === "identical outputs").length).toBeGreaterThanOrEqual(6);
    // Or the liveness phase finds first that the follower lacks the marker it applied (seed 5 since recovery reads
    // the WAL a chunk at a time): its state machine refused the put, whose session it had forgotten.
    for (const v of reported) expect(["identical outputs", "liveness"]).toContain(v);
  });

  it("the KV history checker (src/check, per-key register) catches a stale read and accepts an info write", () => {
    const h = (process: number, type: HistoryLine["type"], f: string, value: unknown, key = "k0"): HistoryLine => ({ process, type, f, key, value });
    const ok = [
      h(0, "invoke", "write", 1),
      h(0, "ok", "write", 1),
      h(1, "invoke", "write", 2),
      h(1, "info", "write", 2), // may take effect any time later
      h(0, "invoke", "read", null),
      h(0, "ok", "read", 2),
      h(2, "invoke", "cas", [2, 3], "k1"),
      h(2, "fail", "cas", [2, 3], "k1"),
    ];
    // The failed cas is dropped (it changed nothing): three operations on one key remain.
    expect(checkKvHistory(ok)).toEqual({ operations: 3, linearizableKeys: 1, unknownKeys: 0 });
    const stale = [h(0, "invoke", "write", 1), h(0, "ok", "write", 1), h(0, "invoke", "write", 2), h(0, "ok", "write", 2), h(1, "invoke", "read", null), h(1, "ok", "read", 1)];
    expect(() => checkKvHistory(stale)).toThrow(/linearizability/);
  });

  it("the fenced resource refuses stale tokens and reports tokens the log never granted", () => {
    const granted = new Map([
      [10, 1],
      [20, 2],
    ]);
    const r = new FencedResource("L", (t) => granted.get(t));
    expect(r.write(1, 10)).toBe(true);
    expect(r.write(2, 20)).toBe(true);
    expect(r.write(1, 10)).toBe(false); // the deposed holder is fenced off
    expect(() => r.write(3, 30)).toThrow(/log granted it to nobody/);
    const dup = new FencedResource("L", () => 1);
    dup.recordGrant(1, 5, 0, 1);
    dup.grants.push({ holder: "lease2", token: 5, acquireInvokedAt: 2, acquireAckedAt: 3 });
    expect(() => checkLockHistories([dup])).toThrow(/lock safety: L: .*5/);
  });

  it("the invariant checker rejects conflicting logs and commits", () => {
    const c = new InvariantChecker();
    const e = (index: number, term: number, data: string) => ({ index, term, type: EntryType.Normal, data: rawBytes(data) });
    c.persisted("n1", [e(2, 2, "x")], () => 2);
    expect(() => c.persisted("n2", [e(2, 2, "y")], () => 2)).toThrow(InvariantViolation);
    expect(() => c.persisted("n3", [e(2, 2, "x")], () => 1)).toThrow(/differ at index 1/);
    c.commit("n1", 2, 2);
    expect(() => c.commit("n2", 2, 3)).toThrow(/committed entry changed/);
    c.leader("n1", 4);
    expect(() => c.leader("n2", 4)).toThrow(/two leaders in term 4/);
    expect(() => c.restartCommit("n1", 3, 5)).toThrow(/below its durable commit 5/);
  });

  it("the invariant checker counts a leader's votes with both halves of a joint configuration", () => {
    const c = new InvariantChecker();
    const set = (...ids: string[]) => new Set(ids);
    c.voteGranted("n2", "n1", 3);
    c.leaderVotes("n1", 3, set("n1", "n2", "n3"), set()); // n1 and n2 of three
    c.voteGranted("n4", "n5", 4);
    // Incoming {n3,n4,n5} has a majority (n4,n5), outgoing {n1,n2,n3} has none.
    expect(() => c.leaderVotes("n5", 4, set("n3", "n4", "n5"), set("n1", "n2", "n3"))).toThrow(/not a majority of both/);
  });

  it("the invariant checker reports an entry committed while a member without it could still be elected (Figure 8)", () => {
    // Terms by index for n1, n2, n3; all running, all in {n1,n2,n3}.
    const view = (terms: number[]) => ({
      lastIndex: terms.length - 1,
      lastTerm: terms[terms.length - 1],
      termAt: (i: number) => (i < terms.length ? terms[i] : undefined),
    });
    const judge = (logs: Record<string, { memory: number[]; durable?: number[] }>) => {
      const c = new InvariantChecker();
      const config = { incoming: new Set(Object.keys(logs)), outgoing: new Set<string>() };
      c.electorate = () => Object.entries(logs).map(([id, l]) => ({ id, config, campaignsWith: { running: true, onDisk: true }, memory: view(l.memory), durable: view(l.durable ?? l.memory) }));
      c.restartedAt("n1", 1);
      return () => c.applied("n1", { index: 2, term: 2, type: EntryType.Normal, data: rawBytes("x") });
    };
    // n1 (leader of term 4) has x at 2 (term 2) on n1 and n3; n2 holds term 3 there and n3's log ends in term 2:
    // n2 could win with n3's vote and overwrite index 2 — committing it by counting was unsafe.
    expect(judge({ n1: { memory: [0, 1, 2, 4] }, n2: { memory: [0, 1, 3] }, n3: { memory: [0, 1, 2] } })).toThrow(/n2's log running has term 3 there/);
    // Once n3 holds the leader's own entry of term 4, n2 cannot win: safe.
    expect(judge({ n1: { memory: [0, 1, 2, 4] }, n2: { memory: [0, 1, 3] }, n3: { memory: [0, 1, 2, 4] } })).not.toThrow();
    // The same, but n3 has not made that entry durable yet: a crash and restart brings back a log that votes for n2.
    expect(judge({ n1: { memory: [0, 1, 2, 4] }, n2: { memory: [0, 1, 3] }, n3: { memory: [0, 1, 2, 4], durable: [0, 1, 2] } })).toThrow(/leader completeness/);
  });
});
