// npm run sim -- --seeds N [--seed S] [--nodes 3|5] [--verbose] [--first F] [--jobs J] [--stop]
// npm run demo (tsx sim/cli.ts --demo): one seed, narrated.
// Runs seeds of the deterministic simulator and prints a summary; on a violation prints the seed and the
// command that replays it, and exits 1. `--seed S` replays one seed exactly (same output every time). A range
// of seeds is shared among J worker processes (one per core by default); the summary does not depend on J.

import { fork } from "node:child_process";
import os from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { nodesFor as defaultNodes } from "./seeds.js";
import { runSeed, type SeedResult } from "./simulation.js";
import { summarize, formatSummary } from "./summary.js";

function integer(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

const program = new Command()
  .name("sim")
  .description("Concord's deterministic Raft cluster simulator")
  .option("--seeds <n>", "number of seeds to run", integer("--seeds", 1, 10_000_000), 100)
  .option("--first <s>", "first seed of the range", integer("--first", 0, 0xffffffff), 1)
  .option("--seed <s>", "replay exactly one seed", integer("--seed", 0, 0xffffffff))
  .option("--nodes <n>", "3 or 5 founding voters (default: alternate by seed)", integer("--nodes", 3, 5))
  .option("--verbose", "print every event of the run (with --seed)")
  .option("--stop", "stop at the first seed that violates an invariant (the lowest one, whatever --jobs)")
  .option("--jobs <n>", "worker processes sharing a range of seeds (default: one per core)", integer("--jobs", 1, 64), Math.max(1, os.availableParallelism()))
  .addOption(new Option("--worker <i>", "internal: run the seeds of worker i of --jobs and report them to the parent").argParser(integer("--worker", 0, 63)).hideHelp())
  .option("--demo", "run one seed with a narrative of what happens")
  .showHelpAfterError();

program.parse();
const opts = program.opts<{
  seeds: number;
  first: number;
  seed?: number;
  nodes?: number;
  verbose?: boolean;
  stop?: boolean;
  jobs: number;
  worker?: number;
  demo?: boolean;
}>();
if (opts.nodes !== undefined && opts.nodes !== 3 && opts.nodes !== 5)
  program.error(`--nodes must be 3 or 5, got ${opts.nodes}`);

const nodesFor = (seed: number): number => opts.nodes ?? defaultNodes(seed);
const replayCommand = (r: SeedResult): string => `npm run sim -- --seed ${r.seed} --nodes ${r.nodes}`;
const fmtTime = (t: number): string => `t=${(t / 100).toFixed(2).padStart(7)}`;

if (opts.demo) {
  await runDemo();
} else if (opts.seed !== undefined) {
  const seed = opts.seed;
  const lines: string[] = [];
  const result = await runSeed({
    seed,
    nodes: nodesFor(seed),
    stackTraces: true,
    onLog: opts.verbose ? (t, l) => lines.push(`${fmtTime(t)} ${l}`) : undefined,
  });
  for (const l of lines) console.log(l);
  if (result.violation) console.log(`seed ${seed}: ${result.violation.message}`);
  report([result], 0);
} else if (opts.worker !== undefined) {
  // A worker: its share of the range, each result to the parent as it completes.
  for (let s = opts.first + opts.worker; s < opts.first + opts.seeds; s += opts.jobs) {
    process.send!(await runSeed({ seed: s, nodes: nodesFor(s) }));
  }
  process.disconnect();
} else {
  await runRange();
}

/** Runs the range, in worker processes when --jobs > 1; prints violations in seed order, then the summary. */
async function runRange(): Promise<void> {
  const started = performance.now();
  const last = opts.first + opts.seeds - 1;
  const results = new Map<number, SeedResult>();
  /** Per worker: the seeds it has reported so far. */
  const done = new Array<number>(opts.jobs).fill(0);
  let lowestViolation = Infinity;
  const workerOf = (s: number) => (s - opts.first) % opts.jobs;
  /** With --stop: every seed below the lowest violation has been run, by every worker. */
  const settled = () => Number.isFinite(lowestViolation) && done.every((n, w) => opts.first + w + n * opts.jobs >= lowestViolation);
  let lastProgress = started;
  const onResult = (r: SeedResult): void => {
    results.set(r.seed, r);
    done[workerOf(r.seed)]++;
    if (r.violation) {
      lowestViolation = Math.min(lowestViolation, r.seed);
      process.stderr.write(`sim: seed ${r.seed} violated ${r.violation.invariant} (replay: ${replayCommand(r)})\n`);
    }
    if (performance.now() - lastProgress > 10_000) {
      lastProgress = performance.now();
      const violations = [...results.values()].filter((x) => x.violation).length;
      process.stderr.write(`sim: ${results.size}/${opts.seeds} seeds, ${violations} violations, ${((lastProgress - started) / 1000).toFixed(0)} s\n`);
    }
  };
  if (opts.jobs === 1) {
    for (let s = opts.first; s <= last && !(opts.stop && settled()); s++) onResult(await runSeed({ seed: s, nodes: nodesFor(s) }));
  } else {
    const args = process.argv.slice(2).filter((a, i, all) => a !== "--stop" && a !== "--worker" && all[i - 1] !== "--worker");
    const children = Array.from({ length: Math.min(opts.jobs, opts.seeds) }, (_, w) =>
      fork(process.argv[1], [...args, "--worker", String(w)], { execArgv: process.execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] }),
    );
    await Promise.all(
      children.map((child, w) => {
        return new Promise<void>((resolve, reject) => {
          child.on("message", (r: SeedResult) => {
            onResult(r);
            if (opts.stop && settled()) for (const c of children) c.kill();
          });
          child.on("exit", (code, signal) => (code === 0 || signal === "SIGTERM" ? resolve() : reject(new Error(`sim worker ${w} exited with ${signal ?? code}`))));
        });
      }),
    );
  }
  const ordered = [...results.values()].sort((a, b) => a.seed - b.seed).filter((r) => !opts.stop || r.seed <= lowestViolation);
  for (const r of ordered) if (r.violation) console.log(`seed ${r.seed}: ${r.violation.message}\n  replay: ${replayCommand(r)}`);
  if (opts.stop && Number.isFinite(lowestViolation)) console.log(`stopped at the first violation: seed ${lowestViolation} (${results.get(lowestViolation)!.violation!.invariant})`);
  report(ordered, performance.now() - started);
}

