// A real 3-member cluster of `concord server` processes on loopback for the client's end-to-end tests, with
// per-member control (SIGKILL, restart) and reliable teardown (each member is its own process group).

import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { devClusterLayout } from "../../cli/dev.js";
import { connect, type Client } from "../../src/index.js";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CLI = path.join(REPO, "cli/concord.ts");
/** `node --import tsx cli/concord.ts …`: tsx resolved from the repo, so it works whatever vitest's execArgv is. */
export const NODE_ARGS = ["--import", "tsx", CLI];

export interface TestMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  process: ChildProcess | null;
}

export class TestCluster {
  readonly members: TestMember[];
  readonly endpoints: string;
  readonly dataRoot: string;
  private readonly initialCluster: string;
  private readonly initialClusterClients: string;

  constructor(basePort: number, nodes = 3) {
    const layout = devClusterLayout({ nodes, basePort });
    this.members = layout.members.map((m) => ({ ...m, process: null }));
    this.endpoints = layout.endpoints;
    this.initialCluster = layout.initialCluster;
    this.initialClusterClients = layout.initialClusterClients;
    this.dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), "concord-client-test-"));
  }

  async start(): Promise<void> {
    for (const m of this.members) this.startMember(m);
    await this.waitForLeader(20_000);
  }

  startMember(m: TestMember): void {
    const log = fs.openSync(path.join(this.dataRoot, `${m.name}.log`), "a");
    m.process = spawn(
      process.execPath,
      [
        ...NODE_ARGS,
        "server",
        "--name",
        m.name,
        "--data-dir",
        path.join(this.dataRoot, m.name),
        "--client-url",
        m.clientUrl,
        "--peer-url",
        m.peerUrl,
        "--initial-cluster",
        this.initialCluster,
        "--initial-cluster-clients",
        this.initialClusterClients,
        "--log-level",
        "warn",
      ],
      { cwd: REPO, stdio: ["ignore", log, log], detached: true },
    );
    fs.closeSync(log);
  }

  /** The current leader's member, as reported by the members' /status. */
  async leader(): Promise<TestMember | null> {
    for (const m of this.members) {
      if (!m.process) continue;
      try {
        const r = await fetch(m.clientUrl.replace("ws://", "http://") + "/status", {
          signal: AbortSignal.timeout(1000),
        });
        const s = (await r.json()) as { role: string; leader: string | null };
        if (s.leader) return this.members.find((x) => x.name === s.leader) ?? null;
      } catch {
        // down or starting
      }
    }
    return null;
  }

  async waitForLeader(timeoutMs: number, not?: string): Promise<TestMember> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const l = await this.leader();
      if (l && l.name !== not && l.process) return l;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no leader${not ? ` other than ${not}` : ""} within ${timeoutMs} ms; logs in ${this.dataRoot}`);
  }

  kill(m: TestMember, signal: NodeJS.Signals = "SIGKILL"): void {
    const p = m.process;
    m.process = null;
    if (p?.pid && p.exitCode === null) {
      try {
        process.kill(-p.pid, signal);
      } catch {
        // already gone
      }
    }
  }

  /** Sends a signal to a member without forgetting it (SIGSTOP / SIGCONT). */
  signal(m: TestMember, signal: NodeJS.Signals): void {
    if (m.process?.pid) process.kill(-m.process.pid, signal);
  }

  async stop(): Promise<void> {
    const waits = this.members.map((m) => {
      const p = m.process;
      if (!p || p.exitCode !== null) return Promise.resolve();
      return new Promise<void>((r) => {
        p.once("exit", () => r());
        setTimeout(r, 3000).unref();
      });
    });
    for (const m of this.members) {
      this.signal(m, "SIGCONT");
      this.kill(m);
    }
    await Promise.all(waits);
    fs.rmSync(this.dataRoot, { recursive: true, force: true });
  }
}

/** A `concord …` CLI process in its own process group, with its output collected. */
export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export function runCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [...NODE_ARGS, ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on("exit", (code, signal) => r({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill(signal: NodeJS.Signals = "SIGKILL") {
      if (child.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          // gone
        }
      }
    },
  };
}

/** Polls `check` every 50 ms until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A suite's cluster for CLI end-to-end tests: started before all tests, with a client, a scratch directory and the
 * CLI processes it ran (killed after all, with the process groups of children that outlived their CLI).
 */
export class CliSuite {
  cluster!: TestCluster;
  client!: Client;
  dir!: string;
  /** Process groups to SIGKILL at the end: children whose `concord` was SIGKILLed and so could not stop them. */
  readonly orphans: number[] = [];
  private readonly procs: CliProcess[] = [];

  constructor(basePort: number, name: string) {
    beforeAll(async () => {
      this.cluster = new TestCluster(basePort);
      await this.cluster.start();
      this.client = await connect(this.cluster.endpoints);
      this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `concord-${name}-`));
    });
    afterAll(async () => {
      for (const p of this.procs) p.kill();
      for (const pid of this.orphans) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      await this.client?.close();
      await this.cluster?.stop();
      if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    });
  }

  /** `concord ARGS` against this suite's cluster. */
  cli(args: string[]): CliProcess {
    const p = runCli(args, { CONCORD_ENDPOINTS: this.cluster.endpoints });
    this.procs.push(p);
    return p;
  }
}
