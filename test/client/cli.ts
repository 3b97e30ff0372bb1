// Running `concord …` CLI commands in tests (each in its own process group, output collected), and a suite of CLI
// tests around one real 3-member cluster (src/harness).

import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { LocalCluster, harnessCommand } from "../../src/harness/index.js";
import { connect, type Client } from "../../src/index.js";

/** The repository the tests run from, and the node arguments that run its `concord` CLI (harnessCommand). */
export const REPO = harnessCommand().cwd;
export const NODE_ARGS: readonly string[] = harnessCommand().nodeArgs;

/** A `concord …` CLI process in its own process group, with its output collected. */
export interface CliProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export function runCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const command = harnessCommand();
  const child = spawn(process.execPath, [...command.nodeArgs, ...args], {
    cwd: command.cwd,
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

/**
 * A suite's cluster for CLI end-to-end tests: started before all tests, with a client, a scratch directory and the
 * CLI processes it ran (killed after all, with the process groups of children that outlived their CLI).
 */
export class CliSuite {
  cluster!: LocalCluster;
  client!: Client;
  dir!: string;
  /** Process groups to SIGKILL at the end: children whose `concord` was SIGKILLed and so could not stop them. */
  readonly orphans: number[] = [];
  private readonly procs: CliProcess[] = [];

  constructor(basePort: number, name: string) {
    beforeAll(async () => {
      this.cluster = await LocalCluster.start({ size: 3, basePort, logLevel: "warn" });
      this.client = await connect(this.cluster.endpoints());
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
      await this.cluster?.teardown();
      if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    });
  }

  /** `concord ARGS` against this suite's cluster. */
  cli(args: string[]): CliProcess {
    const p = runCli(args, { CONCORD_ENDPOINTS: this.cluster.endpoints().join(",") });
    this.procs.push(p);
    return p;
  }
}
