import { describe, expect, it } from "vitest";
import { EntryType } from "../../src/raft/types.js";
import { TICK, type Cluster, type Host, type SimContext } from "./cluster.js";
import { checkHistory } from "./history.js";
import { runFigure8 } from "./figure8.js";
import { InvariantChecker, InvariantViolation } from "./invariants.js";
import { encodeValue } from "./list-machine.js";
import { Prng } from "./prng.js";
import { runSeed, type SeedResult } from "./simulation.js";
import type { CompletedOp } from "./workload.js";

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
function violationsWith(onNodeCreated: (h: Host) => void, seeds: number, invariant: string): string[] {
  const found: string[] = [];
  for (let s = 1; s <= seeds && !found.includes(invariant); s++) {
    const r = runSeed({ seed: s, nodes: nodesFor(s), onNodeCreated });
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
  // 600 seeds in four blocks (~20 ms a seed when the machine is idle); CI runs 2,000 through the CLI.
  for (let block = 0; block < 4; block++) {
    const first = 1 + block * 150;
    it(`seeds ${first}..${first + 149}`, () => {
      expect(failures(first, 150)).toEqual([]);
    });
  }
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
        d.entries[i] = { ...d.entries[i], data: encodeValue("corrupted") };
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
      (h) => {
        (h.coreLog() as unknown as { isUpToDate: () => boolean }).isUpToDate = () => true;
      },
      100,
      "leader completeness",
    );
    expect(found).toContain("leader completeness");
  });

  it("reports stale reads when the leader answers reads without confirming leadership", () => {
    const found = violationsWith(
      (h) => {
        const raft = raftOf(h);
        raft.readOnlyOption = "lease"; // answer reads at once …
        raft.checkQuorum = false; // … and never notice being deposed
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

  it("the history checker catches a stale read and a lost acknowledged write", () => {
    const w = (value: string, invoke: number, complete: number): CompletedOp => ({
      client: 0,
      kind: "write",
      value,
      result: [],
      invoke,
      complete,
    });
    const rd = (result: string[], invoke: number, complete: number): CompletedOp => ({
      client: 1,
      kind: "read",
      value: "",
      result,
      invoke,
      complete,
    });
    const final = ["a", "b", "c"];
    expect(() =>
      checkHistory([w("a", 1, 2), w("b", 3, 4), rd(["a", "b"], 5, 6), rd(["a"], 3, 7)], final),
    ).not.toThrow();
    expect(() => checkHistory([w("a", 1, 2), w("b", 3, 4), rd(["a"], 5, 6)], final)).toThrow(/missing b/);
    expect(() => checkHistory([w("x", 1, 2)], final)).toThrow(/not in the final committed list/);
    expect(() => checkHistory([rd(["b"], 1, 2)], final)).toThrow(/position 0/);
  });

  it("the invariant checker rejects conflicting logs and commits", () => {
    const c = new InvariantChecker();
    const e = (index: number, term: number, data: string) => ({
      index,
      term,
      type: EntryType.Normal,
      data: encodeValue(data),
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