function report(results: SeedResult[], wallMs: number): void {
  console.log(formatSummary(summarize(results), wallMs));
  const failed = results.filter((r) => r.violation);
  if (failed.length > 0) {
    console.log(
      `FAILED: ${failed.length} seed(s) violated an invariant. Replay the first with:\n  ${replayCommand(failed[0])} --verbose`,
    );
    process.exitCode = 1;
  }
}

async function runDemo(): Promise<void> {
  const seed = 5;
  const interesting =
    /becomes leader|crash|partition|isolat|restarts|heal|installs a snapshot|proposes|transfers|one-way|pauses|fsyncs|stops after|liveness|VIOLATION|faults stop/;
  const lines: string[] = [];
  let lastLeaderLine = "";
  const result = await runSeed({
    seed,
    nodes: 3,
    faultTicks: 150,
    onLog: (t, l) => {
      if (!interesting.test(l)) return;
      if (/becomes leader/.test(l)) {
        if (l === lastLeaderLine) return;
        lastLeaderLine = l;
      }
      lines.push(`${fmtTime(t)}  ${l}`);
    },
  });
  console.log(
    `Concord simulator demo: seed ${seed}, 3 production hosts (the code a member runs) on a simulated clock, network and disk, one seeded PRNG, faults for a while, then healing.`,
  );
  const shown =
    lines.length > 16 ? [...lines.slice(0, 12), `   … ${lines.length - 15} more events …`, ...lines.slice(-3)] : lines;
  for (const l of shown) console.log(l);
  console.log(
    `Checked as it ran (${result.invariantChecks} checks): one leader per term, log matching, leader completeness, ` +
      `committed entries never change, identical state-machine outputs on every node, lock/election rules, ` +
      `commit never decreases across restarts, the hosts' own assertions; then the clients' histories: KV linearizability, ` +
      `lock safety, election agreement, watch order and lease safety.`,
  );
  report([result], 0);
}
