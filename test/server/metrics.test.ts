// Concord's metric set on prom-client: the documented families with their labels, the series Concord keeps
// (roles, requests, peers, followed totals), collectors, and prom-client's default process metrics beside them.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CounterFollower, createConcordMetrics } from "../../src/server/metrics.js";

/** A strict parser for exposition format 0.0.4 as Concord's members serve it: every line must match. */
function parseExposition(text: string): {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
} {
  expect(text.endsWith("\n")).toBe(true);
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue; // prom-client separates families with an empty line (parsers ignore them)
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      help.set(m[1]!, m[2]!.replace(/\\n/g, "\n").replace(/\\\\/g, "\\"));
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
    if (m) {
      type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2] !== undefined) {
      const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(,|$)/y;
      let pos = 0;
      while (pos < m[2].length) {
        labelRe.lastIndex = pos;
        const l = labelRe.exec(m[2]);
        if (!l) throw new Error(`bad labels in ${JSON.stringify(line)}`);
        labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_s, c: string) => (c === "n" ? "\n" : c));
        pos = labelRe.lastIndex;
      }
    }
    const raw = m[3]!;
    // As Prometheus parses values (Go's ParseFloat): NaN in any case (prom-client writes an idle event loop's mean as Nan).
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`bad value in ${JSON.stringify(line)}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { help, type, samples };
}

type Parsed = ReturnType<typeof parseExposition>;

const value = (parsed: Parsed, name: string, labels: Record<string, string> = {}) =>
  parsed.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

/** The metric names and label names in docs/operations.md's monitoring table. */
function documentedFamilies(): Map<string, string[]> {
  const doc = readFileSync(new URL("../../docs/operations.md", import.meta.url), "utf8");
  const families = new Map<string, string[]>();
  for (const row of doc.split("\n").filter((l) => l.startsWith("| `concord_"))) {
    const cell = row.split("|")[1]!;
    for (const m of cell.matchAll(/`(concord_[a-z_]+)(?:\{([a-z_,]+)\})?`/g)) families.set(m[1]!, m[2]?.split(",") ?? []);
  }
  return families;
}

