// Every example in README.md and docs/*.md runs as written, against a real 3-member cluster (ports 8950-8971):
// `ts` blocks run as programs (with `from "concord"` pointing at src/index.ts), `sh` blocks line by line with
// `concord` being the real CLI, and `json` blocks are tokens files (arrays) or config files (objects) the members
// accept. The docs use the dev cluster's ports 7100/7110/7120; the test's cluster stands in for it under its own
// ports. A line that is not run must be listed in NOT_RUN with the reason, so no new example goes untried.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTokens } from "../../src/server/tokens.js";
import { loadConfig } from "../../src/server/config.js";
import { LocalCluster } from "../../src/harness/index.js";
import { waitUntil as waitFor } from "../../src/harness/index.js";
import { NODE_ARGS, REPO } from "./cli.js";

const BASE_PORT = 8950;

/** Lines of `sh` examples the test does not run, and why. */
const NOT_RUN: Record<string, string> = {
  "npm ci && npm start": "starts the dev cluster on the docs' ports; the test's cluster stands in for it",
  "npm ci && npm test": "is the test suite itself",
  "npx tsx cli/concord.ts dev --fresh":
    "starts the dev cluster on the docs' ports; the test's cluster stands in for it",
  'alias concord="npx tsx $PWD/cli/concord.ts"': "the test runs `concord` as the CLI from source itself",
  "npm run sim -- --seeds 2000": "2000 simulated runs take minutes; `npm run sim -- --seed 1234 --nodes 5` runs one",
  "npm run sim:mutants": "runs a few hundred simulated seeds per broken rule, minutes long; .ci/run runs it",
  "npm run check -- --model register history.jsonl":
    "history.jsonl stands for the user's file; test/check covers the CLI",
  "npm run bench -- put --concurrency 64": "a 10-second load run against the dev cluster's ports",
  "npm run bench:compare": "downloads and runs etcd, minutes long",
  "npm run bench:raft": "a benchmark, minutes long",
  "npm run bench:latency": "a benchmark: starts clusters on its own ports, a minute long",
  "npm run bench:scale": "starts etcd and 10,000 sessions, minutes long",
};

interface Block {
  where: string;
  lang: string;
  text: string;
}

function docFiles(): string[] {
  const docs = fs
    .readdirSync(path.join(REPO, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`);
  return ["README.md", ...docs.sort()];
}

/** The fenced code blocks of a Markdown file. */
function blocks(file: string): Block[] {
  const lines = fs.readFileSync(path.join(REPO, file), "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    out.push({ where: `${file}:${start + 1}`, lang: open[1], text: body.join("\n") });
  }
  return out;
}

/** Removes a trailing `# comment` (outside quotes). */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

/** The commands of an `sh` block: comments dropped, `\` continuations joined. */
function commands(text: string): string[] {
  const joined = text.replace(/\\\n/g, " ");
  return joined
    .split("\n")
    .map(stripComment)
    .filter((l) => l.trim() !== "");
}

/** The docs' dev-cluster ports, moved to the test's cluster. */
function remapPorts(s: string): string {
  return s.replace(/127\.0\.0\.1:71([0-2])0\b/g, (_m, i: string) => `127.0.0.1:${BASE_PORT + Number(i) * 10}`);
}

/** Commands the docs run in a terminal of their own and stop with Ctrl-C. */
function runsUntilInterrupted(cmd: string): boolean {
  if (/\bconcord watch\b/.test(cmd)) return !cmd.includes("--count");
  if (/\bconcord elect \S+ --observe\b/.test(cmd)) return !cmd.includes("--count");
  // Holding a lock or leading an election runs until interrupted; `lock|elect status|list` inspect and exit.
  if (/\bconcord (elect (?!status\b|list\b)\S+ \S+|lock (?!status\b|list\b)\S+)/.test(cmd)) return !cmd.includes(" -- ");
  if (/\bconcord lease keepalive\b/.test(cmd)) return !cmd.includes("--once");
  return false;
}

interface Run {
  code: number | null;
  out: string;
  err: string;
}

let cluster: LocalCluster;
let scratch: string;

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, basePort: BASE_PORT, logLevel: "warn" });
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "concord-doc-examples-"));
});

