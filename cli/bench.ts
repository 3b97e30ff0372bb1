// `concord bench WORKLOAD`: load a cluster through the client library and print one JSON line with the same
// fields as ../shared/bench/etcd/bench.mjs, so the two can be compared as ratios on the same machine.
import { Command, Option } from "commander";
import { connect, type Client } from "../src/index.js";
import type { Lease } from "../src/client/lease.js";
import { Latencies, runSummary } from "./latencies.js";
import { progressBar } from "./progress.js";

export const WORKLOADS = [
  "put",
  "get",
  "get-serializable",
  "cas",
  "lock-uncontended",
  "lock-contended",
  "election-churn",
  "watch-fanout",
] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface BenchOptions {
  workload: Workload;
  concurrency: number;
  seconds: number;
  valueSize: number;
  keys: number;
  endpoints: string;
}

export interface BenchResult {
  system: string;
  workload: string;
  concurrency: number;
  seconds: number;
  ops: number;
  errors: number;
  ops_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const client = await connect(o.endpoints, { timeoutMs: 30_000 });
  const value = Buffer.alloc(o.valueSize, "x");
  const lat = new Latencies();
  const deadline = performance.now() + o.seconds * 1000;
  // What the workers measure: each op's latency, and the ops that failed.
  const record = { lat, errors: 0 };
  // The bar's value is the run's elapsed time. The workers only count; a slow interval hands the counts to the bar.
  const bar = progressBar(`${o.workload} c=${o.concurrency} [{bar}] {value}/{total} s, {ops} ops, {errors} errors`, (s) => s.toFixed(0));
  bar.start(o.seconds, 0, { ops: 0, errors: 0 });
  const showProgress = () => {
    const left = Math.max(0, (deadline - performance.now()) / 1000);
    bar.update(o.seconds - left, { ops: lat.n, errors: record.errors });
  };
  const progress = setInterval(showProgress, 250);

  let elapsed: number;
  try {
    if (o.workload === "get" || o.workload === "get-serializable") await client.put("k0", value);
    const t0 = performance.now();
    if (o.workload === "watch-fanout") await watchFanout(client, o, value, lat, deadline);
    else await Promise.all(Array.from({ length: o.concurrency }, (_, w) => worker(client, o, w, value, deadline, record)));
    elapsed = (performance.now() - t0) / 1000;
  } finally {
    clearInterval(progress);
    showProgress(); // the final counts
    bar.stop();
  }
  await client.close();
  return { system: "concord", workload: o.workload, concurrency: o.concurrency, ...runSummary(lat, elapsed, record.errors) };
}

async function worker(
  c: Client,
  o: BenchOptions,
  w: number,
  value: Buffer,
  deadline: number,
  record: { lat: Latencies; errors: number },
): Promise<void> {
  let lease: Lease | undefined;
  // As etcd's script: one kept-alive lease per worker, granted before the clock starts mattering.
  if (o.workload.startsWith("lock")) lease = await c.grantLease(30_000);
  const op = workerOp(c, o, w, value, lease);
  if (o.workload === "cas") await c.put(`cas/${w}`, "0");
  // One await per op: the load client's own cost per op is the op's promise and this frame's resumption.
  while (performance.now() < deadline) {
    const t0 = performance.now();
    try {
      await op();
      record.lat.add(performance.now() - t0);
    } catch {
      record.errors++;
    }
  }
  if (lease) await lease.revoke().catch(() => {});
}

