// Failover time of a 3-member Concord cluster with the default timeouts (tick 100 ms, election 10 ticks):
// per trial, SIGKILL the leader while clients write back to back to the other two members, and time the kill
// to the first successful write sent after it; then restart the killed member and let it catch up.
//
//   npx tsx bench/failover.ts --trials 20 [--base-port 9700] [--etcd /tmp/etcd-copy]
//
// --deadline-ms (default 250) bounds each write for both systems. --etcd DIR also runs the same measurement against etcd (bench/etcd-failover.ts; DIR is a writable copy of
// ../shared/bench/etcd with `npm install` done). Prints per-trial figures, median/max, one JSON line per system.

import { parseArgs } from "node:util";
import { ClientSocket } from "../src/transport/client-socket.js";
import { LocalCluster } from "../src/harness/index.js";
import { runEtcdFailover, sleep, summarize, timeFirstWriteAfterKill, type WriteOnce } from "./etcd-failover.js";

const { values } = parseArgs({
  options: {
    trials: { type: "string", default: "20" },
    "base-port": { type: "string", default: "9700" },
    etcd: { type: "string" },
    "writers-per-member": { type: "string", default: "2" },
    "deadline-ms": { type: "string", default: "250" },
  },
});
const trials = Number(values.trials);
const basePort = Number(values["base-port"]);
const writersPerMember = Number(values["writers-per-member"]);
// Per-write deadline for both systems: far above a normal write's latency (a few ms), short enough that a write
// stuck behind the dead leader does not hide when the new one starts serving.
const deadlineMs = Number(values["deadline-ms"]);
if (!Number.isInteger(deadlineMs) || deadlineMs < 10)
  throw new Error(`--deadline-ms: expected an integer >= 10, got ${values["deadline-ms"]}`);
if (!Number.isInteger(trials) || trials < 1)
  throw new Error(`--trials: expected a positive integer, got ${values.trials}`);
if (!Number.isInteger(basePort) || basePort < 9100 || basePort + 21 > 9990)
  throw new Error(`--base-port: expected 9100..9969, got ${values["base-port"]}`);

/** A writer bound to one member: reconnects when its connection is gone; each put has a deadline. */
function memberWriter(url: string, tag: string): { write: WriteOnce; close(): void } {
  let sock: ClientSocket | null = null;
  let n = 0;
  return {
    write: async () => {
      if (!sock?.isOpen) {
        sock = null;
        sock = await ClientSocket.connect(url, { connectTimeoutMs: deadlineMs });
      }
      await sock.request("put", { key: `failover/${tag}`, value: String(++n) }, deadlineMs);
    },
    close: () => sock?.close(),
  };
}

async function runConcord(): Promise<number[]> {
  const cluster = await LocalCluster.start({ size: 3, basePort, logLevel: "warn" });
  const results: number[] = [];
  const stopOnSignal = () => void cluster.teardown().then(() => process.exit(130));
  process.once("SIGINT", stopOnSignal);
  try {
    for (let t = 1; t <= trials; t++) {
      const leader = await cluster.waitForLeader(30_000);
      const survivors = cluster.running().filter((n) => n !== leader);
      const writers = survivors.flatMap((n) =>
        Array.from({ length: writersPerMember }, (_, i) => memberWriter(cluster.member(n).clientUrl, `${n}-${i}`)),
      );
      let ms: number;
      try {
        ms = await timeFirstWriteAfterKill(
          writers.map((w) => w.write),
          () => void cluster.kill(leader),
        );
      } finally {
        for (const w of writers) w.close();
      }
      results.push(ms);
      console.log(`concord trial ${t}/${trials}: killed leader ${leader}, first write after ${ms.toFixed(0)} ms`);
      // Bring the killed member back and let it catch up before the next trial.
      await cluster.kill(leader); // wait for the exit (the kill above was fire-and-forget)
      await cluster.restart(leader);
      const newLeader = await cluster.waitForLeader(30_000);
      await cluster.waitForApplied(leader, (await cluster.status(newLeader)).commit, 30_000);
      await sleep(500);
    }
  } finally {
    process.off("SIGINT", stopOnSignal);
    await cluster.teardown();
  }
  return results;
}

const concord = await runConcord();
const c = summarize("concord", concord);
console.log(`concord failover over ${trials} trials: median ${c.median_ms} ms, max ${c.max_ms} ms`);
console.log(JSON.stringify(c));

if (values.etcd) {
  const etcd = await runEtcdFailover({ dir: values.etcd, trials, deadlineMs });
  const e = summarize("etcd", etcd);
  console.log(`etcd failover over ${trials} trials: median ${e.median_ms} ms, max ${e.max_ms} ms`);
  console.log(JSON.stringify(e));
}
