import { describe, expect, it } from "vitest";
import { EntryType } from "../../src/raft/types.js";
import { TICK, type Cluster, type Host, type SimContext } from "../../sim/cluster.js";
import { machineGrantingToDeadLeases, machineIgnoringFences } from "../../sim/broken-locks.js";
import { rawBytes } from "../../sim/entry-data.js";
import { FencedResource } from "../../sim/fenced-resource.js";
import { runFigure8 } from "../../sim/figure8.js";
import { checkKvHistory, checkLockHistories } from "../../sim/history.js";
import { InvariantChecker, InvariantViolation } from "../../sim/invariants.js";
import type { HistoryLine } from "../../sim/kv-clients.js";
import { Prng } from "../../sim/prng.js";
import { realMachine } from "../../sim/replica.js";
import { runSeed, type SeedResult } from "../../sim/simulation.js";

const nodesFor = (seed: number): number => (seed % 2 === 0 ? 5 : 3);

function failures(first: number, count: number): string[] {
  const out: string[] = [];
  for (let s = first; s < first + count; s++) {
    const r = runSeed({ seed: s, nodes: nodesFor(s) });
    if (r.violation)
      out.push(`seed ${s}: ${r.violation.message} — replay: npm run sim -- --seed ${s} --nodes ${r.nodes} --verbose`);
  }
  return out;
}

/** White-box access to a node's Raft state, for tests that break the core on purpose. */
const raftOf = (h: Host): Record<string, unknown> => (h.node as unknown as { raft: Record<string, unknown> }).raft;

/** Seeds run with a hook on every node until one breaks `invariant`; the invariants the failing seeds broke. */
function violationsWith(
  hooks: Pick<Parameters<typeof runSeed>[0], "onNodeCreated" | "machine">,
  seeds: number,
  invariant: string,
): string[] {
  const found: string[] = [];
  for (let s = 1; s <= seeds && !found.includes(invariant); s++) {
    const r = runSeed({ seed: s, nodes: nodesFor(s), ...hooks });
    if (r.violation) found.push(r.violation.invariant);
  }
  return found;
}