/** One op of worker `w` of the workload, as a function made once per worker. */
function workerOp(c: Client, o: BenchOptions, w: number, value: Buffer, lease: Lease | undefined): () => Promise<unknown> {
  switch (o.workload) {
    case "put":
      return () => c.put(`k${Math.floor(Math.random() * o.keys)}`, value);
    case "get":
      return () => c.get("k0");
    case "get-serializable": {
      const serializable = { consistency: "serializable" } as const;
      return () => c.get("k0", serializable);
    }
    case "cas": {
      const casKey = `cas/${w}`;
      let casValue = 0;
      return async () => {
        const next = String(casValue + 1);
        if ((await c.cas(casKey, String(casValue), next)).succeeded) casValue++;
        else throw new Error("cas lost");
      };
    }
    case "lock-uncontended":
    case "lock-contended": {
      const name = o.workload === "lock-contended" ? "L" : `L${w}`;
      return async () => {
        const hold = await c.lock(name, { lease });
        await hold.release();
      };
    }
    case "election-churn":
      return async () => {
        const leadership = await c.election("E").campaign(`w${w}`, { ttlMs: 30_000 });
        await leadership.resign();
      };
    case "watch-fanout":
      throw new Error("watch-fanout has no per-worker op: watchFanout runs it");
  }
}

/** `concurrency` watchers on one prefix; one writer; an op is one event delivered, timed from its put. */
async function watchFanout(c: Client, o: BenchOptions, value: Buffer, lat: Latencies, deadline: number): Promise<void> {
  const sentAt = new Map<string, number>();
  const watchers = Array.from({ length: o.concurrency }, () => c.watch("w/", { prefix: true }));
  const readers = watchers.map(async (watch) => {
    for await (const ev of watch) {
      const t = sentAt.get(ev.key);
      if (t !== undefined) lat.add(performance.now() - t);
      if (performance.now() > deadline + 2000) break;
    }
  });
  let i = 0;
  while (performance.now() < deadline) {
    const key = `w/${i++ % 1000}`;
    sentAt.set(key, performance.now());
    await c.put(key, value);
  }
  await new Promise((r) => setTimeout(r, 500));
  for (const w of watchers) w.close();
  await Promise.allSettled(readers);
}

export function benchCommand(): Command {
  return new Command("bench")
    .description("load the cluster and print one JSON line (fields as ../shared/bench/etcd/bench.mjs)")
    .argument("<workload>", WORKLOADS.join(" | "))
    .addOption(new Option("--concurrency <n>", "concurrent workers (watchers for watch-fanout)").default("64"))
    .addOption(new Option("--seconds <s>", "duration").default("10"))
    .addOption(new Option("--value-size <bytes>", "value size").default("256"))
    .addOption(new Option("--keys <n>", "key space for put").default("10000"))
    .addOption(new Option("--endpoints <urls>", "comma-separated client URLs (or CONCORD_ENDPOINTS)"))
    .addHelpText(
      "after",
      `
Examples:
  concord bench put --concurrency 64 --seconds 10
  concord bench lock-contended --endpoints ws://127.0.0.1:7100,ws://127.0.0.1:7110,ws://127.0.0.1:7120
  npm run bench:compare            # Concord, etcd 3.4 and ZooKeeper 3.8 side by side, written to docs/benchmarks.md`,
    )
    .action(async (workload: string, opts: Record<string, string>) => {
      if (!(WORKLOADS as readonly string[]).includes(workload)) {
        console.error(`concord bench: unknown workload ${JSON.stringify(workload)}; accepted: ${WORKLOADS.join(", ")}`);
        process.exit(2);
      }
      const num = (name: string, min: number) => {
        const v = Number(opts[name]);
        if (!Number.isFinite(v) || v < min) {
          console.error(`concord bench: --${name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}: expected a number >= ${min}, got ${JSON.stringify(opts[name])}`);
          process.exit(2);
        }
        return v;
      };
      const endpoints = opts.endpoints ?? process.env.CONCORD_ENDPOINTS;
      if (!endpoints) {
        console.error("concord bench: no endpoints: pass --endpoints or set CONCORD_ENDPOINTS");
        process.exit(2);
      }
      const result = await runBench({
        workload: workload as Workload,
        concurrency: num("concurrency", 1),
        seconds: num("seconds", 0.1),
        valueSize: num("valueSize", 0),
        keys: num("keys", 1),
        endpoints,
      });
      console.log(JSON.stringify(result));
      process.exit(0);
    });
}
