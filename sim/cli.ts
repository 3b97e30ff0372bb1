// npm run sim -- --seeds N [--seed S] [--nodes 3|5] [--verbose] [--first F]
// npm run demo (tsx sim/cli.ts --demo): one seed, narrated.
// Runs seeds of the deterministic simulator and prints a summary; on a violation prints the seed and the
// command that replays it, and exits 1. `--seed S` replays one seed exactly (same output every time).

import { Command, InvalidArgumentError } from "commander";
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
  .option("--stop", "stop at the first seed that violates an invariant")
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
} else {
  const started = process.hrtime.bigint();
  const results: SeedResult[] = [];
  for (let s = opts.first; s < opts.first + opts.seeds; s++) {
    const r = await runSeed({ seed: s, nodes: nodesFor(s) });
    results.push(r);
    if (r.violation) console.log(`seed ${s}: ${r.violation.message}\n  replay: ${replayCommand(r)}`);
    if (r.violation && opts.stop) {
      console.log(`stopped at the first violation: seed ${s} (${r.violation.invariant})`);
      break;
    }
  }
  report(results, Number(process.hrtime.bigint() - started) / 1e6);
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
