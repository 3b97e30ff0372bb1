// `npm run jepsen -- --workload register --nemesis partition,kill --time 60 --driver process|container`
// `npm run jepsen:ci` (= --ci): the bounded CI mix; `--soak <minutes>`: a long randomized run of mixes;
// `--mutant <name>`: run against a deliberately broken copy of the server (blindness check).

import { Command, InvalidArgumentError } from "commander";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runTest, type RunOptions, type RunSummary } from "./runner.js";
import { NEMESIS_NAMES } from "./nemesis/schedule.js";
import { WORKLOAD_NAMES } from "./workloads/index.js";
import { CI_MIX, MUTANT_MIX, writeMixNote } from "./mix.js";
import { MUTANTS, prepareMutant } from "./mutants.js";
import { PORT_MAX, PORT_MIN } from "./drivers/process-driver.js";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function int(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
}
function oneOf<T extends string>(name: string, accepted: readonly T[]) {
  return (v: string): T => {
    if (!(accepted as readonly string[]).includes(v)) throw new InvalidArgumentError(`${name} ${JSON.stringify(v)}; accepted: ${accepted.join(", ")}`);
    return v as T;
  };
}
function nemesisList(v: string): string[] {
  const names = v.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(NEMESIS_NAMES as readonly string[]).includes(n)) throw new InvalidArgumentError(`nemesis ${JSON.stringify(n)}; accepted: ${NEMESIS_NAMES.join(", ")} (comma-separated)`);
  if (names.length === 0) throw new InvalidArgumentError("--nemesis needs at least one name");
  return names;
}

const program = new Command()
  .name("jepsen")
  .description("Concord's Jepsen-style fault-injection suite")
  .option("--workload <name>", `one of ${WORKLOAD_NAMES.join(", ")}`, oneOf("--workload", WORKLOAD_NAMES), "register")
  .option("--nemesis <list>", `comma-separated: ${NEMESIS_NAMES.join(", ")}`, nemesisList, ["partition"])
  .option("--time <seconds>", "generation phase length", int("--time", 1, 24 * 3600), 30)
  .option("--driver <kind>", "process | container", oneOf("--driver", ["process", "container"] as const), "process")
  .option("--seed <n>", "PRNG seed (default: random, printed)", int("--seed", 0, 2 ** 31 - 1))
  .option("--nodes <n>", "cluster size", int("--nodes", 1, 7), 5)
  .option("--concurrency <n>", "client workers", int("--concurrency", 1, 64), 10)
  .option("--base-port <port>", `first port (a cluster takes 200; ${PORT_MIN}..${PORT_MAX})`, int("--base-port", PORT_MIN, PORT_MAX - 199), PORT_MIN)
  .option("--results <dir>", "results root", path.join(REPO_ROOT, "results"))
  .option("--mutant <name>", `run against a deliberately broken build: ${Object.keys(MUTANTS).join(", ")}`)
  .option("--ci", "run the bounded CI mix (all workloads, every nemesis, both drivers when Docker is up)")
  .option("--mutants", "run the blindness checks: each mutant must be reported as a violation")
  .option("--soak <minutes>", "random workload × nemesis mixes for this long", int("--soak", 1, 24 * 60))
  .option("--keep-data", "keep member data directories")
  .option("--quiet", "less output");

async function main(): Promise<number> {
  const o = program.parse(process.argv).opts<{
    workload: string; nemesis: string[]; time: number; driver: "process" | "container"; seed?: number; nodes: number; concurrency: number;
    basePort: number; results: string; mutant?: string; ci?: boolean; mutants?: boolean; soak?: number; keepData?: boolean; quiet?: boolean;
  }>();
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  // Absolute: container bind mounts and member data directories must not depend on the cwd.
  o.results = path.resolve(o.results);
  const base = (over: Partial<RunOptions>): RunOptions => ({
    workload: o.workload, nemeses: o.nemesis, timeS: o.time, driver: o.driver, seed, nodes: o.nodes, concurrency: o.concurrency,
    basePort: o.basePort, resultsRoot: o.results, repoRoot: REPO_ROOT, keepData: !!o.keepData, quiet: !!o.quiet, ...over,
  });
  fs.mkdirSync(o.results, { recursive: true });

  if (o.ci || o.mutants || o.soak !== undefined) {
    const started = Date.now();
    const summaries: RunSummary[] = [];
    const plan = o.ci ? CI_MIX : o.mutants ? MUTANT_MIX : [];
    let i = 0;
    const next = (): (typeof CI_MIX)[number] | null => {
      if (o.soak !== undefined) {
        if (Date.now() - started > o.soak * 60_000) return null;
        const w = WORKLOAD_NAMES[Math.floor(Math.random() * WORKLOAD_NAMES.length)]!;
        const pool = NEMESIS_NAMES.filter((n) => n !== "none");
        const mix = [...new Set([pool[Math.floor(Math.random() * pool.length)]!, pool[Math.floor(Math.random() * pool.length)]!])];
        return { workload: w, nemeses: mix, timeS: 120, driver: "process" };
      }
      return plan[i++] ?? null;
    };
    for (let run = 0; ; run++) {
      const item = next();
      if (item === null) break;
      const repoRoot = item.mutant ? prepareMutant(REPO_ROOT, item.mutant) : REPO_ROOT;
      const s = await runTest(base({ ...item, seed: seed + run, repoRoot, basePort: PORT_MIN + (run % 4) * 200, ...(item.mutant ? { label: item.mutant } : {}) }));
      summaries.push(s);
      const verdict = s.skipped ? `skipped (${s.skipped})` : s.valid === true ? "valid" : s.valid === false ? "VIOLATION" : "unknown";
      console.log(`${s.workload} × ${s.nemeses.join("+")} (${s.driver}${s.label ? ", mutant " + s.label : ""}): ${s.operations.total} ops, ${s.faults} faults, ${verdict}, ${s.durationS}s`);
      writeMixNote(o.results, summaries, o.ci ? "ci" : o.mutants ? "mutants" : "soak");
    }
    const note = writeMixNote(o.results, summaries, o.ci ? "ci" : o.mutants ? "mutants" : "soak");
    console.log(`\nmix note: ${note}`);
    if (o.mutants) {
      const blind = summaries.filter((s) => s.valid !== false);
      console.log(blind.length === 0 ? "every mutant was caught" : `BLIND to: ${blind.map((s) => `${s.label} (${s.workload})`).join(", ")}`);
      return blind.length === 0 ? 0 : 1;
    }
    const bad = summaries.filter((s) => s.valid === false);
    const unknown = summaries.filter((s) => s.valid === "unknown" && s.skipped === undefined);
    console.log(`${summaries.length} runs: ${bad.length} with violations, ${unknown.length} unknown, ${summaries.filter((s) => s.skipped).length} skipped`);
    return bad.length === 0 && unknown.length === 0 ? 0 : 1;
  }

  const repoRoot = o.mutant ? prepareMutant(REPO_ROOT, o.mutant) : REPO_ROOT;
  const s = await runTest(base({ repoRoot, ...(o.mutant ? { label: o.mutant } : {}) }));
  for (const v of s.verdicts) console.log(`  ${v.valid === true ? "valid    " : v.valid === false ? "VIOLATION" : "unknown  "} ${v.checker}: ${v.summary}`);
  if (s.skipped) console.log(`skipped: ${s.skipped}`);
  console.log(`report: ${path.join(s.dir, "report.html")}`);
  return s.valid === true ? 0 : s.skipped ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error((e as Error).message);
    process.exit(2);
  },
);
