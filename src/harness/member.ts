// One `concord server` member as a real process: its own detached process group (so a signal reaches everything
// the member started, and SIGSTOP freezes all of it), output appended to a log file, restartable with the same
// flags on the same data directory (a restart is a real recovery from the WAL and snapshots).
//
// Every live group is SIGKILLed when this process exits, whatever the reason (a failed test, a crash, Ctrl-C of a
// harness user that exits): members are never left behind holding ports and data directories.

import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import type { ConcordCommand } from "./command.js";
import { MEMBER_NODE_FLAGS } from "../server/member-node-flags.js";

export interface MemberExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the harness asked for it (stop, kill); false for a member that exited on its own. */
  requested: boolean;
}

export interface MemberProcessOptions {
  name: string;
  command: ConcordCommand;
  /** Flags after `concord server`; the same on every start. */
  serverArgs: readonly string[];
  logFile: string;
  /** Added to this process's environment. */
  env?: Readonly<Record<string, string>>;
  /** Called when an incarnation exits, requested or not. */
  onExit?: (exit: MemberExit) => void;
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;

function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const g of liveGroups) signalGroup(g, "SIGKILL");
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

export class MemberProcess {
  readonly name: string;
  private child: ChildProcess | null = null;
  private exit: Promise<MemberExit> = Promise.resolve({ code: null, signal: null, requested: true });
  private stopRequested = false;
  private frozen = false;

  constructor(private readonly opts: MemberProcessOptions) {
    this.name = opts.name;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** A stop or kill was sent and the process has not exited yet. */
  get stopping(): boolean {
    return this.child !== null && this.stopRequested;
  }

  /** Stopped by SIGSTOP (pause) and not yet resumed. */
  get paused(): boolean {
    return this.frozen;
  }

  /** The running incarnation's pid (its process group id too). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves when the current (or last) incarnation has exited. */
  get exited(): Promise<MemberExit> {
    return this.exit;
  }

  start(): void {
    if (this.child) throw new Error(`member ${this.name} is already running (pid ${this.child.pid})`);
    const { command, serverArgs, logFile, env } = this.opts;
    const log = fs.openSync(logFile, "a");
    let child: ChildProcess;
    try {
      fs.writeSync(log, `\n### harness: starting ${this.name} at ${new Date().toISOString()}\n`);
      child = spawn(command.node ?? process.execPath, [...MEMBER_NODE_FLAGS, ...command.nodeArgs, "server", ...serverArgs], {
        cwd: command.cwd,
        detached: true,
        stdio: ["ignore", log, log],
        env: env ? { ...process.env, ...env } : process.env,
      });
    } finally {
      fs.closeSync(log);
    }
    const pid = child.pid;
    if (pid === undefined)
      throw new Error(`could not start member ${this.name}: ${command.node ?? process.execPath} did not spawn`);
    trackGroup(pid);
    this.child = child;
    this.stopRequested = false;
    this.frozen = false;
    this.exit = new Promise<MemberExit>((resolve) =>
      child.once("exit", (code, signal) => {
        // Whatever the member started dies with it, so no port or data directory stays held.
        signalGroup(pid, "SIGKILL");
        liveGroups.delete(pid);
        if (this.child === child) {
          this.child = null;
          this.frozen = false;
        }
        const exit = { code, signal, requested: this.stopRequested };
        this.opts.onExit?.(exit);
        resolve(exit);
      }),
    );
  }

  /** Send `signal` to the member's process group (running members only). */
  signal(signal: NodeJS.Signals): void {
    if (this.child?.pid !== undefined) signalGroup(this.child.pid, signal);
  }

  pause(): void {
    if (!this.child) return;
    this.signal("SIGSTOP");
    this.frozen = true;
  }

  resume(): void {
    if (!this.child) return;
    this.signal("SIGCONT");
    this.frozen = false;
  }

  /**
   * Send `signal` to the group and wait for the exit; SIGKILL after `graceMs`. A paused member is resumed so it
   * can act on the signal. Resolves at once when not running.
   */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 20_000): Promise<MemberExit | undefined> {
    const child = this.child;
    if (!child) return undefined;
    this.stopRequested = true;
    this.signal(signal);
    if (this.frozen) this.resume();
    const timer = setTimeout(() => signalGroup(child.pid!, "SIGKILL"), graceMs);
    try {
      return await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): Promise<MemberExit | undefined> {
    return this.stop("SIGKILL");
  }

  /** The last `lines` lines of the member's log (every incarnation's output is appended to it). */
  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.opts.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}