describe("Concord metrics", () => {
  it("declares exactly the concord_* families and labels docs/operations.md documents", () => {
    const m = createConcordMetrics();
    const declared = new Map(
      m.registry
        .getMetricsAsArray()
        .filter((f) => f.name.startsWith("concord_"))
        .map((f) => [f.name, [...(f as unknown as { labelNames: string[] }).labelNames]]),
    );
    const documented = documentedFamilies();
    expect(documented.size).toBeGreaterThan(30);
    expect(new Map([...declared].sort())).toEqual(new Map([...documented].sort()));
  });

  it("parses cleanly and keeps exactly one role at 1", async () => {
    const m = createConcordMetrics();
    m.raftTerm.set(7);
    m.setRole("leader");
    m.raftCommitIndex.set(42);
    m.raftAppliedIndex.set(41);
    m.proposals.inc();
    m.fsyncSeconds.observe(0.0003);
    m.peer("n2").rtt.observe(0.0004);
    m.requestAnswered("put", "OK", 0.001);
    m.leases.set(2);
    m.locksHeld.set(1);
    m.lockWaiters.set(3);
    m.watchers.set(4);
    m.clientConnections.set(5);
    const parsed = parseExposition(await m.expose());
    expect(value(parsed, "concord_raft_term")).toBe(7);
    const roles = parsed.samples.filter((s) => s.name === "concord_raft_role");
    expect(roles.map((s) => [s.labels.role, s.value])).toEqual([
      ["follower", 0],
      ["pre-candidate", 0],
      ["candidate", 0],
      ["leader", 1],
    ]);
    expect(value(parsed, "concord_raft_commit_index")).toBe(42);
    expect(value(parsed, "concord_raft_applied_index")).toBe(41);
    expect(value(parsed, "concord_proposals_total")).toBe(1);
    // Bucket bounds read cleanly (rounded), and le is inclusive.
    expect(value(parsed, "concord_fsync_seconds_bucket", { le: "0.0004" })).toBe(1);
    expect(value(parsed, "concord_fsync_seconds_bucket", { le: "0.0002" })).toBe(0);
    expect(parsed.samples.filter((s) => s.name.endsWith("_bucket")).every((s) => s.labels.le!.length <= 8)).toBe(true);
    expect(value(parsed, "concord_peer_rtt_seconds_count", { peer: "n2" })).toBe(1);
    expect(value(parsed, "concord_peer_rtt_seconds_bucket", { peer: "n2", le: "0.0004" })).toBe(1);
    expect(value(parsed, "concord_client_requests_total", { op: "put", code: "OK" })).toBe(1);
    for (const [name, v] of [
      ["concord_leases", 2],
      ["concord_locks_held", 1],
      ["concord_lock_waiters", 3],
      ["concord_watchers", 4],
      ["concord_client_connections", 5],
    ] as const) {
      expect(value(parsed, name)).toBe(v);
      expect(parsed.help.get(name)!.length).toBeGreaterThan(5);
    }
    expect(value(parsed, "concord_process_resident_memory_bytes")!).toBeGreaterThan(1024 * 1024);
    expect(value(parsed, "concord_process_heap_used_bytes")!).toBeGreaterThan(0);
    m.setRole("follower");
    const again = parseExposition(await m.expose()).samples.filter((s) => s.name === "concord_raft_role" && s.value === 1);
    expect(again.map((s) => s.labels.role)).toEqual(["follower"]);
  });

  it("counts answered requests by op and code, and their latency by op", async () => {
    const m = createConcordMetrics();
    for (let i = 0; i < 3; i++) m.requestAnswered("put", "OK", 0.0002);
    m.requestAnswered("put", "FENCED", 0.5);
    m.requestAnswered("get", "OK", 0.0001);
    const parsed = parseExposition(await m.expose());
    expect(value(parsed, "concord_client_requests_total", { op: "put", code: "OK" })).toBe(3);
    expect(value(parsed, "concord_client_requests_total", { op: "put", code: "FENCED" })).toBe(1);
    expect(value(parsed, "concord_client_requests_total", { op: "get", code: "OK" })).toBe(1);
    expect(value(parsed, "concord_client_request_seconds_count", { op: "put" })).toBe(4);
    expect(value(parsed, "concord_client_request_seconds_bucket", { op: "put", le: "0.0002" })).toBe(3);
    expect(value(parsed, "concord_client_request_seconds_sum", { op: "get" })).toBeCloseTo(0.0001, 10);
  });

  it("keeps one set of series per peer and drops them when the peer leaves", async () => {
    const m = createConcordMetrics();
    m.peer("n2").connected.set(1);
    m.peer("n2").dropped.follow(4);
    m.peer("n3").connected.set(1);
    m.peer("n3").rtt.observe(0.001);
    expect(m.peer("n2")).toBe(m.peer("n2"));
    expect([...m.peers()]).toEqual(["n2", "n3"]);
    m.removePeer("n3");
    m.removePeer("n9"); // never had series: nothing to do
    expect([...m.peers()]).toEqual(["n2"]);
    let parsed = parseExposition(await m.expose());
    expect(parsed.samples.some((s) => s.labels.peer === "n3")).toBe(false);
    expect(value(parsed, "concord_peer_connected", { peer: "n2" })).toBe(1);
    expect(value(parsed, "concord_peer_dropped_messages_total", { peer: "n2" })).toBe(4);
    // Back in the configuration: fresh series, its follower starting from 0 again.
    m.peer("n3").dropped.follow(2);
    parsed = parseExposition(await m.expose());
    expect(value(parsed, "concord_peer_dropped_messages_total", { peer: "n3" })).toBe(2);
    expect(value(parsed, "concord_peer_rtt_seconds_count", { peer: "n3" })).toBeUndefined();
  });

  it("runs collectors before every exposition", async () => {
    const m = createConcordMetrics();
    let depth = 3;
    m.onCollect(() => m.proposalsPending.set(depth));
    expect(value(parseExposition(await m.expose()), "concord_proposals_pending")).toBe(3);
    depth = 4;
    expect(value(parseExposition(await m.expose()), "concord_proposals_pending")).toBe(4);
  });

  it("gives each member its own registry", async () => {
    const a = createConcordMetrics();
    const b = createConcordMetrics();
    a.raftTerm.set(5);
    expect(value(parseExposition(await b.expose()), "concord_raft_term")).toBe(0);
    expect(value(parseExposition(await a.expose()), "concord_raft_term")).toBe(5);
  });

  it("serves prom-client's default process and Node.js metrics after Concord's", async () => {
    const text = await createConcordMetrics().expose();
    const parsed = parseExposition(text);
    expect(value(parsed, "process_resident_memory_bytes")!).toBeGreaterThan(1024 * 1024);
    expect(value(parsed, "process_cpu_seconds_total")!).toBeGreaterThan(0);
    expect(value(parsed, "nodejs_heap_size_used_bytes")!).toBeGreaterThan(0);
    expect(value(parsed, "nodejs_version_info", { version: process.version })).toBe(1);
    expect(parsed.type.get("nodejs_eventloop_lag_seconds")).toBe("gauge");
    expect(text.indexOf("# TYPE concord_")).toBeLessThan(text.indexOf("# TYPE process_"));
  });
});

describe("CounterFollower", () => {
  it("follows a cumulative total kept elsewhere, counting a source that restarts from 0 as new", () => {
    let counted = 0;
    const follower = new CounterFollower({ inc: (by) => (counted += by) });
    for (const total of [0, 5, 5, 7]) follower.follow(total);
    expect(counted).toBe(7);
    follower.follow(3); // the link was replaced: its count started again
    expect(counted).toBe(10);
    follower.follow(4);
    expect(counted).toBe(11);
    expect(() => follower.follow(-1)).toThrow(/expected a finite total >= 0, got -1/);
    expect(() => follower.follow(Number.NaN)).toThrow(/expected a finite total >= 0, got NaN/);
    expect(() => follower.follow(Infinity)).toThrow(/got Infinity/);
    expect(counted).toBe(11);
  });

  it("feeds concord_wal_written_bytes_total", async () => {
    const m = createConcordMetrics();
    m.walBytes.follow(100);
    m.walBytes.follow(250);
    expect(value(parseExposition(await m.expose()), "concord_wal_written_bytes_total")).toBe(250);
  });
});
