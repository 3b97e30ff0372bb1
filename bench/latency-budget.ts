// npm run bench:latency — where one write's time goes at concurrency 1, by elimination in one run: the physical
// floor (a 4 KiB O_DSYNC write on the data disk, a WebSocket round trip on loopback), then Concord's steps
// measured from the outside, each adding one thing to the previous:
//   request round trip   1 member, serializable get: client library + gateway + op table, no Raft, no disk
//   + one durable write  1 member, put: the ready loop, one WAL write and fdatasync, apply, answer
//   + replication        3 members, put: the follower's write and fsync and a peer round trip (in parallel with
//                        the leader's own fsync)
// and each member's CPU time per put (from /proc), which says how much of the wait is work and how much is idle.
// Last, two stage traces: one member run in this process (the real classes' methods wrapped to take a timestamp
// as each put passes; nothing in src/ changed for it), and three members, each with bench/member-trace.mjs
// preloaded (the same wrapping, in each member's process): medians of each stage's time from the request's arrival.
// Prints a Markdown table; docs/benchmarks.md keeps the budget read from it.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { pack } from "msgpackr";
import { WebSocket } from "ws";
import pino from "pino";
import { LocalCluster, REPO_ROOT as root, distCommand } from "../src/harness/index.js";
import { Replica } from "../src/host/replica.js";
import { connect } from "../src/index.js";
import { loadConfig } from "../src/server/config.js";
import { startServer } from "../src/server/server.js";
import { StateMachine } from "../src/statemachine/state-machine.js";
import { WalWriter } from "../src/storage/wal.js";
import { Latencies, percentile } from "../cli/latencies.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    samples: { type: "string", default: "2000" },
  },
});
const seconds = Number(values.seconds);
const samples = Number(values.samples);
const CONCORD = path.join(root, "dist/cli/concord.js");
const BASE = 7700;
const log = (s: string) => process.stderr.write(s + "\n");

/**
 * p50 of `n` sequential 4 KiB writes with O_DSYNC in `dir`, in ms: appending (each write extends the file, as
 * `dd oflag=dsync bs=4k` does) or over blocks written with zeros and synced first (what a preallocated WAL
 * segment is, see src/storage/wal.ts).
 */
