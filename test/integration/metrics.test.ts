// Every metric a member declares is fed (real member processes, ports 9850-9871). A workload exercises what the
// metrics describe — writes and snapshots (--snapshot-entries 50), a watch, a lease, a held lock with a waiter,
// an election candidate, refused connections (--max-connections), a proposal a new leader's entry replaces, a
// killed leader, a full store (--quota-bytes 1MiB) — while /metrics is scraped on every member. The families are read from the registry itself, so
// a concord_* metric declared later without being fed fails here: each must show a non-zero sample (a histogram,
// a non-zero count) on some member at some scrape. prom-client's default process_* and nodejs_* families are
// not Concord's to feed (some, like active handles by type, are legitimately empty): members must expose them,
// and the process's own figures must be plausible.

import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../src/index.js";
import { LocalCluster, retrying, waitUntil } from "../../src/harness/index.js";
import { createConcordMetrics } from "../../src/server/metrics.js";
import { RequestError, type ClientSocket } from "../../src/transport/client-socket.js";

const MAX_CONNECTIONS = 5;

interface Sample {
  name: string;
  labels: string;
  value: number;
}

/** The samples and declared families (TYPE lines) of a /metrics body. */
function parse(body: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of body.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (sample) samples.push({ name: sample[1]!, labels: sample[2] ?? "", value: Number(sample[3]) });
  }
  return { types, samples };
}

