// One test run: start a cluster, run a workload through the real client while the nemesis schedule injects
// faults, heal, finish (final reads), check, and write results/<timestamp>-<workload>-<nemeses>/:
//   history.jsonl   client operations in the vectors' JSONL format
//   nemesis.jsonl   fault events on the same clock
//   verdicts.json   every checker's verdict, plus run metadata
//   artifacts.json  workload records the checkers used (final read, watcher streams, grants…)
//   nodes/*.log     member logs (data directories are removed unless keepData)
//   report.html     self-contained timeline of operations and faults, failing window highlighted
//   replay.txt      the command that reruns this test with the same seed

import { setMaxListeners } from "node:events";
import fs from "node:fs";
import path from "node:path";
import { History } from "./history.js";
import { ProcessCluster } from "./drivers/process-driver.js";
import { ContainerCluster, containerDriverUnavailable } from "./drivers/container-driver.js";
import type { ClusterDriver } from "./drivers/driver.js";
import { makeNemesis, runSchedule, healAll } from "./nemesis/schedule.js";
import type { Nemesis, NemesisContext } from "./nemesis/nemesis.js";
import { DiskNemesis } from "./nemesis/disk.js";
import { makeWorkload } from "./workloads/index.js";
import type { Verdict, WorkloadContext } from "./workloads/workload.js";
import { renderReport } from "./report.js";
import { Rng, sleep } from "./util.js";

export interface RunOptions {
  workload: string;
  nemeses: string[];
  timeS: number;
  driver: "process" | "container";
  seed: number;
  nodes: number;
  concurrency: number;
  basePort: number;
  resultsRoot: string;
  /** Repository to run members from (a mutant copy for blindness checks). */
  repoRoot: string;
  /** Label for mutant runs ("reads served locally", …). */
  label?: string;
  keepData?: boolean;
  opTimeoutMs?: number;
  quiet?: boolean;
}

