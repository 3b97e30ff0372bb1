import { describe, expect, it } from "vitest";
import {
  Counter,
  createConcordMetrics,
  escapeLabelValue,
  exponentialBuckets,
  formatValue,
  MetricsError,
  Registry,
} from "../../src/server/metrics.js";

/** A strict parser for the subset of exposition 0.0.4 the registry writes: every line must match. */
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
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== "NaN") throw new Error(`bad value in ${JSON.stringify(line)}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { help, type, samples };
}

describe("exposition format", () => {
  it("writes a small registry exactly", () => {
    const r = new Registry();
    const requests = r.counter("app_requests_total", "Requests by op.\nSecond line with a \\ backslash.", [
      "op",
      "code",
    ]);
    const temp = r.gauge("app_temperature", "Temperature.");
    const latency = r.histogram("app_latency_seconds", "Latency.", ["path"], [0.1, 0.5]);
    requests.labels("get", "OK").inc();
    requests.labels("get", "OK").inc(2);
    requests.labels('put "x"', "a\\b\nc").inc();
    temp.set(-1.5);
    latency.labels("/a").observe(0.1); // on a bound: counts in that bucket (le is inclusive)
    latency.labels("/a").observe(0.3);
    latency.labels("/a").observe(7);
    expect(r.expose()).toBe(
      [
        "# HELP app_requests_total Requests by op.\\nSecond line with a \\\\ backslash.",
        "# TYPE app_requests_total counter",
        'app_requests_total{op="get",code="OK"} 3',
        'app_requests_total{op="put \\"x\\"",code="a\\\\b\\nc"} 1',
        "# HELP app_temperature Temperature.",
        "# TYPE app_temperature gauge",
        "app_temperature -1.5",
        "# HELP app_latency_seconds Latency.",
        "# TYPE app_latency_seconds histogram",
        'app_latency_seconds_bucket{path="/a",le="0.1"} 1',
        'app_latency_seconds_bucket{path="/a",le="0.5"} 2',
        'app_latency_seconds_bucket{path="/a",le="+Inf"} 3',
        'app_latency_seconds_sum{path="/a"} 7.4',
        'app_latency_seconds_count{path="/a"} 3',
        "",
      ].join("\n"),
    );
  });

  it("round-trips through a parser: label values, help text and cumulative buckets", () => {
    const r = new Registry();
    const c = r.counter("x_total", "Help with \\ and\nnewline.", ["v"]);
    const weird = 'quote " backslash \\ newline \n unicode ✓ {braces}, comma';
    c.labels(weird).inc(5);
    const h = r.histogram("h_seconds", "H.", [], [1, 2, 4]);
    for (const v of [0.5, 1.5, 1.5, 3, 100]) h.observe(v);
    const parsed = parseExposition(r.expose());
    expect(parsed.help.get("x_total")).toBe("Help with \\ and\nnewline.");
    expect(parsed.samples[0]).toEqual({ name: "x_total", labels: { v: weird }, value: 5 });
    const buckets = parsed.samples.filter((s) => s.name === "h_seconds_bucket").map((s) => [s.labels.le, s.value]);
    expect(buckets).toEqual([
      ["1", 1],
      ["2", 3],
      ["4", 4],
      ["+Inf", 5],
    ]);
    expect(parsed.samples.find((s) => s.name === "h_seconds_count")!.value).toBe(5);
    expect(parsed.samples.find((s) => s.name === "h_seconds_sum")!.value).toBe(106.5);
    expect(parsed.type.get("h_seconds")).toBe("histogram");
  });

  it("shows unlabeled metrics at 0 before first use and labeled ones only once used", () => {
    const r = new Registry();
    r.counter("a_total", "A.");
    r.gauge("b", "B.", ["peer"]);
    r.histogram("c_seconds", "C.", [], [1]);
    expect(r.expose()).toBe(
      [
        "# HELP a_total A.",
        "# TYPE a_total counter",
        "a_total 0",
        "# HELP b B.",
        "# TYPE b gauge",
        "# HELP c_seconds C.",
        "# TYPE c_seconds histogram",
        'c_seconds_bucket{le="1"} 0',
        'c_seconds_bucket{le="+Inf"} 0',
        "c_seconds_sum 0",
        "c_seconds_count 0",
        "",
      ].join("\n"),
    );
  });

  it("formats special values and escapes label values", () => {
    expect([Infinity, -Infinity, NaN, 0.25, 1e21, -0].map(formatValue)).toEqual([
      "+Inf",
      "-Inf",
      "NaN",
      "0.25",
      "1e+21",
      "0",
    ]);
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(exponentialBuckets(0.00005, 2, 4)).toEqual([0.00005, 0.0001, 0.0002, 0.0004]);
  });
});

describe("children", () => {
  it("returns the same child for repeated label values (no per-call allocation of children)", () => {
    const c = new Counter("ops_total", "Ops.", ["op", "code"]);
    const child = c.labels("put", "OK");
    expect(c.labels("put", "OK")).toBe(child);
    expect(c.labels("put", "FENCED")).not.toBe(child);
    expect(c.labels("get", "OK")).not.toBe(child);
    const wide = new Counter("wide_total", "Four and five labels take the general path.", ["a", "b", "c", "d"]);
    const w = wide.labels("1", "2", "3", "4");
    expect(wide.labels("1", "2", "3", "4")).toBe(w);
    expect(wide.labels("1", "2", "3", "5")).not.toBe(w);
    expect(wide.labels("1", "2", "4", "4")).not.toBe(w);
    const three = new Counter("three_total", "Three.", ["a", "b", "c"]);
    expect(three.labels("x", "y", "z")).toBe(three.labels("x", "y", "z"));
    expect(three.labels("x", "y", "w")).not.toBe(three.labels("x", "y", "z"));
    // Values that would collide under naive joining stay distinct.
    expect(c.labels("a,b", "c")).not.toBe(c.labels("a", "b,c"));
  });

  it("removes a child and prunes it from the exposition", () => {
    const r = new Registry();
    const g = r.gauge("peer_up", "Up.", ["peer", "dir"]);
    g.labels("n2", "out").set(1);
    g.labels("n3", "out").set(1);
    expect(g.remove("n2", "out")).toBe(true);
    expect(g.remove("n2", "out")).toBe(false);
    expect(g.remove("n9", "out")).toBe(false);
    expect(r.expose()).not.toContain('peer="n2"');
    expect(r.expose()).toContain('peer_up{peer="n3",dir="out"} 1');
    g.labels("n2", "out").set(0); // re-created fresh after removal
    expect(r.expose()).toContain('peer_up{peer="n2",dir="out"} 0');
  });

  it("a counter follows a cumulative total kept elsewhere, counting a source that restarts from 0 as new", () => {
    const r = new Registry();
    const dropped = r.counter("dropped_total", "Dropped.", ["peer"]);
    const n2 = dropped.labels("n2");
    n2.follow(0);
    n2.follow(5);
    n2.follow(5);
    n2.follow(7);
    expect(n2.value).toBe(7);
    n2.follow(3); // the link was replaced: its count started again
    expect(n2.value).toBe(10);
    n2.follow(4);
    expect(n2.value).toBe(11);
    const bytes = r.counter("bytes_total", "Bytes.");
    bytes.follow(100);
    bytes.follow(250);
    expect(bytes.value).toBe(250);
    expect(() => n2.follow(-1)).toThrow(MetricsError);
    expect(() => n2.follow(Number.NaN)).toThrow(/expected a finite total >= 0, got NaN/);
  });

  it("lists its families in registration order", () => {
    const r = new Registry();
    r.counter("a_total", "A.", ["x"]);
    r.gauge("b", "B.");
    r.histogram("c_seconds", "C.");
    expect(r.families().map((f) => [f.name, f.type, f.labelNames])).toEqual([
      ["a_total", "counter", ["x"]],
      ["b", "gauge", []],
      ["c_seconds", "histogram", []],
    ]);
  });

  it("runs collectors before exposition", () => {
    const r = new Registry();
    const g = r.gauge("depth", "Depth.");
    let depth = 3;
    r.onCollect(() => g.set(depth));
    expect(r.expose()).toContain("depth 3");
    depth = 4;
    expect(r.expose()).toContain("depth 4");
  });
});

describe("misuse raises MetricsError with the reason", () => {
  const cases: [string, () => unknown, RegExp][] = [
    ["bad metric name", () => new Registry().gauge("1abc", "x"), /metric name '1abc': expected/],
    ["bad label name", () => new Registry().gauge("g", "x", ["a-b"]), /label name 'a-b'/],
    ["reserved label name", () => new Registry().gauge("g", "x", ["__x"]), /not starting with __/],
    ["duplicate label", () => new Registry().gauge("g", "x", ["a", "a"]), /'a' appears twice/],
    ["counter without _total", () => new Registry().counter("requests", "x"), /ending in _total/],
    ["le on a histogram", () => new Registry().histogram("h", "x", ["le"]), /'le' is reserved/],
    ["unsorted buckets", () => new Registry().histogram("h", "x", [], [1, 1]), /strictly increasing/],
    ["infinite bucket", () => new Registry().histogram("h", "x", [], [1, Infinity]), /finite/],
    ["no buckets", () => new Registry().histogram("h", "x", [], []), /at least one bucket/],
    [
      "wrong label count",
      () => new Registry().counter("c_total", "x", ["a", "b"]).labels("1"),
      /expected 2 label values \(a, b\), got 1/,
    ],
    [
      "unlabeled use of labeled metric",
      () => new Registry().counter("c_total", "x", ["a"]).inc(),
      /has labels \(a\); use \.labels/,
    ],
    [
      "negative counter increment",
      () => new Registry().counter("c_total", "x").inc(-1),
      /expected a finite number >= 0, got -1/,
    ],
    ["NaN counter increment", () => new Registry().counter("c_total", "x").inc(NaN), /got NaN/],
    ["NaN gauge", () => new Registry().gauge("g", "x").set(NaN), /NaN/],
    ["NaN observation", () => new Registry().histogram("h", "x").observe(NaN), /NaN/],
    [
      "non-string label value",
      () => new Registry().gauge("g", "x", ["a"]).labels(5 as unknown as string),
      /must be a string, got number/,
    ],
    [
      "duplicate registration",
      () => {
        const r = new Registry();
        r.gauge("g", "x");
        r.counter("g_total", "x");
        r.gauge("g", "y");
      },
      /clashes with the already registered gauge g/,
    ],
    [
      "histogram series clash",
      () => {
        const r = new Registry();
        r.histogram("h", "x");
        r.gauge("h_count", "y");
      },
      /clashes with the already registered histogram h/,
    ],
    ["bad exponential buckets", () => exponentialBuckets(0, 2, 3), /start > 0/],
  ];
  for (const [name, fn, message] of cases) {
    it(name, () => {
      expect(fn).toThrow(MetricsError);
      expect(fn).toThrow(message);
    });
  }
});

describe("Concord metrics", () => {
  it("declares the documented set, parses cleanly, and keeps exactly one role at 1", () => {
    const m = createConcordMetrics();
    m.raftTerm.set(7);
    m.setRole("leader");
    m.raftCommitIndex.set(42);
    m.raftAppliedIndex.set(41);
    m.proposals.inc();
    m.fsyncSeconds.observe(0.0003);
    m.peerRttSeconds.labels("n2").observe(0.0004);
    m.clientRequests.labels("put", "OK").inc();
    m.leases.set(2);
    m.locksHeld.set(1);
    m.lockWaiters.set(3);
    m.watchers.set(4);
    m.clientConnections.set(5);
    const parsed = parseExposition(m.registry.expose());
    const value = (name: string, labels: Record<string, string> = {}) =>
      parsed.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(value("concord_raft_term")).toBe(7);
    const roles = parsed.samples.filter((s) => s.name === "concord_raft_role");
    expect(roles.map((s) => [s.labels.role, s.value])).toEqual([
      ["follower", 0],
      ["pre-candidate", 0],
      ["candidate", 0],
      ["leader", 1],
    ]);
    expect(value("concord_raft_commit_index")).toBe(42);
    expect(value("concord_raft_applied_index")).toBe(41);
    expect(value("concord_proposals_total")).toBe(1);
    expect(value("concord_fsync_seconds_bucket", { le: "0.0004" })).toBe(1);
    expect(value("concord_fsync_seconds_bucket", { le: "0.0002" })).toBe(0);
    expect(value("concord_peer_rtt_seconds_count", { peer: "n2" })).toBe(1);
    expect(value("concord_client_requests_total", { op: "put", code: "OK" })).toBe(1);
    for (const [name, v] of [
      ["concord_leases", 2],
      ["concord_locks_held", 1],
      ["concord_lock_waiters", 3],
      ["concord_watchers", 4],
      ["concord_client_connections", 5],
    ] as const) {
      expect(value(name)).toBe(v);
      expect(parsed.help.get(name)!.length).toBeGreaterThan(5);
    }
    expect(value("concord_process_resident_memory_bytes")!).toBeGreaterThan(1024 * 1024);
    m.setRole("follower");
    const again = parseExposition(m.registry.expose()).samples.filter(
      (s) => s.name === "concord_raft_role" && s.value === 1,
    );
    expect(again.map((s) => s.labels.role)).toEqual(["follower"]);
  });
});