describe.sequential("metrics on real members", () => {
  let cluster: LocalCluster;
  /** Families seen with a non-zero sample, and where first. */
  const fed = new Map<string, string>();
  const exposed = new Set<string>();

  async function scrape(name: string, step: string): Promise<Sample[]> {
    const r = await cluster.httpGet(name, "/metrics");
    expect(r.status).toBe(200);
    const { types, samples } = parse(r.body);
    for (const [family, type] of types) {
      exposed.add(family);
      const sampleName = type === "histogram" ? `${family}_count` : family;
      if (!fed.has(family) && samples.some((s) => s.name === sampleName && s.value !== 0)) fed.set(family, `${name} after ${step}`);
    }
    return samples;
  }

  const scrapeAll = (step: string) => Promise.all(cluster.reachable().map((n) => scrape(n, step)));

  const value = (samples: Sample[], name: string, labels = ""): number =>
    samples.filter((s) => s.name === name && s.labels.includes(labels)).reduce((sum, s) => sum + s.value, 0);

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      size: 3,
      basePort: 9850,
      tickMs: 50,
      snapshotEntries: 50,
      logLevel: "warn",
      // No log entry held in memory past its apply: sends to a follower and applies read the WAL back.
      extraArgs: ["--max-connections", String(MAX_CONNECTIONS), "--quota-bytes", "1MiB", "--memory-log-bytes", "0"],
    });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it("writes, snapshots, a watch, a lease, a lock with a waiter and an election candidate", async () => {
    const c = await connect(cluster.endpoints(), { timeoutMs: 8000 });
    try {
      // Few keys, many writes: the log outgrows the snapshot, so every member snapshots several times.
      for (let i = 0; i < 200; i++) await c.put(`m/k${i % 10}`, `v${i}`);
      const watch = c.watch("m/", { prefix: true });
      await watch.ready();
      const lease = await c.grantLease(30_000);
      const held = await c.lock("m/lock");
      const waiting = c.lock("m/lock");
      const candidate = await c.election("m/election").campaign("me");
      await waitUntil("a lock waiter applied everywhere", 10_000, async () => {
        const all = await scrapeAll("coordination");
        return all.every((s) => value(s, "concord_lock_waiters") > 0) ? true : undefined;
      });
      const snapshots = await scrapeAll("writes");
      for (const s of snapshots) expect(value(s, "concord_snapshots_total")).toBeGreaterThan(0);
      await candidate.resign();
      await held.release();
      await (await waiting).release();
      await lease.revoke();
      await watch.close();
    } finally {
      await c.close();
    }
  });

  it("refused connections: over --max-connections, and a hello with a forged forwarding proof", async () => {
    const leader = await cluster.waitForLeader();
    const member = cluster.running().find((n) => n !== leader)!;
    const open: ClientSocket[] = [];
    let refusal: unknown;
    try {
      for (let i = 0; i < MAX_CONNECTIONS + 3 && refusal === undefined; i++) {
        await cluster.connect(member).then(
          (sock) => open.push(sock),
          (e: unknown) => (refusal = e),
        );
      }
    } finally {
      for (const sock of open) sock.close();
    }
    expect(refusal).toBeInstanceOf(RequestError);
    expect((refusal as RequestError).code).toBe("TOO_MANY_CONNECTIONS");
    await waitUntil(`${member} to see the connections closed`, 10_000, async () =>
      value(await scrape(member, "connections closed"), "concord_client_connections") === 0 ? true : undefined,
    );
    const forged = createHmac("sha256", "guess").update("concord-forward:guess").digest("hex");
    await expect(cluster.connect(member, { hello: { forwardedBy: forged } })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    const samples = await scrape(member, "refusals");
    expect(value(samples, "concord_client_connections_refused_total", 'reason="limit"')).toBeGreaterThanOrEqual(1);
    expect(value(samples, "concord_client_connections_refused_total", 'reason="auth"')).toBeGreaterThanOrEqual(1);
  });

  it("a pending proposal, then lost: its leader is cut off, a new leader's entry replaces it", async () => {
    const old = await cluster.waitForLeader();
    const followers = cluster.running().filter((n) => n !== old);
    const sock = await cluster.connect(old);
    try {
      // Killed, not paused: a paused member would still read what the leader sent into its socket meanwhile.
      await Promise.all(followers.map((f) => cluster.kill(f)));
      const lost = sock.request("put", { key: "m/lost", value: "never" }, 30_000).then(
        () => undefined,
        (e: unknown) => e,
      );
      await waitUntil(`${old} to hold a pending proposal`, 10_000, async () =>
        value(await scrape(old, "a proposal without a quorum"), "concord_proposals_pending") > 0 ? true : undefined,
      );
      // Without a quorum the leader steps down (check quorum); freeze it and let the others elect a new leader.
      await waitUntil(`${old} to step down`, 10_000, async () => ((await cluster.status(old)).role !== "leader" ? true : undefined));
      cluster.pause(old);
      for (const f of followers) await cluster.restart(f);
      const leader = await cluster.waitForLeader(30_000);
      expect(leader).not.toBe(old);
      const c = await cluster.connect(leader);
      try {
        await retrying(() => c.request("put", { key: "m/after", value: "new leader" }, 5000));
      } finally {
        c.close();
      }
      cluster.resume(old);
      await cluster.waitForApplied(old, (await cluster.status(leader)).commit, 30_000);
      // The client hears the loss (or, when it came after the request's deadline, a timeout).
      const answer = await lost;
      expect(answer).toBeInstanceOf(RequestError);
      const code = (answer as RequestError).code;
      expect(["PROPOSAL_LOST", "TIMEOUT"]).toContain(code);
      // A proposal that timed out no longer waits, so its loss is not counted again: one failure, for its answer.
      const samples = await scrape(old, "a lost proposal");
      expect(value(samples, "concord_proposals_failed_total", `reason="${code.toLowerCase()}"`)).toBe(1);
      expect(value(samples, "concord_proposals_pending")).toBe(0);
    } finally {
      sock.close();
      for (const n of cluster.paused()) cluster.resume(n);
    }
  });

  it("a killed leader: an election, messages dropped to the dead member, which then catches up", async () => {
    const old = await cluster.waitForLeader();
    await cluster.kill(old);
    const leader = await cluster.waitForLeader(20_000);
    const c = await cluster.connect(leader);
    try {
      for (let i = 0; i < 60; i++) await retrying(() => c.request("put", { key: `m/k${i % 10}`, value: `after ${i}` }, 5000));
    } finally {
      c.close();
    }
    await waitUntil(`${leader} to count messages dropped to ${old}`, 10_000, async () => {
      const s = await scrape(leader, "the leader killed");
      return value(s, "concord_peer_dropped_messages_total", `peer="${old}"`) > 0 ? s : undefined;
    }).then((s) => {
      expect(value(s, "concord_peer_connected", `peer="${old}"`)).toBe(0);
      expect(value(s, "concord_raft_leader_changes_total")).toBeGreaterThan(0);
    });
    await cluster.restart(old);
    await cluster.waitForApplied(old, (await cluster.status(leader)).commit, 30_000);
    await waitUntil(`${leader} to see ${old} connected again`, 10_000, async () =>
      value(await scrape(leader, "the old leader back"), "concord_peer_connected", `peer="${old}"`) === 1 ? true : undefined,
    );
    await scrapeAll("the old leader back");
  });

  it("a full store: the NO_SPACE alarm on every member, and the state's size against the quota", async () => {
    const c = await connect(cluster.endpoints(), { timeoutMs: 8000 });
    try {
      await waitUntil("the 1 MiB quota in force on every member", 10_000, async () => {
        const all = await scrapeAll("the quota set");
        return all.every((s) => value(s, "concord_quota_bytes") === 1 << 20) ? true : undefined;
      });
      let full = false;
      for (let i = 0; i < 8 && !full; i++) {
        await c.put(`m/big/${i}`, new Uint8Array(300_000)).catch((e: { code?: string }) => {
          if (e.code !== "NO_SPACE") throw e;
          full = true;
        });
      }
      expect(full).toBe(true);
      await waitUntil("the alarm on every member", 10_000, async () => {
        const all = await scrapeAll("the store full");
        return all.every((s) => value(s, "concord_alarm", 'alarm="NO_SPACE"') === 1) ? all : undefined;
      }).then((all) => {
        for (const s of all) expect(value(s, "concord_state_bytes")).toBeGreaterThanOrEqual(1 << 20);
      });
      // Free the space (the deleted values stay in the watch history until compacted), then disarm.
      const { revision } = await c.delete("m/big/", { prefix: true });
      await c.compact(revision);
      await c.disarmAlarms();
      await waitUntil("the alarm cleared on every member", 10_000, async () => {
        const all = await scrapeAll("the alarm disarmed");
        return all.every((s) => value(s, "concord_alarm", 'alarm="NO_SPACE"') === 0) ? true : undefined;
      });
    } finally {
      await c.close();
    }
  });

  it("every declared concord_* family has been fed; the default process metrics are served", async () => {
    const declared = createConcordMetrics()
      .registry.getMetricsAsArray()
      .map((f) => f.name);
    expect([...exposed].sort()).toEqual([...declared].sort()); // members expose exactly the registry's families
    const concord = declared.filter((f) => f.startsWith("concord_"));
    expect(concord.length).toBeGreaterThan(30);
    const unfed = concord.filter((f) => !fed.has(f));
    expect(unfed, `families never seen non-zero on any member: ${unfed.join(", ")}`).toEqual([]);
    const defaults = declared.filter((f) => !f.startsWith("concord_"));
    expect(defaults.every((f) => f.startsWith("process_") || f.startsWith("nodejs_"))).toBe(true);
    const samples = await scrape(cluster.running()[0]!, "the end");
    expect(value(samples, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(value(samples, "process_resident_memory_bytes")).toBeGreaterThan(1 << 20);
    expect(value(samples, "process_open_fds")).toBeGreaterThan(0);
    expect(value(samples, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
    expect(value(samples, "nodejs_version_info", `version="${process.version}"`)).toBe(1);
  });
});
