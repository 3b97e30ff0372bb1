// The client library against a real 3-member cluster of server processes (ports 8100-8121).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { performance } from "node:perf_hooks";
import { connect, ConcordError, type Client, type WatchEvent } from "../../src/index.js";
import { LocalCluster } from "../../src/harness/index.js";

let cluster: LocalCluster;
let c: Client;

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, basePort: 8100, logLevel: "warn" });
  c = await connect(cluster.endpoints(), { timeoutMs: 8000 });
});

afterAll(async () => {
  await c?.close();
  await cluster?.teardown();
});

describe("KV", () => {
  it("puts, gets, pages through a prefix, deletes", async () => {
    for (let i = 0; i < 7; i++) await c.put(`kv/p/${i}`, `v${i}`);
    expect((await c.get("kv/p/3"))?.text).toBe("v3");
    expect(await c.get("kv/p/missing")).toBeNull();
    const page = await c.range("kv/p/", { limit: 3 });
    expect(page.kvs.map((k) => k.key)).toEqual(["kv/p/0", "kv/p/1", "kv/p/2"]);
    expect(page.more).toBe(true);
    const next = await c.range("kv/p/", { limit: 3, after: page.cursor });
    expect(next.kvs.map((k) => k.key)).toEqual(["kv/p/3", "kv/p/4", "kv/p/5"]);
    const all: string[] = [];
    for await (const kv of c.list("kv/p/", { pageSize: 2 })) all.push(kv.key);
    expect(all).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `kv/p/${i}`));
    expect((await c.get("kv/p/0", { consistency: "serializable" }))?.text).toBe("v0");
    const del = await c.delete("kv/p/", { prefix: true });
    expect(del.deleted).toBe(7);
    expect((await c.range("kv/p/")).kvs).toEqual([]);
  });

  it("txn runs the branch its compares select; cas swaps only on a match", async () => {
    const t1 = await c.txn().if("kv/t", "version", "=", 0).thenPut("kv/t", "first").elseGet("kv/t").commit();
    expect(t1.succeeded).toBe(true);
    const t2 = await c.txn().if("kv/t", "version", "=", 0).thenPut("kv/t", "second").elseGet("kv/t").commit();
    expect(t2.succeeded).toBe(false);
    expect(t2.responses[0]).toMatchObject({ op: "range" });
    expect(t2.responses[0].op === "range" && t2.responses[0].kvs[0].text).toBe("first");
    expect((await c.cas("kv/t", "nope", "x")).succeeded).toBe(false);
    const ok = await c.cas("kv/t", "first", "third");
    expect(ok.succeeded).toBe(true);
    expect((await c.get("kv/t"))?.text).toBe("third");
    expect((await c.cas("kv/absent", null, "a")).succeeded).toBe(true);
    expect((await c.cas("kv/absent", null, "b")).succeeded).toBe(false);
  });

  it("pipelines more writes than the server keeps session outcomes for (1024) without SESSION_BUSY", async () => {
    const n = 1500;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => c.put(`kv/pipe/${i % 10}`, String(i))));
    expect(new Set(results.map((r) => r.revision)).size).toBe(n);
    const versions = (await c.range("kv/pipe/")).kvs.reduce((sum, kv) => sum + kv.version, 0);
    expect(versions).toBe(n); // each write applied exactly once
    await c.delete("kv/pipe/", { prefix: true });
  });

  it("rejects bad input with a typed INVALID_ARGUMENT naming the field", async () => {
    await expect(c.put("", "x")).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "key" });
    await expect(c.put("k", 42 as unknown as string)).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      field: "value",
    });
    await expect(c.get("k", { consistency: "eventual" as "linearizable" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect(() => c.txn().if("k", "colour" as "value", "=", 1)).toThrow(ConcordError);
    await expect(c.grantLease(0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "ttlMs" });
    await expect(connect("http://x:1")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("surfaces server errors with their codes (fenced write with a stale token)", async () => {
    const hold = await c.lock("kv/fence", { ttlMs: 3000 });
    await c.fencedPut("kv/fenced", "a", hold);
    // The hold's lease goes with the fence: the holder's token under another lease is refused.
    const other = await c
      .fencedPut("kv/fenced", "x", { name: hold.name, token: hold.token, lease: hold.lease.id + 1 })
      .catch((e: unknown) => e);
    expect(other).toMatchObject({
      code: "FENCED",
      message: expect.stringContaining(`lease ${hold.lease.id + 1} does not hold it`),
    });
    await expect(c.fencedPut("kv/fenced", "x", { name: hold.name, token: hold.token, lease: 0 })).rejects.toMatchObject(
      { code: "INVALID_ARGUMENT", field: "fence.lease" },
    );
    await hold.release();
    const err = await c.fencedPut("kv/fenced", "b", hold).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConcordError);
    expect((err as ConcordError).code).toBe("FENCED");
    expect((await c.get("kv/fenced"))?.text).toBe("a");
  });
});

describe("lock waits", () => {
  it("a wait ends with LOCK_TIMEOUT, ABORTED or the lease's loss, as asked, and leaves the queue", async () => {
    const hold = await c.lock("lk/w", { ttlMs: 5000 });
    const t0 = performance.now();
    await expect(c.lock("lk/w", { timeoutMs: 300 })).rejects.toMatchObject({
      code: "LOCK_TIMEOUT",
      message: 'lock "lk/w" was not granted within 300 ms',
    });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);

    const abort = new AbortController();
    setTimeout(() => abort.abort(), 200);
    await expect(c.lock("lk/w", { signal: abort.signal })).rejects.toMatchObject({ code: "ABORTED" });

    // A wait on a caller's lease (no signal, no timeout) ends when that lease does: here revoked by another call.
    const lease = await c.grantLease(1500);
    const waiting = c.lock("lk/w", { lease }).catch((e: unknown) => e);
    await expect.poll(async () => (await c.lockStatus("lk/w")).waiters, { timeout: 3000 }).toEqual([lease.id]);
    await c.revokeLease(lease.id);
    const err = await waiting;
    expect(err).toBeInstanceOf(ConcordError);
    expect(["LEASE_LOST", "LEASE_NOT_FOUND"]).toContain((err as ConcordError).code);
    expect(lease.lost.aborted || (err as ConcordError).code === "LEASE_NOT_FOUND").toBe(true);

    // None of the three is still queued: the release hands the lock to nobody, and a new waiter gets it at once.
    expect((await c.lockStatus("lk/w")).waiters).toEqual([]);
    await hold.release();
    const next = await c.lock("lk/w", { timeoutMs: 2000 });
    expect(next.token).toBeGreaterThan(hold.token);
    await next.release();
  });
});