/** Run one seed, with `action` scheduled at `atTick` (retried every tick until it returns true). */
function runWithAction(
  seed: number,
  atTick: number,
  action: (cluster: Cluster, ctx: SimContext) => boolean,
): SeedResult {
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

describe("simulator: seeds hold every invariant", () => {
  // 600 seeds in six blocks (~60 ms a seed with the real state machine on an idle machine, so a block stays
  // far below the test timeout on a loaded one); CI runs 2,000 through the CLI.
  for (let block = 0; block < 6; block++) {
    const first = 1 + block * 100;
    it(`seeds ${first}..${first + 99}`, () => {
      expect(failures(first, 100)).toEqual([]);
    });
  }
});

describe("simulator: the workloads exercise what the checks check", () => {
  it("30 seeds: linearizable keys, lock grants and releases, lease expiries, refused stale tokens, elections", () => {
    const total: Record<string, number> = {};
    for (let s = 1; s <= 30; s++) {
      const r = runSeed({ seed: s, nodes: nodesFor(s) });
      expect(r.violation).toBeNull();
      for (const [k, v] of Object.entries(r)) if (typeof v === "number") total[k] = (total[k] ?? 0) + v;
    }
    expect(total.kvOpsChecked).toBeGreaterThan(3000);
    expect(total.linearizableKeys).toBeGreaterThanOrEqual(90); // 3..5 keys a seed, every one linearizable
    expect(total.unknownKeys).toBe(0);
    expect(total.lockGrants).toBeGreaterThan(100);
    expect(total.lockReleases).toBeGreaterThan(100);
    expect(total.leaseExpiries).toBeGreaterThan(10);
    expect(total.electionChanges).toBeGreaterThan(100);
    expect(total.fencedAccepted).toBeGreaterThan(100);
    expect(total.fencedRefused).toBeGreaterThan(0);
    expect(total.resourceRefused).toBeGreaterThan(0);
    expect(total.outputsCompared).toBeGreaterThan(total.committed);
  });
});

describe("simulator: determinism", () => {
  it("replays a seed identically: same result and same event trace", () => {
    const run = (): { result: SeedResult; trace: string[] } => {
      const trace: string[] = [];
      const result = runSeed({ seed: 4242, nodes: 5, onLog: (t, l) => trace.push(`${t} ${l}`) });
      return { result, trace };
    };
    const a = run();
    const b = run();
    expect(a.trace.length).toBeGreaterThan(10);
    expect(b.result).toEqual(a.result);
    expect(b.trace).toEqual(a.trace);
    // A different seed takes a different path.
    expect(runSeed({ seed: 4243, nodes: 5 }).steps).not.toBe(a.result.steps);
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

  it("rejects bad options with a clear error", () => {
    expect(() => runSeed({ seed: 1, nodes: 4 })).toThrow(/nodes must be 3 or 5, got 4/);
    expect(() => runSeed({ seed: -1, nodes: 3 })).toThrow(/seed must be an integer/);
  });
});

describe("simulator: the checkers are not blind", () => {
  it("reports a fake second leader in the same term", () => {
    const r = runWithAction(11, 30, (cluster) => {
      const leader = cluster.leader();
      const follower = [...cluster.hosts.values()].find((h) => h.up && h !== leader);
      if (!leader || !follower) return false;
      const raft = raftOf(follower);
      raft.term = leader.node!.term; // white-box: make a follower believe it leads the same term
      raft.role = "leader";
      cluster.afterInput(follower);
      return true;
    });
    expect(r.violation?.invariant).toBe("election safety");
  });

  it("reports a committed entry corrupted on one node's disk once that node replays it", () => {
    const r = runWithAction(12, 40, (cluster) => {
      for (const h of cluster.hosts.values()) {
        if (!h.up || h === cluster.leader()) continue;
        const d = h.durable;
        const snapIndex = d.snapshot?.metadata.index ?? 0;
        const i = d.entries.findIndex(
          (e) =>
            e.index > snapIndex &&
            e.index <= d.hardState.commit &&
            e.type === EntryType.Normal &&
            e.data.byteLength > 0,
        );
        if (i < 0) continue;
        d.entries[i] = { ...d.entries[i], data: rawBytes("corrupted") };
        cluster.crash(h);
        cluster.restart(h); // replays the committed log from its disk
        return true;
      }
      return false;
    });
    expect(r.violation?.invariant).toBe("state-machine safety");
    expect(r.violation?.message).toMatch(/"corrupted"/);
  });

  it("reports a leader elected with a stale log (the up-to-date vote check removed)", () => {
    const found = violationsWith(
      {
        onNodeCreated: (h) => {
          (h.coreLog() as unknown as { isUpToDate: () => boolean }).isUpToDate = () => true;
        },
      },
      100,
      "leader completeness",
    );
    expect(found).toContain("leader completeness");
  });

  it("reports stale reads when the leader answers reads without confirming leadership", () => {
    const found = violationsWith(
      {
        onNodeCreated: (h) => {
          const raft = raftOf(h);
          raft.readOnlyOption = "lease"; // answer reads at once …
          raft.checkQuorum = false; // … and never notice being deposed
        },
      },
      200,
      "linearizability",
    );
    expect(found).toContain("linearizability");
  });

  it("reports a cluster that never elects a leader after the faults heal", () => {
    const r = runSeed({
      seed: 3,
      nodes: 3,
      faultTicks: 50,
      onNodeCreated: (h) => {
        raftOf(h).hup = () => {}; // nobody ever campaigns
      },
    });
    expect(r.violation?.invariant).toBe("liveness");
  });

  it("Figure 8, scripted: the real core never commits the old-term entry; without the rule the checker objects", () => {
    const ok = runFigure8();
    // X reached a majority in term 4, yet Y (term 3) legitimately replaced it everywhere.
    expect(ok.appliedAt).toEqual({ n1: "Y", n2: "Y", n3: "Y", n4: "Y", n5: "Y" });
    const countingOldTerms = (h: Host): void => {
      const log = h.coreLog() as unknown as {
        committed: number;
        commitTo(i: number): void;
        maybeCommit(i: number, t: number): boolean;
      };
      log.maybeCommit = (i) => {
        if (i <= log.committed) return false;
        log.commitTo(i); // commits by counting replicas whatever the entry's term: the rule of Figure 8 removed
        return true;
      };
    };
    expect(() => runFigure8(countingOldTerms)).toThrow(/leader completeness: n5 became leader of term 5/);
  });

  it("reports a lock granted to an expired lease (a lock handler without the lease check)", () => {
    const found = violationsWith({ machine: machineGrantingToDeadLeases }, 60, "lock/election rules");
    expect(found).toContain("lock/election rules");
  });

  it("reports a fenced put accepted from a deposed holder (a store that ignores fences)", () => {
    const r = Array.from({ length: 60 }, (_, i) => i + 1)
      .map((s) => runSeed({ seed: s, nodes: nodesFor(s), machine: machineIgnoringFences }).violation)
      .find((v) => v !== null);
    expect(r?.invariant).toBe("lock/election rules");
    expect(r?.message).toMatch(/store accepts only a current holder/);
  });

  it("reports a follower whose state machine lost its state (outputs differ between nodes)", () => {
    // In a few seeds the follower installs a snapshot (healing it) before its outputs differ: ask for most.
    const found = Array.from({ length: 10 }, (_, i) =>
      runWithAction(i + 1, 40, (cluster) => {
        const leader = cluster.leader();
        const follower = [...cluster.hosts.values()].find((h) => h.up && h !== leader && h.sm.appliedIndex > 5);
        if (!leader || !follower) return false;
        follower.sm.coordination = realMachine.create(); // white-box: forget everything, keep applying
        return true;
      }).violation?.invariant,
    ).filter((v) => v !== undefined);
    expect(found.length).toBeGreaterThanOrEqual(7);
    expect(new Set(found)).toEqual(new Set(["identical outputs"]));
  });

  it("the KV history checker (src/check, per-key register) catches a stale read and accepts an info write", () => {
    const h = (process: number, type: HistoryLine["type"], f: string, value: unknown, key = "k0"): HistoryLine => ({
      process,
      type,
      f,
      key,
      value,
    });
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
    const stale = [
      h(0, "invoke", "write", 1),
      h(0, "ok", "write", 1),
      h(0, "invoke", "write", 2),
      h(0, "ok", "write", 2),
      h(1, "invoke", "read", null),
      h(1, "ok", "read", 1),
    ];
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
    const e = (index: number, term: number, data: string) => ({
      index,
      term,
      type: EntryType.Normal,
      data: rawBytes(data),
    });
    c.persisted("n1", [e(2, 2, "x")], () => 2);
    expect(() => c.persisted("n2", [e(2, 2, "y")], () => 2)).toThrow(InvariantViolation);
    expect(() => c.persisted("n3", [e(2, 2, "x")], () => 1)).toThrow(/differ at index 1/);
    c.commit("n1", 2, 2);
    expect(() => c.commit("n2", 2, 3)).toThrow(/committed entry changed/);
    c.leader("n1", 4);
    expect(() => c.leader("n2", 4)).toThrow(/two leaders in term 4/);
    expect(() => c.restartCommit("n1", 3, 5)).toThrow(/below its durable commit 5/);
  });
});
