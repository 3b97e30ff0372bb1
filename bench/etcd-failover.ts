// Failover time of a 3-member etcd 3.4 cluster (../shared/bench/etcd, default timeouts: heartbeat 100 ms,
// election 1000 ms), measured exactly as bench/failover.ts measures Concord: SIGKILL the leader while etcd3
// clients write back to back to the other two members; time the kill to the first successful put sent after
// it; restart the killed member between trials. Also holds the timing loop both benchmarks share.
//
//   cp -r ../shared/bench/etcd /tmp/etcd-copy && (cd /tmp/etcd-copy && npm install)
//   npx tsx bench/etcd-failover.ts --etcd /tmp/etcd-copy --trials 20 [--deadline-ms 250]

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One write attempt; rejects on any failure (the loop retries after a short pause). */
export type WriteOnce = () => Promise<void>;

/**
 * Writers send writes back to back; `kill` is called once they are running steadily. Returns the time from
 * the kill to the first successful write that was *sent after* the kill (a write sent before it may still be
 * acknowledged by the old leader's commit and proves nothing about the new leader).
 */
export async function timeFirstWriteAfterKill(
  writers: WriteOnce[],
  kill: () => void,
  timeoutMs = 30_000,
): Promise<number> {
  let killedAt = 0;
  let firstOkAt = 0;
  let stop = false;
  let writesBeforeKill = 0;
  const loops = writers.map(async (write) => {
    while (!stop) {
      const sentAt = performance.now();
      try {
        await write();
        if (killedAt === 0) writesBeforeKill++;
        else if (sentAt >= killedAt && firstOkAt === 0) {
          firstOkAt = performance.now();
          stop = true;
        }
      } catch {
        await sleep(5);
      }
    }
  });
  const warmup = performance.now() + 5000;
  while (writesBeforeKill < 20 && performance.now() < warmup) await sleep(10);
  if (writesBeforeKill === 0) {
    stop = true;
    await Promise.all(loops);
    throw new Error("no write succeeded before the kill: the cluster is not serving");
  }
  killedAt = performance.now();
  kill();
  while (firstOkAt === 0 && performance.now() - killedAt < timeoutMs) await sleep(2);
  stop = true;
  await Promise.all(loops);
  if (firstOkAt === 0) throw new Error(`no successful write within ${timeoutMs} ms of the kill`);
  return firstOkAt - killedAt;
}

