// npm run sim:mutants [-- --only NAME,NAME] [--jobs J]
// Runs every mutant of sim/mutants.ts through the seeds npm test runs (sim/seeds.ts) and reports the seed that
// caught it; exits 1 if any mutant survives them all (the simulator would be blind to that broken rule).

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { MUTANTS } from "./mutants.js";
import { SEEDS_IN_TESTS } from "./seeds.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const program = new Command()
  .name("sim:mutants")
  .description("break host and core rules on purpose; every one must be caught within the seeds npm test runs")
  .option("--only <names>", `comma-separated mutants (default: all of ${Object.keys(MUTANTS).join(", ")})`)
  .option("--jobs <n>", "mutants run at once", (v) => Number(v), Math.max(1, os.availableParallelism()))
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ only?: string; jobs: number }>();
const names = opts.only ? opts.only.split(",") : Object.keys(MUTANTS);
for (const n of names) if (!MUTANTS[n]) program.error(`unknown mutant ${JSON.stringify(n)}; accepted: ${Object.keys(MUTANTS).join(", ")}`);

/** A copy of src/ and sim/ with the mutant's patches applied; returns its root. */
function prepare(name: string): string {
  const root = path.join(os.tmpdir(), `concord-sim-mutant-${name}`);
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  for (const part of ["src", "sim"]) fs.cpSync(path.join(repo, part), path.join(root, part), { recursive: true });
  for (const file of ["package.json", "tsconfig.json"]) fs.copyFileSync(path.join(repo, file), path.join(root, file));
  fs.symlinkSync(path.join(repo, "node_modules"), path.join(root, "node_modules"), "dir");
  for (const [i, p] of MUTANTS[name].patches.entries()) {
    const target = path.join(root, p.file);
    const source = fs.readFileSync(target, "utf8");
    const matches = source.split(p.find).length - 1;
    if (matches !== 1) throw new Error(`mutant ${name}: patch ${i + 1} matches ${matches} times in ${p.file} (expected once); update sim/mutants.ts`);
    fs.writeFileSync(target, source.replace(p.find, p.replace));
  }
  return root;
}

interface Outcome {
  name: string;
  caughtAt: number | null;
  invariant: string;
  seconds: number;
}

function run(name: string): Promise<Outcome> {
  const root = prepare(name);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "sim/cli.ts"), "--seeds", String(SEEDS_IN_TESTS), "--stop", "--jobs", "1"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", () => {
      const m = /stopped at the first violation: seed (\d+) \((.*)\)/.exec(out);
      fs.rmSync(root, { recursive: true, force: true });
      resolve({ name, caughtAt: m ? Number(m[1]) : null, invariant: m ? m[2] : out.trim().split("\n").slice(-3).join(" / "), seconds: (Date.now() - started) / 1000 });
    });
  });
}

const outcomes: Outcome[] = [];
const queue = [...names];
await Promise.all(
  Array.from({ length: Math.min(opts.jobs, queue.length) }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const o = await run(name);
      outcomes.push(o);
      console.log(
        o.caughtAt !== null
          ? `caught   ${o.name}: seed ${o.caughtAt} (${o.invariant}) in ${o.seconds.toFixed(0)} s — ${MUTANTS[o.name].description}`
          : `SURVIVED ${o.name}: no violation in seeds 1..${SEEDS_IN_TESTS} (${o.seconds.toFixed(0)} s) — ${MUTANTS[o.name].description}\n  ${o.invariant}`,
      );
    }
  }),
);
const survived = outcomes.filter((o) => o.caughtAt === null);
console.log(`\n${outcomes.length - survived.length} of ${outcomes.length} mutants caught within the ${SEEDS_IN_TESTS} seeds npm test runs`);
if (survived.length > 0) process.exitCode = 1;
