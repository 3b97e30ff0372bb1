// The supervisor's end of the command watchdog (./main.ts): starts it in a session of its own and feeds it.

import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { encodeMessage, type WatchdogMessage } from "./protocol.js";

/** main.ts next to this file when run from source (under tsx), main.js when built. */
const MAIN = fileURLToPath(new URL(`./main${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface WatchdogExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Watchdog {
  /** Resolves once it listens: a command started after that is guarded from its first instant. */
  readonly ready: Promise<void>;
  /** Resolves when the watchdog process has exited (or could not be started). */
  readonly exited: Promise<WatchdogExit>;
  private readonly proc: ChildProcess;
  private closing = false;

  /**
   * Starts the watchdog process; it guards nothing until given a deadline and a group. Start it early (while
   * waiting for the hold): it takes a Node start-up. `label` prefixes its messages on our stderr.
   */
  constructor(label: string, graceMs: number, readyTimeoutMs = 30_000) {
    // The same node and loader (tsx when run from source), but never a second inspector on the same port.
    const execArgv = process.execArgv.filter((a) => !/^--(inspect|debug)/.test(a));
    const proc = spawn(process.execPath, [...execArgv, MAIN, label, String(Math.round(graceMs))], {
      // Its own session and process group: a signal to ours (Ctrl-C, Ctrl-Z, SIGSTOP or SIGKILL to the group)
      // must not reach it; and not in the command's group either, which it is there to kill.
      detached: true,
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.proc = proc;
    this.exited = new Promise((resolve) => {
      proc.once("exit", (code, signal) => resolve({ code, signal }));
      // Not started at all (no exit event follows).
      proc.once("error", () => proc.pid === undefined && resolve({ code: null, signal: null }));
    });
    // Writing after it exited: EPIPE; a failed kill of an exited process: an error event. Its exit is what
    // matters, and `exited` reports it.
    proc.stdin!.on("error", () => {});
    proc.on("error", () => {});
    this.ready = new Promise<void>((resolve, reject) => {
      let out = "";
      const settle = () => {
        clearTimeout(timer);
        proc.off("error", onError);
        proc.off("exit", onExit);
        proc.stdout!.off("data", onData);
        proc.stdout!.resume();
      };
      const fail = (why: string) => {
        settle();
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
        reject(new Error(`cannot start the watchdog process (${MAIN}): ${why}`));
      };
      const onError = (e: Error) => fail(e.message);
      const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
        fail(`it exited (${signal ?? `code ${code}`})`);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (!out.includes("ready\n")) return;
        settle();
        resolve();
      };
      const timer = setTimeout(() => fail(`not ready within ${readyTimeoutMs} ms`), readyTimeoutMs);
      proc.on("error", onError);
      proc.on("exit", onExit);
      proc.stdout!.on("data", onData);
    });
    // Whoever awaits `ready` gets the failure; until then it is not an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** The hold is vouched for until `at` (monotonic ms). */
  hold(at: number): void {
    this.send({ kind: "hold", at });
  }

  /** The hold is over: the group dies at `at` at the latest, and nothing extends that any more. */
  final(at: number): void {
    this.send({ kind: "final", at });
  }

  /** The command's process group (its pid), once started. */
  guard(pgid: number): void {
    this.send({ kind: "group", pgid });
  }

  /** True once close() was called: an exit after that is expected. */
  get closed(): boolean {
    return this.closing;
  }

  /** No command runs (any more): tells the watchdog to exit quietly and waits until it did. */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.send({ kind: "done" });
      this.proc.stdin!.end();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 5000)));
      if ((await Promise.race([this.exited, late])) === "late") this.proc.kill("SIGKILL");
      clearTimeout(timer);
    }
    await this.exited;
  }

  private send(m: WatchdogMessage): void {
    if (this.proc.stdin!.writable) this.proc.stdin!.write(encodeMessage(m));
  }
}
