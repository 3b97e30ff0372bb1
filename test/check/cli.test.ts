// `concord check` as a real process: `npx tsx cli/check.ts …`, exit codes and output.

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonl } from "./helpers.js";
import type { Line } from "./helpers.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** At most this many CLI processes at once: the machine's two cores are shared. */
const MAX_CONCURRENT = 2;
let running = 0;
const waiting: Array<() => void> = [];

async function runCli(args: string[]): Promise<Run> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((wake) => waiting.push(wake));
  running++;
  try {
    return await spawnCli(args);
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function spawnCli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile("npx", ["tsx", "cli/check.ts", ...args], { cwd: repoRoot, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const stale: Line[] = [
  [1, "invoke", "write", 1],
  [1, "ok", "write", 1],
  [2, "invoke", "read"],
  [2, "ok", "read", 0],
];
const fine: Line[] = [
  [1, "invoke", "write", 1],
  [2, "invoke", "read"],
  [2, "ok", "read", 1],
  [1, "ok", "write", 1],
];
function hard(n: number): Line[] {
  const lines: Line[] = [];
  for (let p = 0; p < n; p++) lines.push([p, "invoke", "write", p + 1]);
  for (let p = 0; p < n; p++) lines.push([p, "ok", "write", p + 1]);
  lines.push([n, "invoke", "read"], [n, "ok", "read", -1]);
  return lines;
}

describe("cli/check.ts", () => {
  let dir: string;
  const runs = new Map<string, Promise<Run>>();
  const file = (name: string) => join(dir, name);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "concord-check-"));
    writeFileSync(file("stale.jsonl"), jsonl(stale));
    writeFileSync(file("fine.jsonl"), jsonl(fine));
    writeFileSync(file("hard.jsonl"), jsonl(hard(24)));
    writeFileSync(
      file("readsNull.jsonl"),
      jsonl([
        [1, "invoke", "read"],
        [1, "ok", "read", null],
      ]),
    );
    writeFileSync(
      file("mutex.jsonl"),
      jsonl([
        [1, "invoke", "acquire"],
        [1, "ok", "acquire"],
        [2, "invoke", "acquire"],
        [2, "ok", "acquire"],
      ]),
    );
    writeFileSync(file("broken.jsonl"), `${jsonl(fine.slice(0, 1))}{"process":2,"type":"done","f":"read"}\n`);
    // Queue every run now (two at a time): each pays tsx's start-up, so they overlap.
    const cases: Record<string, string[]> = {
      fine: ["--model", "register", "--initial", "0", file("fine.jsonl")],
      nullInitial: ["--model", "register", "--initial", "null", file("readsNull.jsonl")],
      mutex: ["--model", "mutex", "--initial", "false", file("mutex.jsonl")],
      stale: ["--model", "register", "--initial", "0", file("stale.jsonl")],
      staleNullInitial: ["--model", "register", file("stale.jsonl")],
      json: ["--model", "register", "--initial", "0", "--json", file("stale.jsonl")],
      hard: ["--model", "register", "--initial", "0", "--budget-ms", "50", file("hard.jsonl")],
      noModel: [file("fine.jsonl")],
      badModel: ["--model", "queue", file("fine.jsonl")],
      badInitial: ["--model", "register", "--initial", "{nope", file("fine.jsonl")],
      broken: ["--model", "register", file("broken.jsonl")],
      missing: ["--model", "register", file("absent.jsonl")],
      wrongModel: ["--model", "mutex", file("fine.jsonl")],
    };
    for (const [name, args] of Object.entries(cases)) runs.set(name, runCli(args));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("exits 0 with a one-line verdict for a linearizable history", async () => {
    const run = await runs.get("fine")!;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^linearizable: register, 2 operations, 1 key, \d+ search steps\n$/);
  });

  it("passes --initial through exactly, null included", async () => {
    const run = await runs.get("nullInitial")!;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^linearizable: register, 1 operation,/);
  });

  it("checks the mutex model", async () => {
    const run = await runs.get("mutex")!;
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("state after the prefix: held by p1");
  });

  it("exits 1 and prints the failure window for a non-linearizable one", async () => {
    const run = await runs.get("stale")!;
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("not-linearizable: register, 2 operations, 1 of 1 key failed");
    expect(run.stdout).toContain("state after the prefix: value 1");
    expect(run.stdout).toContain("p2 read null → ok 0 (lines 3–4)");
    expect(run.stdout).toContain("window: history lines 3–4");
    // The default initial value is null: the read of 0 is then impossible from the start too.
    expect((await runs.get("staleNullInitial")!).code).toBe(1);
  });

  it("prints the result as JSON with --json", async () => {
    const run = await runs.get("json")!;
    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as { verdict: string; failure: { blocked: { output: unknown } } };
    expect(result.verdict).toBe("not-linearizable");
    expect(result.failure.blocked.output).toBe(0);
  });

  it("exits 2 when the time budget is spent", async () => {
    const run = await runs.get("hard")!;
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(/^unknown: register/);
  });

  it("exits 64 on usage errors with a clear message", async () => {
    const noModel = await runs.get("noModel")!;
    expect(noModel.code).toBe(64);
    expect(noModel.stderr).toContain("required option '--model <model>' not specified");
    const badModel = await runs.get("badModel")!;
    expect(badModel.code).toBe(64);
    expect(badModel.stderr).toContain("Allowed choices are register, mutex, fenced-mutex");
    const badInitial = await runs.get("badInitial")!;
    expect(badInitial.code).toBe(64);
    expect(badInitial.stderr).toContain("not valid JSON: {nope");
  });

  it("exits 65 on a malformed history or operations the model cannot judge, 66 on an unreadable file", async () => {
    const broken = await runs.get("broken")!;
    expect(broken.code).toBe(65);
    expect(broken.stderr).toContain('history line 2: "type" must be one of invoke, ok, fail, info; got "done"');
    const wrongModel = await runs.get("wrongModel")!;
    expect(wrongModel.code).toBe(65);
    expect(wrongModel.stderr).toContain('unknown operation "write"; a mutex accepts acquire, release');
    const missing = await runs.get("missing")!;
    expect(missing.code).toBe(66);
    expect(missing.stderr).toContain("cannot read");
  });
});