export function summarize(
  system: string,
  trialsMs: number[],
): {
  system: string;
  workload: string;
  trials: number;
  median_ms: number;
  max_ms: number;
  min_ms: number;
  trials_ms: number[];
} {
  const sorted = [...trialsMs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return {
    system,
    workload: "failover",
    trials: sorted.length,
    median_ms: Math.round(median),
    max_ms: Math.round(sorted[sorted.length - 1]),
    min_ms: Math.round(sorted[0]),
    trials_ms: trialsMs.map((t) => Math.round(t)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// etcd

const MEMBERS = [1, 2, 3].map((i) => ({
  name: `n${i}`,
  client: `127.0.0.1:${i}2379`,
  peer: `http://127.0.0.1:${i}2380`,
}));
const INITIAL_CLUSTER = MEMBERS.map((m) => `${m.name}=${m.peer}`).join(",");

interface EtcdClient {
  put(key: string): { value(v: string): Promise<unknown> };
  close(): void;
}

/** The flags cluster.sh starts member `i` with (so a restart is the same member on the same data dir). */
function startMember(dataDir: string, i: number): void {
  const m = MEMBERS[i];
  const log = fs.openSync(path.join(dataDir, `${m.name}.log`), "a");
  const child = spawn(
    "etcd",
    [
      "--name",
      m.name,
      "--data-dir",
      path.join(dataDir, m.name),
      "--listen-peer-urls",
      m.peer,
      "--initial-advertise-peer-urls",
      m.peer,
      "--listen-client-urls",
      `http://${m.client}`,
      "--advertise-client-urls",
      `http://${m.client}`,
      "--initial-cluster",
      INITIAL_CLUSTER,
      "--initial-cluster-state",
      "new",
      "--log-level",
      "error",
    ],
    { detached: true, stdio: ["ignore", log, log] },
  );
  fs.closeSync(log);
  child.unref();
  fs.writeFileSync(path.join(dataDir, `${m.name}.pid`), String(child.pid));
}

function memberPid(dataDir: string, i: number): number {
  const pid = Number(fs.readFileSync(path.join(dataDir, `${MEMBERS[i].name}.pid`), "utf8").trim());
  const comm = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  if (comm !== "etcd") throw new Error(`pid ${pid} of ${MEMBERS[i].name} is ${comm}, not etcd`);
  return pid;
}

/** Index of the leader among `alive` members, as every one of them reports it; undefined while they disagree. */
function findLeader(alive: number[]): number | undefined {
  let out: string;
  try {
    out = execFileSync(
      "etcdctl",
      [
        "--endpoints",
        alive.map((i) => MEMBERS[i].client).join(","),
        "--command-timeout=1s",
        "endpoint",
        "status",
        "-w",
        "json",
      ],
      {
        env: { ...process.env, ETCDCTL_API: "3" },
        stdio: ["ignore", "pipe", "ignore"],
      },
    ).toString();
  } catch {
    return undefined;
  }
  // Member ids are uint64: keep them as strings (JSON numbers would lose precision).
  const statuses = JSON.parse(out.replace(/:\s*(\d{16,})/g, ':"$1"')) as {
    Endpoint: string;
    Status: { header: { member_id: string }; leader: string };
  }[];
  if (statuses.length !== alive.length) return undefined;
  const leaderId = String(statuses[0].Status.leader);
  if (leaderId === "0" || !statuses.every((s) => String(s.Status.leader) === leaderId)) return undefined;
  const own = statuses.find((s) => String(s.Status.header.member_id) === leaderId);
  return own ? MEMBERS.findIndex((m) => own.Endpoint.endsWith(m.client)) : undefined;
}

async function waitForLeader(alive: number[], timeoutMs = 30_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const l = findLeader(alive);
    if (l !== undefined && l >= 0) return l;
    if (performance.now() > deadline)
      throw new Error(
        `etcd: no leader agreed by ${alive.map((i) => MEMBERS[i].name).join(", ")} within ${timeoutMs} ms`,
      );
    await sleep(100);
  }
}

export async function runEtcdFailover(o: {
  dir: string;
  trials: number;
  deadlineMs?: number;
  log?: (line: string) => void;
}): Promise<number[]> {
  const deadlineMs = o.deadlineMs ?? 250;
  const log = o.log ?? ((l: string) => console.log(l));
  const req = createRequire(path.join(path.resolve(o.dir), "package.json"));
  const { Etcd3 } = req("etcd3") as { Etcd3: new (opts: object) => EtcdClient };
  const { noop } = req("cockatiel") as { noop: unknown };
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-failover-"));
  execFileSync(path.join(o.dir, "cluster.sh"), ["start", dataDir], { stdio: "inherit" });
  const results: number[] = [];
  try {
    for (let t = 1; t <= o.trials; t++) {
      const leader = await waitForLeader([0, 1, 2]);
      const survivors = [0, 1, 2].filter((i) => i !== leader);
      // Each writer its own single-endpoint client without the library's retry and circuit-breaker policies,
      // so what is timed is the cluster's failover, not the client's backoff.
      const clients = survivors.flatMap((i) =>
        [0, 1].map(
          () =>
            new Etcd3({
              hosts: `http://${MEMBERS[i].client}`,
              faultHandling: { host: () => noop, global: noop },
              defaultCallOptions: () => ({ deadline: Date.now() + deadlineMs }),
            }),
        ),
      );
      let ms: number;
      try {
        let n = 0;
        const pid = memberPid(dataDir, leader);
        ms = await timeFirstWriteAfterKill(
          clients.map((c, k) => async () => {
            await c.put(`failover/w${k}`).value(String(++n));
          }),
          () => process.kill(pid, "SIGKILL"),
        );
      } finally {
        for (const c of clients) c.close();
      }
      results.push(ms);
      log(`etcd trial ${t}/${o.trials}: killed leader ${MEMBERS[leader].name}, first write after ${ms.toFixed(0)} ms`);
      await sleep(200);
      startMember(dataDir, leader);
      await waitForLeader([0, 1, 2]);
      await sleep(500);
    }
  } finally {
    execFileSync(path.join(o.dir, "cluster.sh"), ["stop", dataDir], { stdio: "inherit" });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      etcd: { type: "string" },
      trials: { type: "string", default: "20" },
      "deadline-ms": { type: "string", default: "250" },
    },
  });
  if (!values.etcd)
    throw new Error("--etcd: the directory of a writable copy of ../shared/bench/etcd with npm install done");
  const trials = Number(values.trials);
  if (!Number.isInteger(trials) || trials < 1)
    throw new Error(`--trials: expected a positive integer, got ${values.trials}`);
  const r = summarize(
    "etcd",
    await runEtcdFailover({ dir: values.etcd, trials, deadlineMs: Number(values["deadline-ms"]) }),
  );
  console.log(`etcd failover over ${trials} trials: median ${r.median_ms} ms, max ${r.max_ms} ms`);
  console.log(JSON.stringify(r));
}