function dsyncWriteP50(dir: string, n: number, over: "append" | "zeros"): number {
  const file = path.join(dir, "dsync-probe");
  const block = Buffer.alloc(4096, 1);
  if (over === "zeros") {
    fs.writeFileSync(file, Buffer.alloc(n * block.length));
    const fd = fs.openSync(file, "r+");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_DSYNC | (over === "append" ? fs.constants.O_TRUNC : 0));
  const lat = new Latencies();
  try {
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      fs.writeSync(fd, block, 0, block.length, i * block.length);
      lat.add(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return percentile(lat.sorted(), 50);
}

/**
 * p50 of `n` 4 KiB writes over synced zeros done as the WAL does them: inline (writeSync, then fdatasyncSync: a
 * batch of up to 1 MiB) or through libuv's threadpool (fs.write, then fs.fdatasync: a larger one).
 */
async function walWriteSyncP50(dir: string, n: number, how: "inline" | "threadpool"): Promise<number> {
  const file = path.join(dir, "wal-write-probe");
  const block = Buffer.alloc(4096, 1);
  fs.writeFileSync(file, Buffer.alloc(n * block.length));
  const fd = fs.openSync(file, "r+");
  fs.fsyncSync(fd);
  const lat = new Latencies();
  try {
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      if (how === "inline") {
        fs.writeSync(fd, block, 0, block.length, i * block.length);
        fs.fdatasyncSync(fd);
      } else {
        await new Promise<void>((resolve, reject) =>
          fs.write(fd, block, 0, block.length, i * block.length, (err) => (err ? reject(err) : fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())))),
        );
      }
      lat.add(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return percentile(lat.sorted(), 50);
}

/** p50 of `n` WebSocket round trips on loopback with a put-sized msgpack frame, echoed by a ws server in another process. */
async function webSocketRoundTripP50(n: number): Promise<number> {
  // The echo server runs in a child process, as a member does: a round trip in one process would share its
  // event loop with the client and measure less than two processes pay.
  const server = await execEcho();
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}`);
    await new Promise<void>((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    const frame = pack({ id: 1, op: "put", key: "bench/k1234", value: Buffer.alloc(256, "v") });
    const lat = new Latencies();
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      await new Promise<void>((resolve) => {
        ws.once("message", () => resolve());
        ws.send(frame);
      });
      lat.add(Number(process.hrtime.bigint() - t) / 1e6);
    }
    ws.close();
    return percentile(lat.sorted(), 50);
  } finally {
    server.stop();
  }
}

/** A ws echo server in a child process (node -e resolves ws from the repository's node_modules). */
async function execEcho(): Promise<{ port: number; stop(): void }> {
  const port = BASE + 90;
  const src = `const { WebSocketServer } = require("ws");
const wss = new WebSocketServer({ port: ${port}, host: "127.0.0.1" });
wss.on("connection", (ws) => ws.on("message", (d) => ws.send(d)));
wss.on("listening", () => process.stdout.write("ready\\n"));`;
  const child = spawn(process.execPath, ["-e", src], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`the echo server exited (${code})`)));
  });
  return { port, stop: () => child.kill() };
}

interface BenchRow {
  ops_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

function concordBench(workload: string, endpoints: string[]): BenchRow {
  const out = execFileSync(process.execPath, [CONCORD, "bench", workload, "--concurrency", "1", "--seconds", String(seconds), "--endpoints", endpoints.join(",")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    timeout: (seconds + 60) * 1000,
  });
  return JSON.parse(out.trim().split("\n").filter((l) => l.startsWith("{")).pop()!) as BenchRow;
}

/** User + system CPU time of a process so far, in ms. */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

async function withCluster<T>(
  size: number,
  fn: (endpoints: string[], pids: Map<string, number>, leader: string) => Promise<T>,
  env?: Record<string, string>,
): Promise<T> {
  const cluster = await LocalCluster.start(
    { size, basePort: BASE, command: distCommand(root), logLevel: "warn", root: fs.mkdtempSync(path.join(os.tmpdir(), "concord-latency-")), env: () => env ?? {} },
    60_000,
  );
  try {
    const leader = await cluster.waitForLeader(20_000);
    return await fn(cluster.endpoints(), new Map(cluster.running().map((n) => [n, cluster.pid(n)!])), leader);
  } finally {
    await cluster.teardown();
  }
}

/** Wraps `obj[method]` to call `mark(label)` on entry (and `mark(label + " done")` when its promise settles). */
function wrap(obj: object, method: string, mark: (label: string) => void, label = method, settles = false): void {
  const target = obj as Record<string, (...args: unknown[]) => unknown>;
  const original = target[method];
  target[method] = function (this: unknown, ...args: unknown[]) {
    mark(label);
    const r = original.apply(this, args);
    if (settles) (r as Promise<unknown>).then(() => mark(`${label} done`), () => undefined);
    return r;
  };
}

/**
 * One member in this process, a client in this process too (so the client's half of the round trip is in the
 * trace), `n` puts one at a time: the median time from the client's send to each stage of a put.
 */
async function stageTrace(n: number): Promise<[string, number][]> {
  const marks: [string, bigint][] = [];
  const mark = (label: string) => marks.push([label, process.hrtime.bigint()]);
  const replica = Replica.prototype as unknown as object;
  wrap(replica, "propose", mark, "proposed (request decoded, checked)");
  wrap(replica, "startReady", mark, "Ready taken");
  wrap(WalWriter.prototype, "writeAndSync", mark, "WAL write issued", true);
  wrap(fs, "fdatasyncSync", mark, "fdatasync issued (the write done)");
  wrap(StateMachine.prototype, "apply", mark, "applying");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-trace-"));
  const port = BASE + 80;
  const config = loadConfig(["--name", "n1", "--data-dir", dir, "--client-url", `ws://127.0.0.1:${port}`, "--peer-url", `ws://127.0.0.1:${port + 1}`], {});
  const server = await startServer(config, { logger: pino({ level: "warn" }) });
  try {
    const client = await connect([`ws://127.0.0.1:${port}`]);
    const value = Buffer.alloc(256, "v");
    for (let i = 0; i < 200; i++) await client.put(`k${i % 100}`, value); // warm up
    const gaps = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      marks.length = 0;
      mark("client sends");
      await client.put(`k${i % 100}`, value);
      mark("client has the answer");
      const t0 = marks[0][1];
      const seen = new Set<string>();
      for (const [label, t] of marks) {
        // Only the first time a stage is passed: a put's Ready is taken twice (to write it, then to apply it).
        if (seen.has(label)) continue;
        seen.add(label);
        gaps.set(label, [...(gaps.get(label) ?? []), Number(t - t0) / 1e6]);
      }
    }
    await client.close();
    return [...gaps].map(([label, ms]) => [label, percentile(Float64Array.from(ms).sort(), 50)] as [string, number]).sort((a, b) => a[1] - b[1]);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Three members with bench/member-trace.mjs preloaded, put c=1 (a warm-up run, then the traced one): for each put
 * (from one request's arrival at the leader to the next), every member's stages in time order; per stage (member,
 * what, and which time in the put it is passed), the median ms from the request's arrival and the share of puts
 * that pass it. Members: L the leader, F1 and F2 the followers.
 */
async function replicationTrace(): Promise<{ rows: [string, number, number][]; puts: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-trace-"));
  const env = {
    NODE_OPTIONS: `--import ${pathToFileURL(path.join(root, "bench/member-trace.mjs")).href}`,
    CONCORD_TRACE_ROOT: root,
    CONCORD_TRACE_DIR: dir,
  };
  let from = 0n;
  await withCluster(
    3,
    async (endpoints, pids) => {
      concordBench("put", endpoints); // warm-up
      from = process.hrtime.bigint();
      concordBench("put", endpoints);
      // A member writes its trace as it exits: stopped gracefully here (the cluster's teardown kills).
      for (const pid of pids.values()) process.kill(pid, "SIGTERM");
      for (let waited = 0; fs.readdirSync(dir).length < pids.size && waited < 15_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    },
    env,
  );
  try {
    const members = fs.readdirSync(dir).map((f) =>
      fs
        .readFileSync(path.join(dir, f), "utf8")
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => {
          const at = l.indexOf(" ");
          return { t: BigInt(l.slice(0, at)), stage: l.slice(at + 1) };
        })
        .filter((e) => e.t >= from),
    );
    const proposals = (m: { stage: string }[]) => m.filter((e) => e.stage === "proposed").length;
    members.sort((a, b) => proposals(b) - proposals(a));
    if (members.length !== 3 || proposals(members[0]) < 100) throw new Error(`trace: ${members.length} members traced, the leader with ${proposals(members[0] ?? [])} proposals`);
    const events = members.flatMap((m, i) => m.map((e) => ({ ...e, who: i === 0 ? "L" : `F${i}` }))).sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    const starts = members[0].filter((e) => e.stage === "client request in").map((e) => e.t);
    const offsets = new Map<string, number[]>();
    let j = 0;
    const puts = starts.length - 1;
    for (let w = 0; w < puts; w++) {
      const [a, b] = [starts[w], starts[w + 1]];
      while (j < events.length && events[j].t < a) j++;
      const seen = new Map<string, number>();
      for (let k = j; k < events.length && events[k].t < b; k++) {
        const e = events[k];
        const what = `${e.who} ${e.stage}`;
        const nth = (seen.get(what) ?? 0) + 1;
        seen.set(what, nth);
        const key = nth === 1 ? what : `${what} (#${nth})`;
        const list = offsets.get(key) ?? [];
        list.push(Number(e.t - a) / 1e6);
        offsets.set(key, list);
      }
    }
    const rows = [...offsets]
      .filter(([, ms]) => ms.length >= puts / 2)
      .map(([stage, ms]) => [stage, percentile(Float64Array.from(ms).sort(), 50), ms.length / puts] as [string, number, number])
      .sort((x, y) => x[1] - y[1]);
    return { rows, puts };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(CONCORD)) throw new Error(`${CONCORD} is missing: run npm run build first`);
  log(`physical floor: 2 × ${samples} O_DSYNC writes, 2 × ${samples} write + fdatasync, ${samples} WebSocket round trips`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-floor-"));
  const dsyncAppend = dsyncWriteP50(dir, samples, "append");
  const dsync = dsyncWriteP50(dir, samples, "zeros");
  const inline = await walWriteSyncP50(dir, samples, "inline");
  const threadpool = await walWriteSyncP50(dir, samples, "threadpool");
  fs.rmSync(dir, { recursive: true, force: true });
  const wsRtt = await webSocketRoundTripP50(samples);

  log("1 member: get-serializable c=1, put c=1");
  const one = await withCluster(1, async (endpoints) => ({ read: concordBench("get-serializable", endpoints), put: concordBench("put", endpoints) }));
  log("3 members: put c=1 (with each member's CPU time), get c=1");
  const three = await withCluster(3, async (endpoints, pids, leader) => {
    concordBench("put", endpoints); // warm the JIT and the links: the measured run starts on hot code
    const before = new Map([...pids].map(([name, pid]) => [name, cpuMs(pid)]));
    const put = concordBench("put", endpoints);
    const cpuPerPut = [...pids].map(([name, pid]) => `${name}${name === leader ? " (leader)" : ""} ${((cpuMs(pid) - before.get(name)!) / (put.ops_per_s * seconds)).toFixed(3)} ms`);
    return { put, get: concordBench("get", endpoints), cpuPerPut };
  });

  const floor = dsync + wsRtt;
  const f = (x: number) => x.toFixed(2);
  const rows: [string, number, string][] = [
    ["4 KiB O_DSYNC write, appending (p50)", dsyncAppend, "each write also extends the file (`dd oflag=dsync`)"],
    ["4 KiB O_DSYNC write over synced zeros (p50)", dsync, "the disk's floor for one durable write"],
    ["4 KiB write + fdatasync over zeros, inline (p50)", inline, `the WAL's way for a batch ≤ 1 MiB: ${f(inline - dsync)} ms over the floor`],
    ["4 KiB write + fdatasync over zeros, through the threadpool (p50)", threadpool, `the WAL's way for a larger batch: ${f(threadpool - dsync)} ms over the floor`],
    ["WebSocket round trip, 2 processes (p50)", wsRtt, "the network's floor for one request"],
    ["**physical floor** (O_DSYNC write + round trip)", floor, "the issue's floor"],
    ["1 member, get-serializable c=1 (p50)", one.read.p50_ms, `request round trip through Concord: ${f(one.read.p50_ms - wsRtt)} ms over the bare round trip`],
    ["1 member, put c=1 (p50)", one.put.p50_ms, `+ ready loop, WAL write and fsync, apply: ${f(one.put.p50_ms - one.read.p50_ms)} ms over the read`],
    ["3 members, put c=1 (p50)", three.put.p50_ms, `+ replication: ${f(three.put.p50_ms - one.put.p50_ms)} ms over 1 member; ${f(three.put.p50_ms / floor)}× the floor`],
    ["3 members, get c=1 (p50, ReadIndex)", three.get.p50_ms, "a heartbeat round to confirm leadership"],
  ];
  const lines = [
    `| step | ms | what it adds |`,
    `|---|---|---|`,
    ...rows.map(([step, ms, note]) => `| ${step} | ${f(ms)} | ${note} |`),
    "",
    `CPU time per put at c=1 (3 members, ${seconds} s, ${(three.put.ops_per_s * seconds).toFixed(0)} puts): ` +
      three.cpuPerPut.join(", ") + ".",
    `Load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(" / ")}; ${os.cpus().length} × ${os.cpus()[0].model}; Node ${process.version}.`,
  ];
  log("stage trace: 1 member and a client in this process, 1,000 puts");
  const trace = await stageTrace(1000);
  lines.push(
    "",
    "Stage trace (1 member and its client in one process; median ms from the client's send, each stage the first time a put passes it):",
    "",
    "| stage | ms from send |",
    "|---|---|",
    ...trace.map(([label, ms]) => `| ${label} | ${f(ms)} |`),
  );
  log("stage trace: 3 members, each with bench/member-trace.mjs preloaded, put c=1");
  const replication = await replicationTrace();
  lines.push(
    "",
    `Stage trace, 3 members (put c=1, ${replication.puts} puts; L the leader, F1 and F2 the followers; median ms from the request's arrival at the leader; stages passed in at least half of the puts, with the share; #2 a stage's second pass in one put):`,
    "",
    "| stage | ms | puts |",
    "|---|---|---|",
    ...replication.rows.map(([label, ms, share]) => `| ${label} | ${f(ms)} | ${(share * 100).toFixed(0)}% |`),
  );
  console.log(lines.join("\n"));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