afterAll(async () => {
  await cluster?.teardown();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

/**
 * Runs one shell command line with `concord` defined as the CLI, in its own process group. With `interrupt`, waits
 * for its first line of output and then sends SIGINT to the group, as Ctrl-C in a terminal would.
 */
async function shell(line: string, env: Record<string, string>, interrupt: boolean): Promise<Run> {
  const concord = [process.execPath, ...NODE_ARGS].map((a) => `'${a}'`).join(" ");
  const child = spawn("bash", ["-c", `concord() { ${concord} "$@"; }\n${line}`], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const killer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 60_000);
  try {
    if (interrupt) {
      await waitFor(`output from: ${line}`, 30_000, () => (out.includes("\n") ? true : undefined));
      process.kill(-child.pid!, "SIGINT");
    }
    return { code: await exited, out, err };
  } finally {
    clearTimeout(killer);
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // the group is gone
    }
  }
}

describe("documentation examples", () => {
  const all = docFiles().flatMap(blocks);

  it("every code block is a ts program, an sh session, a tokens file, or notation without a language", () => {
    for (const b of all) expect(["", "ts", "sh", "json"], b.where).toContain(b.lang);
    expect(all.filter((b) => b.lang === "ts").length).toBeGreaterThanOrEqual(2);
  });

  it("every sh line runs and succeeds (commands stopped with Ctrl-C exit 0 when interrupted)", async () => {
    let ran = 0;
    for (const b of all.filter((x) => x.lang === "sh")) {
      // Each block is a fresh terminal session: `export` lines carry over to the lines after them.
      const env: Record<string, string> = { CONCORD_ENDPOINTS: remapPorts("ws://127.0.0.1:7100") };
      for (const cmd of commands(b.text)) {
        if (cmd in NOT_RUN) continue;
        const exported = /^export (\w+)=(\S+)$/.exec(cmd);
        if (exported) {
          env[exported[1]] = remapPorts(exported[2]);
          continue;
        }
        const line = remapPorts(cmd);
        const r = await shell(line, env, runsUntilInterrupted(cmd));
        expect(r.code, `${b.where}: ${cmd}\nstdout: ${r.out}\nstderr: ${r.err}`).toBe(0);
        ran++;
      }
    }
    expect(ran).toBeGreaterThanOrEqual(12);
  }, 300_000); // every sh line of the docs in turn, each a CLI process (1–3 s each; more under load)

  it("every ts block runs to completion as a program", async () => {
    const index = pathToFileURL(path.join(REPO, "src/index.ts")).href;
    for (const [i, b] of all.filter((x) => x.lang === "ts").entries()) {
      expect(b.text, b.where).toMatch(/from "concord"/);
      const file = path.join(scratch, `example-${i}.mts`);
      fs.writeFileSync(file, b.text.replace(/from "concord"/g, `from ${JSON.stringify(index)}`));
      const r = await shell(
        `exec '${process.execPath}' --import tsx '${file}'`,
        { CONCORD_ENDPOINTS: cluster.endpoints().join(",") },
        false,
      );
      expect(r.code, `${b.where}\nstdout: ${r.out}\nstderr: ${r.err}`).toBe(0);
      expect(r.err, b.where).toBe("");
    }
  });

  it("every json block is a tokens file or a config file members accept", () => {
    const json = all.filter((b) => b.lang === "json");
    const configs = json.filter((b) => !Array.isArray(JSON.parse(b.text)));
    expect(json.length - configs.length).toBeGreaterThanOrEqual(1);
    expect(configs.length).toBeGreaterThanOrEqual(1);
    for (const b of json) if (!configs.includes(b)) expect(parseTokens(b.text, b.where).size, b.where).toBeGreaterThan(0);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-doc-config-"));
    try {
      for (const [i, b] of configs.entries()) {
        const file = path.join(dir, `config-${i}.json`);
        fs.writeFileSync(file, b.text);
        // The docs give the peer secret in the environment, as they advise.
        const config = loadConfig(["--config", file], { CONCORD_PEER_SECRET: "doc-example-secret-0123" }, dir);
        expect(config.configFile, b.where).toBe(file);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
