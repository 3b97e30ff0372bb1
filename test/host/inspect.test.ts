// The inspection listings (src/host/inspect.ts) over a real coordination state machine: holders and waiters in
// order with their tokens, leaders and candidates, leases with keys — and paging that neither skips nor repeats.

import { describe, expect, it } from "vitest";
import { ENTRY_BUDGET, electionList, electionStatus, leaseList, lockList } from "../../src/host/inspect.js";
import { bytes, harness, value, type Harness } from "../locks/harness.js";

const acquire = (h: Harness, name: string, lease: number, limit = 1) =>
  value<{ granted: boolean; token?: number }>(h.run({ op: "lockAcquire", name, lease, wait: true, limit } as never).result);
const campaign = (h: Harness, name: string, lease: number, v: string) =>
  h.run({ op: "electionCampaign", name, lease, value: bytes(v) } as never);

describe("lock listing", () => {
  it("lists holders with tokens in grant order and waiters in queue order, by name", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    const tokenA = acquire(h, "jobs/x", a).token!;
    acquire(h, "jobs/x", b);
    acquire(h, "jobs/x", c);
    const tokenSem = acquire(h, "gpu", b, 2).token!;
    const { locks, more } = lockList(h.c);
    expect(more).toBe(false);
    expect(locks).toEqual([
      { name: "gpu", limit: 2, holders: [{ lease: b, token: tokenSem }], waiters: [] },
      { name: "jobs/x", limit: 1, holders: [{ lease: a, token: tokenA }], waiters: [b, c] },
    ]);
    // A revoked holder hands the lock to the first waiter; the listing follows.
    h.run({ op: "leaseRevoke", id: a } as never);
    const after = lockList(h.c, { prefix: "jobs/" }).locks;
    expect(after).toHaveLength(1);
    expect(after[0].holders.map((x) => x.lease)).toEqual([b]);
    expect(after[0].holders[0].token).toBeGreaterThan(tokenA);
    expect(after[0].waiters).toEqual([c]);
  });

  it("pages by prefix, after and limit without skipping or repeating a name", () => {
    const h = harness();
    const lease = h.lease();
    const names = ["a", "b/1", "b/2", "b/3", "b0", "c"];
    for (const n of [...names].reverse()) acquire(h, n, lease);
    expect(lockList(h.c, { prefix: "b/" }).locks.map((l) => l.name)).toEqual(["b/1", "b/2", "b/3"]);
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(10);
      const page = lockList(h.c, { after, limit: 2 });
      seen.push(...page.locks.map((l) => l.name));
      if (!page.more) break;
      after = page.locks[page.locks.length - 1].name;
    }
    expect(seen).toEqual(names);
    expect(lockList(h.c, { prefix: "b/", after: "b/1", limit: 1 })).toMatchObject({ locks: [{ name: "b/2" }], more: true });
    expect(lockList(h.c, { prefix: "b/", after: "b/3" })).toEqual({ locks: [], more: false });
    expect(lockList(h.c, { prefix: "zz" })).toEqual({ locks: [], more: false });
  });

  it("ends a page once its entries pass the budget, but always takes one lock", () => {
    const h = harness();
    const holder = h.lease();
    acquire(h, "big", holder);
    for (let i = 0; i < ENTRY_BUDGET; i++) acquire(h, "big", h.lease());
    acquire(h, "small", holder);
    const first = lockList(h.c);
    expect(first.locks.map((l) => l.name)).toEqual(["big"]);
    expect(first.locks[0].waiters).toHaveLength(ENTRY_BUDGET);
    expect(first.more).toBe(true);
    expect(lockList(h.c, { after: "big" }).locks.map((l) => l.name)).toEqual(["small"]);
  });
});

describe("election listing", () => {
  it("shows the leader's lease, value and token and the candidates in order; idle elections have no leader", () => {
    const h = harness();
    const [a, b] = [h.lease(), h.lease()];
    campaign(h, "svc", a, "host-a");
    campaign(h, "svc", b, "host-b");
    campaign(h, "other", b, "solo");
    const svc = electionStatus(h.c, "svc");
    expect(svc.leader).toMatchObject({ lease: a, value: bytes("host-a") });
    expect(svc.candidates).toEqual([a, b]);
    h.run({ op: "leaseRevoke", id: a } as never);
    const next = electionStatus(h.c, "svc");
    expect(next.leader).toMatchObject({ lease: b, value: bytes("host-b") });
    expect(next.leader!.token).toBeGreaterThan(svc.leader!.token);
    expect(next.candidates).toEqual([b]);
    expect(electionStatus(h.c, "never")).toEqual({ name: "never", leader: null, candidates: [] });
    h.run({ op: "leaseRevoke", id: b } as never);
    // Both are idle now (kept with their history): listed, without a leader.
    expect(electionList(h.c)).toEqual({
      elections: [
        { name: "other", leader: null, candidates: [] },
        { name: "svc", leader: null, candidates: [] },
      ],
      more: false,
    });
    expect(electionList(h.c, { prefix: "s" }).elections.map((e) => e.name)).toEqual(["svc"]);
  });
});

describe("lease listing", () => {
  it("lists leases in id order with the leader's time left and, when asked, their keys", () => {
    const h = harness();
    const [a, b, c] = [h.lease(), h.lease(), h.lease()];
    for (const key of ["k/2", "k/1"]) h.run({ op: "put", key, value: bytes("v"), lease: b } as never);
    const remaining = new Map([[a, 400.4]]);
    const { leases, more } = leaseList(h.c.stateMachine, (id) => remaining.get(id));
    expect(more).toBe(false);
    expect(leases).toEqual([
      { id: a, ttlMs: 1000, grantedAt: 0, remainingMs: 400, keyCount: 0 },
      { id: b, ttlMs: 1000, grantedAt: 0, remainingMs: 1000, keyCount: 2 },
      { id: c, ttlMs: 1000, grantedAt: 0, remainingMs: 1000, keyCount: 0 },
    ]);
    const withKeys = leaseList(h.c.stateMachine, () => 0, { keys: true, after: a, limit: 1 });
    expect(withKeys).toEqual({ leases: [{ id: b, ttlMs: 1000, grantedAt: 0, remainingMs: 0, keyCount: 2, keys: ["k/1", "k/2"] }], more: true });
    expect(leaseList(h.c.stateMachine, () => 0, { after: c }).leases).toEqual([]);
  });
});