describe("watch errors", () => {
  it("throws COMPACTED instead of going silent when history before fromRevision is gone", async () => {
    const r1 = await c.put("wc/k", "1");
    const r2 = await c.put("wc/k", "2");
    await c.compact(r2.revision);
    const w = c.watch("wc/k", { fromRevision: r1.revision });
    const err = await (async () => {
      for await (const _ of w) return "delivered an event";
      return "ended silently";
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConcordError);
    expect((err as ConcordError).code).toBe("COMPACTED");
  });
});

describe("leases", () => {
  it("keeps a lease alive past its TTL, and lost fires within the TTL once keep-alives stop succeeding", async () => {
    const lease = await c.grantLease(900);
    await c.put("lease/k", "v", { lease: lease.id });
    await new Promise((r) => setTimeout(r, 2000));
    expect(lease.lost.aborted).toBe(false);
    expect(lease.keepAlives).toBeGreaterThanOrEqual(4);
    expect((await c.get("lease/k"))?.text).toBe("v");
    // Revoked behind the lease's back: the next keep-alive gets LEASE_NOT_FOUND and lost fires.
    const other = await connect(cluster.endpoints());
    try {
      await other.revokeLease(lease.id);
    } finally {
      await other.close();
    }
    const t0 = performance.now();
    await new Promise<void>((r) => (lease.lost.aborted ? r() : lease.lost.addEventListener("abort", () => r())));
    expect(performance.now() - t0).toBeLessThan(900);
    expect((lease.lost.reason as ConcordError).code).toBe("LEASE_LOST");
    expect(await c.get("lease/k")).toBeNull();
  });
});

describe("keep-alive grid", () => {
  it("leases granted apart keep alive together: one turn per 100 ms grid point, never later than a third of the TTL", async () => {
    const ttl = 3000;
    // Calls made in one synchronous run (one timer callback) share a turn number.
    let turnNo = 0;
    let turnOpen = false;
    const turn = () => {
      if (!turnOpen) {
        turnOpen = true;
        queueMicrotask(() => ((turnOpen = false), turnNo++));
      }
      return turnNo;
    };
    const first = new Map<number, { sinceGrant: number; turn: number; point: number }>();
    const leases = [];
    for (let i = 0; i < 8; i++) {
      const lease = await c.grantLease(ttl);
      const granted = performance.now();
      const once = lease.keepAliveOnce.bind(lease);
      lease.keepAliveOnce = () => {
        const now = performance.now();
        // The grid point is the one the lease was scheduled for at its grant (the constructor schedules it in the
        // same macrotask as `granted`), not the time the timer fired: late timers of two points can fire within
        // one 100 ms window of the clock and still be two turns.
        if (!first.has(lease.id))
          first.set(lease.id, {
            sinceGrant: now - granted,
            turn: turn(),
            point: Math.floor((granted + ttl / 3) / 100),
          });
        return once();
      };
      leases.push(lease);
      await new Promise((r) => setTimeout(r, 37)); // grants spread over ~300 ms
    }
    while (first.size < leases.length) await new Promise((r) => setTimeout(r, 50));
    for (const { sinceGrant } of first.values()) {
      expect(sinceGrant).toBeGreaterThan(ttl / 3 - 100 - 50); // moved earlier by at most one grid step
      expect(sinceGrant).toBeLessThan(ttl / 3 + 200); // never later (a timer may fire late on a loaded machine)
    }
    // The leases due at one grid point keep alive in one turn: no more turns than grid points touched, and fewer
    // than leases, the grants being spread over 300 ms or more (without the grid: one turn per lease).
    const turns = new Set([...first.values()].map((f) => f.turn)).size;
    expect(turns).toBeLessThanOrEqual(new Set([...first.values()].map((f) => f.point)).size);
    expect(turns).toBeLessThan(leases.length);
    for (const lease of leases) await lease.revoke();
  });
});

describe("lease renewals", () => {
  it("onRenewed fires at each acknowledged keep-alive, which moves remainingMs up to one TTL ahead; off() stops it", async () => {
    const ttl = 900;
    const lease = await c.grantLease(ttl);
    const remainingAtRenewal: number[] = [];
    const before = lease.keepAlives;
    const off = lease.onRenewed(() => remainingAtRenewal.push(lease.remainingMs));
    while (remainingAtRenewal.length < 3) await new Promise((r) => setTimeout(r, 50));
    off();
    expect(remainingAtRenewal.length).toBe(lease.keepAlives - before);
    for (const r of remainingAtRenewal) {
      expect(r).toBeGreaterThan(0);
      expect(r).toBeLessThanOrEqual(ttl);
    }
    const seen = remainingAtRenewal.length;
    const after = lease.keepAlives;
    while (lease.keepAlives === after) await new Promise((r) => setTimeout(r, 50));
    expect(remainingAtRenewal.length).toBe(seen);
    await lease.revoke();
  });
});

describe("failover", () => {
  it("watch survives a leader kill without missing or repeating events; writes stay exactly-once", async () => {
    const w = c.watch("fo/", { prefix: true });
    await w.ready();
    const seen: WatchEvent[] = [];
    const consumer = (async () => {
      for await (const ev of w) {
        seen.push(ev);
        if (ev.type === "put" && ev.key === "fo/done") return;
      }
    })();
    const leader = await cluster.waitForLeader(5000);
    expect(c.endpoint).toBe(cluster.member(leader).clientUrl); // the client prefers the leader, so the kill cuts its connection
    let reconnects = 0;
    const off = c.onReconnect(() => reconnects++);
    let acknowledged = 0;
    const writer = (async () => {
      for (let i = 0; i < 40; i++) {
        await c.put("fo/counter", String(i));
        acknowledged++;
        if (i === 10) void cluster.kill(leader);
      }
      await c.put("fo/done", "1");
    })();
    await writer;
    await Promise.race([
      consumer,
      new Promise((_, rej) => setTimeout(() => rej(new Error("watch went silent")), 15_000)),
    ]);
    const counterEvents = seen.filter((e) => e.key === "fo/counter");
    // Every acknowledged put, once each, in order.
    expect(counterEvents.map((e) => (e.type === "put" ? e.kv.text : "?"))).toEqual(
      Array.from({ length: 40 }, (_, i) => String(i)),
    );
    const revisions = seen.map((e) => e.revision);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
    expect(new Set(revisions).size).toBe(revisions.length);
    // Exactly once: each acknowledged put applied once (a duplicate would add a version).
    expect((await c.get("fo/counter"))?.version).toBe(acknowledged);
    expect(reconnects).toBeGreaterThanOrEqual(1);
    off();
    await cluster.restart(leader);
  });
});

describe("a frozen member", () => {
  it("a write to a member that stops answering (SIGSTOP) is retried elsewhere and applied once", async () => {
    const leader = await cluster.waitForLeader(10_000);
    const c2 = await connect(cluster.endpoints(), { timeoutMs: 12_000, attemptTimeoutMs: 1500 });
    try {
      expect(c2.endpoint).toBe(cluster.member(leader).clientUrl);
      await c2.put("frozen/k", "0");
      cluster.pause(leader);
      const t0 = performance.now();
      const r = await c2.put("frozen/k", "1");
      const took = performance.now() - t0;
      expect(r.revision).toBeGreaterThan(0);
      expect(took).toBeLessThan(12_000);
      expect(c2.endpoint).not.toBe(cluster.member(leader).clientUrl);
      const kv = await c2.get("frozen/k");
      expect(kv?.text).toBe("1");
      expect(kv?.version).toBe(2);
    } finally {
      cluster.resume(leader);
      await c2.close();
    }
  });
});

describe("lease loss while the cluster is unreachable", () => {
  it("lost fires within the TTL of the last successful keep-alive, not 2×TTL", async () => {
    const ttl = 1500;
    const lease = await c.grantLease(ttl);
    await new Promise((r) => setTimeout(r, 700)); // at least one keep-alive succeeded
    expect(lease.keepAlives).toBeGreaterThanOrEqual(1);
    const live = cluster.running();
    const frozenAt = performance.now();
    for (const m of live) cluster.pause(m);
    try {
      await new Promise<void>((r) => lease.lost.addEventListener("abort", () => r(), { once: true }));
      const after = performance.now() - frozenAt;
      // The last success was sent before the freeze, so the deadline is at most one TTL after it.
      expect(after).toBeLessThanOrEqual(ttl + 100);
      expect(after).toBeGreaterThan(ttl / 3);
    } finally {
      for (const m of live) cluster.resume(m);
    }
  });
});