export interface RunSummary {
  dir: string;
  workload: string;
  nemeses: string[];
  driver: string;
  seed: number;
  label?: string;
  operations: { ok: number; fail: number; info: number; total: number };
  faults: number;
  /** Faults started, by nemesis. */
  faultKinds: Record<string, number>;
  verdicts: Verdict[];
  valid: boolean | "unknown";
  skipped?: string;
  error?: string;
  durationS: number;
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

export function overall(verdicts: readonly Verdict[]): boolean | "unknown" {
  if (verdicts.some((v) => v.valid === false)) return false;
  if (verdicts.some((v) => v.valid === "unknown")) return "unknown";
  return true;
}

export async function runTest(o: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  const name = `${stamp()}-${o.workload}-${o.nemeses.join("+")}-${o.driver}${o.label ? "-" + o.label.replace(/[^a-z0-9]+/gi, "_") : ""}`;
  const dir = path.join(o.resultsRoot, name);
  fs.mkdirSync(dir, { recursive: true });
  const say = (m: string) => {
    fs.appendFileSync(path.join(dir, "run.log"), `${new Date().toISOString()} ${m}\n`);
    if (!o.quiet) console.log(`  [${o.workload}/${o.nemeses.join("+")}] ${m}`);
  };
  const replay = `npm run jepsen -- --workload ${o.workload} --nemesis ${o.nemeses.join(",")} --time ${o.timeS} --driver ${o.driver} --seed ${o.seed} --nodes ${o.nodes} --concurrency ${o.concurrency}${o.label ? ` --mutant ${o.label}` : ""}`;
  fs.writeFileSync(path.join(dir, "replay.txt"), replay + "\n");
  const base: Omit<RunSummary, "operations" | "faults" | "faultKinds" | "verdicts" | "valid" | "durationS"> = {
    dir, workload: o.workload, nemeses: o.nemeses, driver: o.driver, seed: o.seed, ...(o.label ? { label: o.label } : {}),
  };

  if (o.driver === "container") {
    const why = await containerDriverUnavailable();
    if (why !== null) {
      say(`SKIPPED the container driver: ${why}`);
      const s: RunSummary = { ...base, operations: { ok: 0, fail: 0, info: 0, total: 0 }, faults: 0, faultKinds: {}, verdicts: [], valid: "unknown", skipped: why, durationS: 0 };
      fs.writeFileSync(path.join(dir, "verdicts.json"), JSON.stringify(s, null, 2));
      return s;
    }
  }

  const history = new History();
  const rng = new Rng(o.seed);
  const workload = makeWorkload(o.workload);
  const nemeses = o.nemeses.map(makeNemesis).filter((n): n is Nemesis => n !== null);
  let driver: ClusterDriver | null = null;
  const verdicts: Verdict[] = [];
  let error: string | undefined;
  try {
    say(`starting ${o.nodes} members (${o.driver} driver), seed ${o.seed}`);
    const nodesDir = path.join(dir, "nodes");
    driver =
      o.driver === "process"
        ? await ProcessCluster.start({ size: o.nodes, basePort: o.basePort, root: nodesDir, repoRoot: o.repoRoot, logLevel: "info" })
        : await ContainerCluster.start({ size: o.nodes, root: nodesDir, repoRoot: o.repoRoot, name: `jepsen${o.seed}` });
    const d = driver;
    say(`cluster up; leader ${await d.leader(10_000)}`);
    const stop = new AbortController();
    // Every worker's blocking call listens on this one signal.
    setMaxListeners(1000, stop.signal);
    const ctx: WorkloadContext = {
      endpoints: () => d.endpoints(),
      history,
      rng: new Rng(o.seed ^ 0x9e3779b9),
      stop: stop.signal,
      concurrency: o.concurrency,
      opTimeoutMs: o.opTimeoutMs ?? 4000,
      log: say,
    };
    const nctx: NemesisContext = { driver: d, rng, history, log: say };
    const workloadDone = workload.run(ctx).catch((e) => {
      error = `workload crashed: ${(e as Error).stack ?? e}`;
      say(error);
    });
    const scheduleDone = runSchedule(nctx, nemeses, stop.signal, { quietMs: [1500, 3000], faultMs: [3000, 6000] });
    await sleep(o.timeS * 1000);
    stop.abort();
    await scheduleDone;
    say("generation over; healing");
    await healAll(nctx);
    await Promise.race([workloadDone, sleep((o.opTimeoutMs ?? 4000) * 3 + 10_000)]);
    const leader = await d.leader(30_000);
    say(`healed; leader ${leader}`);
    await workload.finish(ctx);
    say(`checking ${history.count().total} operations`);
    verdicts.push(...(await workload.check(ctx)));
    for (const n of nemeses) {
      if (n instanceof DiskNemesis && n.outcomes.length > 0) {
        const flips = n.outcomes.filter((x) => x.fault === "flip-wal-bits");
        const undetected = flips.filter((x) => !x.detected);
        const truncs = n.outcomes.filter((x) => x.fault === "truncate-wal-tail");
        verdicts.push({
          checker: "disk faults detected (bit flips refuse to start; torn tails recover)",
          valid: undetected.length === 0 && truncs.every((t) => t.restarted),
          summary: `${flips.length} bit flips (${flips.length - undetected.length} detected), ${truncs.length} tail truncations (${truncs.filter((t) => t.restarted).length} recovered)`,
          details: n.outcomes,
        });
      }
    }
    if (leader === null) verdicts.push({ checker: "recovery after heal", valid: false, summary: "no leader within 30 s after every fault was healed" });
    fs.writeFileSync(path.join(dir, "artifacts.json"), JSON.stringify(workload.artifacts(), null, 1));
  } catch (e) {
    error = (e as Error).stack ?? String(e);
    say(`run failed: ${error}`);
  } finally {
    await driver?.teardown().catch(() => {});
    if (!o.keepData && driver) for (const m of driver.members()) fs.rmSync(m.dataDir, { recursive: true, force: true });
  }

  if (error !== undefined) verdicts.push({ checker: "run completed", valid: "unknown", summary: error.split("\n")[0]! });
  const summary: RunSummary = {
    ...base,
    operations: history.count(),
    faults: history.nemesis.filter((e) => e.phase === "start").length,
    faultKinds: history.nemesis.filter((e) => e.phase === "start").reduce<Record<string, number>>((acc, e) => ({ ...acc, [e.nemesis]: (acc[e.nemesis] ?? 0) + 1 }), {}),
    verdicts,
    valid: overall(verdicts),
    ...(error !== undefined ? { error } : {}),
    durationS: Math.round((performance.now() - started) / 100) / 10,
  };
  fs.writeFileSync(path.join(dir, "history.jsonl"), history.toJsonl());
  fs.writeFileSync(path.join(dir, "history-diagnostics.jsonl"), history.events.map((e) => JSON.stringify(e)).join("\n") + "\n");
  fs.writeFileSync(path.join(dir, "nemesis.jsonl"), history.nemesis.map((e) => JSON.stringify(e)).join("\n") + "\n");
  fs.writeFileSync(path.join(dir, "verdicts.json"), JSON.stringify(summary, null, 2));
  fs.writeFileSync(path.join(dir, "report.html"), renderReport(summary, history, replay));
  say(`verdict: ${summary.valid === true ? "VALID" : summary.valid === false ? "VIOLATION" : "UNKNOWN"} (${summary.operations.total} operations, ${summary.faults} faults) → ${dir}`);
  return summary;
}
