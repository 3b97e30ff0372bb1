// A client's proposal that is not applied within the request timeout fails with TIMEOUT at the first tick after
// its deadline (PendingProposals.expire, called on the host's tick: no timer per request), and is counted.

import { describe, expect, it } from "vitest";
import { TICK } from "../../sim/cluster.js";
import { SCENARIO_PARAMS, Scenario } from "../../sim/scenario.js";
import { PendingProposals, ProposalError } from "../../src/host/proposals.js";
import type { Command, Outcome } from "../../src/statemachine/commands.js";

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("PendingProposals' deadlines", () => {
  it("fails a timed proposal at the first expire at or after its deadline, never an untimed or applied one", async () => {
    const failed: string[] = [];
    const pending = new PendingProposals(1000, (code) => failed.push(code));
    const settled = new Map<number, string>();
    const track = (index: number, p: Promise<Outcome>) =>
      p.then(
        () => settled.set(index, "applied"),
        (e: ProposalError) => settled.set(index, `${e.code}: ${e.message}`),
      );
    track(1, pending.add(1, 1)); // untimed (the host's own proposals)
    track(2, pending.add(2, 1, 0, "put"));
    track(3, pending.add(3, 1, 0, "txn"));
    track(4, pending.add(4, 1, 500, "put"));
    pending.expire(999);
    pending.applied(3, 1, { ok: true, value: null });
    await settle();
    expect([...settled]).toEqual([[3, "applied"]]);
    pending.expire(1000);
    await settle();
    expect(settled.get(2)).toBe("TIMEOUT: put was not applied within 1000 ms; its outcome is unknown (retry with the same session seq)");
    expect(settled.has(4)).toBe(false);
    pending.expire(1_000_000);
    pending.applied(2, 1, { ok: true, value: null }); // applied after its deadline: nobody waits any more
    await settle();
    expect(settled.get(4)).toMatch(/^TIMEOUT: put was not applied/);
    expect(settled.has(1)).toBe(false);
    expect(failed).toEqual(["TIMEOUT", "TIMEOUT"]);
    expect(pending.size).toBe(1);
  });
});

describe("PendingProposals at an index proposed again", () => {
  it("fails the earlier waiter as lost (its entry was replaced) and keeps the new one, with its own deadline", async () => {
    const failed: string[] = [];
    const pending = new PendingProposals(1000, (code) => failed.push(code));
    const settled: string[] = [];
    const track = (name: string, p: Promise<Outcome>) =>
      p.then(
        () => settled.push(`${name} applied`),
        (e: ProposalError) => settled.push(`${name} ${e.code}`),
      );
    track("first", pending.add(5, 1, 0, "put"));
    track("other", pending.add(6, 1, 0, "put"));
    track("again", pending.add(5, 3, 400, "put")); // leading again in term 3, the log cut back to index 4
    await settle();
    expect(settled).toEqual(["first PROPOSAL_LOST"]);
    pending.expire(1000); // index 6 is due; index 5's new deadline (1400) is not, though its index is lower
    await settle();
    expect(settled).toEqual(["first PROPOSAL_LOST", "other TIMEOUT"]);
    pending.applied(5, 3, { ok: true, value: null });
    await settle();
    expect(settled).toEqual(["first PROPOSAL_LOST", "other TIMEOUT", "again applied"]);
    expect(failed).toEqual(["PROPOSAL_LOST", "TIMEOUT"]);
  });
});

describe("a client's proposal on the production host", () => {
  it("fails with TIMEOUT at the first tick after the request timeout when no quorum answers", async () => {
    const s = new Scenario(["n1", "n2", "n3"]);
    expect(await s.runUntil(() => s.cluster.leader() !== undefined, 50 * TICK)).toBe(true);
    const leader = s.cluster.leader()!;
    await s.run(5 * TICK);
    s.ctx.network.dropIf = (m) => m.from === leader.replica.id || m.to === leader.replica.id; // isolated
    const started = s.ctx.now;
    let answer: string | undefined;
    let answeredAt = 0;
    leader.replica.propose({ op: "put", key: "k", value: new Uint8Array([1]) } as Command, true).then(
      () => (answer = "applied"),
      (e: ProposalError) => {
        answer = e.code;
        answeredAt = s.ctx.now;
      },
    );
    expect(await s.runUntil(() => answer !== undefined, SCENARIO_PARAMS.requestTimeoutMs + 5 * TICK)).toBe(true);
    expect(answer).toBe("TIMEOUT");
    expect(answeredAt - started).toBeGreaterThanOrEqual(SCENARIO_PARAMS.requestTimeoutMs);
    expect(answeredAt - started).toBeLessThanOrEqual(SCENARIO_PARAMS.requestTimeoutMs + TICK);
  });
});
