// Load client for a 3-server ZooKeeper ensemble (bench/zookeeper/cluster.ts) through node-zookeeper-client, with
// the workloads and the JSON line of `concord bench` and ../shared/bench/etcd/bench.mjs:
//   put               setData on one of --keys pre-created znodes, chosen at random (as both others choose keys)
//   get               linearizable read: sync, then getData of /kv/k0 on the same session (Concord reads k0 too)
//   get-serializable  getData alone: the connected server's possibly stale copy
//   lock-uncontended  each worker its own lock node: the lock recipe's acquire + release
//   lock-contended    all workers on one lock node: acquire (watching the predecessor) + release = one hand-off
// One session per server in --servers; worker w uses session w mod 3, so load spreads as with the other clients.
// Usage: tsx bench/zookeeper/bench.ts WORKLOAD [--concurrency N] [--seconds S] [--value-size B] [--keys K]
//        [--max-ops N] [--servers host:port,...]. Prints one JSON line.
import { parseArgs } from "node:util";
import { Latencies, runSummary } from "../../cli/latencies.js";
import { ZooKeeperCluster } from "./cluster.js";
import {
  type Client,
  acquireLock,
  ensureNode,
  getChildren,
  getData,
  openSession,
  releaseLock,
  retryOnConnectionLoss,
  setData,
  sync,
} from "./session.js";

export const ZOOKEEPER_WORKLOADS = ["put", "get", "get-serializable", "lock-uncontended", "lock-contended"] as const;
type Workload = (typeof ZOOKEEPER_WORKLOADS)[number];

function fail(message: string): never {
  process.stderr.write(`zookeeper bench: ${message}\n`);
  process.exit(2);
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: "string", default: "64" },
    seconds: { type: "string", default: "10" },
    "value-size": { type: "string", default: "256" },
    keys: { type: "string", default: "10000" },
    "max-ops": { type: "string", default: "10000000" },
    servers: { type: "string", default: ZooKeeperCluster.connectionString() },
  },
});
const workload = positionals[0] as Workload;
if (!(ZOOKEEPER_WORKLOADS as readonly string[]).includes(workload))
  fail(`unknown workload ${JSON.stringify(positionals[0] ?? "")}; accepted: ${ZOOKEEPER_WORKLOADS.join(", ")}`);
const num = (name: keyof typeof values, min: number) => {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v < min)
    fail(`--${name}: expected a number >= ${min}, got ${JSON.stringify(values[name])}`);
  return v;
};
const concurrency = num("concurrency", 1);
const seconds = num("seconds", 0.1);
const value = Buffer.alloc(num("value-size", 0), "x");
const keys = num("keys", 1);
const maxOps = num("max-ops", 1);
const servers = values.servers!.split(",").filter((s) => s.length > 0);
if (servers.length === 0) fail("--servers: expected host:port[,host:port...]");

const sessions = await Promise.all(servers.map((s) => openSession(s)));
const setup = sessions[0];

/** Runs `task(i)` for i < n, 64 at a time: the setup's own load, before the clock starts. */
async function forEachConcurrently(n: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(64, n) }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

// Setup, untimed: the znodes a workload writes or reads exist before the clock starts.
const ensure = (path: string, data?: Buffer) => retryOnConnectionLoss(() => ensureNode(setup, path, data));
await ensure("/kv");
if (workload === "put") {
  const present = new Set(await retryOnConnectionLoss(() => getChildren(setup, "/kv")));
  const missing = Array.from({ length: keys }, (_, i) => `k${i}`).filter((k) => !present.has(k));
  await forEachConcurrently(missing.length, (i) => ensure(`/kv/${missing[i]}`, value));
} else if (workload === "get" || workload === "get-serializable") {
  await ensure("/kv/k0");
  await retryOnConnectionLoss(() => setData(setup, "/kv/k0", value));
} else {
  await ensure("/locks");
  const names = workload === "lock-contended" ? ["L"] : Array.from({ length: concurrency }, (_, w) => `L${w}`);
  await forEachConcurrently(names.length, (i) => ensure(`/locks/${names[i]}`));
}

const lat = new Latencies();
let errors = 0;
let started = 0;
let firstError: unknown;

async function once(c: Client, w: number): Promise<void> {
  switch (workload) {
    case "put":
      await setData(c, `/kv/k${Math.floor(Math.random() * keys)}`, value);
      return;
    case "get":
      await sync(c, "/kv/k0");
      await getData(c, "/kv/k0");
      return;
    case "get-serializable":
      await getData(c, "/kv/k0");
      return;
    case "lock-uncontended":
    case "lock-contended": {
      const node = await acquireLock(c, workload === "lock-contended" ? "/locks/L" : `/locks/L${w}`);
      await releaseLock(c, node);
      return;
    }
  }
}

const deadline = performance.now() + seconds * 1000;
async function worker(w: number): Promise<void> {
  const c = sessions[w % sessions.length];
  while (performance.now() < deadline && started < maxOps) {
    started++;
    const t0 = performance.now();
    try {
      await once(c, w);
      lat.add(performance.now() - t0);
    } catch (e) {
      errors++;
      firstError ??= e;
    }
  }
}

const t0 = performance.now();
await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
const elapsed = (performance.now() - t0) / 1000;
if (firstError) process.stderr.write(`zookeeper bench: ${errors} errors, the first: ${String(firstError)}\n`);
console.log(JSON.stringify({ system: "zookeeper-3.8", workload, concurrency, ...runSummary(lat, elapsed, errors) }));
for (const c of sessions) c.close();
process.exit(0);
