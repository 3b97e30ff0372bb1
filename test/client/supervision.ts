// Helpers for the tests of supervised commands (`concord lock/elect … -- CMD` and its watchdog): a command that
// writes time-stamped lines and ignores SIGTERM, and a look at the process table (Linux /proc).

import fs from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { waitUntil as waitFor } from "../../src/harness/index.js";
import type { CliProcess } from "./cli.js";

/**
 * `sh` that writes its pid to `pidFile`, then the wall-clock time in ms to `log` every 50 ms until SIGKILLed
 * (SIGTERM is ignored, also by the `date` and `sleep` it starts, which share its process group).
 */
export function stampingCommand(log: string, pidFile: string): string[] {
  return ["sh", "-c", `echo $$ > ${pidFile}; trap '' TERM; while :; do date +%s%3N >> ${log}; sleep 0.05; done`];
}

/** `sh` that writes the wall-clock time in ms at which it started to `file`. */
export function startStampCommand(file: string): string[] {
  return ["sh", "-c", `date +%s%3N > ${file}`];
}

/** The numbers in a file of one number a line (absent file: none). */
export function readStamps(file: string): number[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number);
}

/** The pid in a file once something was written there, else undefined (for waitFor). */
export function readPid(file: string): number | undefined {
  const s = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : "";
  return s ? Number(s) : undefined;
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  /** "R", "S", "T" (stopped), "Z" (exited, not yet reaped), … */
  state: string;
  cmdline: string;
}

/** Every process on the machine, from /proc. */
export function processes(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      // "pid (comm) state ppid pgrp …", where comm may itself hold spaces and parentheses.
      const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cmdline = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ").trim();
      out.push({ pid: Number(d), ppid: Number(ppid), pgrp: Number(pgrp), state, cmdline });
    } catch {
      // it exited while we looked
    }
  }
  return out;
}

/** Processes of group `pgid` that can still run: not exited (a zombie only waits for its parent to reap it). */
export function liveGroupMembers(pgid: number): ProcessInfo[] {
  return processes().filter((p) => p.pgrp === pgid && p.state !== "Z" && p.state !== "X");
}

/** True while `pid` exists and has not exited. */
export function isLive(pid: number): boolean {
  return processes().some((p) => p.pid === pid && p.state !== "Z" && p.state !== "X");
}

const WATCHDOG = /watchdog\/main\.[jt]s/;

/** The watchdog process a `concord lock/elect` process started, if it runs. */
export function watchdogOf(supervisorPid: number): ProcessInfo | undefined {
  return processes().find((p) => p.ppid === supervisorPid && WATCHDOG.test(p.cmdline));
}

/** Watchdogs still running that were started by `concord` processes of a cluster (its CONCORD_ENDPOINTS). */
export function liveWatchdogs(endpoints: string): ProcessInfo[] {
  return processes().filter((p) => {
    if (!WATCHDOG.test(p.cmdline) || p.state === "Z" || p.state === "X") return false;
    try {
      return fs.readFileSync(`/proc/${p.pid}/environ`, "utf8").split("\0").includes(`CONCORD_ENDPOINTS=${endpoints}`);
    } catch {
      return false;
    }
  });
}

export interface HandoverScenario {
  /** Scratch directory for the logs. */
  dir: string;
  /** The cluster's endpoints (to find the watchdogs of its `concord` processes). */
  endpoints: string;
  /** Starts the first holder (`concord lock/elect … -- CMD`) running `command`. */
  first: (command: string[]) => CliProcess;
  /** Starts the second holder running `command`; it waits for the first's hold. */
  second: (command: string[]) => CliProcess;
  /** Resolves true once the second holder waits in the queue (polled). */
  secondWaits: () => Promise<boolean>;
  /** What happens to the first holder's `concord` process (not to its command or watchdog). */
  signal: "SIGSTOP" | "SIGKILL";
}

export interface HandoverResult {
  firstProcess: CliProcess;
  watchdogPid: number;
  /** Wall-clock ms: when the first `concord` was signalled, its command's last line, the second's start. */
  signalledAt: number;
  lastLine: number;
  secondStart: number;
}

/**
 * The first holder's `concord` process is frozen or killed while its command runs (ignoring SIGTERM, stamping
 * lines); the second holder gets the hold once the lease expires on the servers and runs its command. Asserts the
 * safety property: no line of the first command is later than the second command's start, and no process of the
 * first command's group is left running by then; and that neither holder's watchdog is left running.
 */
export async function handover(s: HandoverScenario): Promise<HandoverResult> {
  const log = path.join(s.dir, `${s.signal}-first.log`);
  const pidFile = path.join(s.dir, `${s.signal}-first.pid`);
  const startFile = path.join(s.dir, `${s.signal}-second.start`);
  const firstProcess = s.first(stampingCommand(log, pidFile));
  const pgid = await waitFor("the first command", 20_000, () => readPid(pidFile));
  await waitFor("the first command's lines", 10_000, () => (readStamps(log).length > 0 ? true : undefined));
  const watchdogPid = (await waitFor("the first holder's watchdog", 5000, () => watchdogOf(firstProcess.child.pid!)))
    .pid;
  const second = s.second(startStampCommand(startFile));
  await waitFor("the second holder to wait", 15_000, async () => ((await s.secondWaits()) ? true : undefined));

  const signalledAt = Date.now();
  process.kill(-firstProcess.child.pid!, s.signal); // its whole process group: the watchdog is not in it
  const r = await second.exited;
  expect(r.code, second.stderr()).toBe(0);
  const [secondStart] = readStamps(startFile);
  const lines = readStamps(log);
  const lastLine = Math.max(...lines);
  expect(lastLine, "a line of the first command is later than the second command's start").toBeLessThanOrEqual(
    secondStart,
  );
  expect(liveGroupMembers(pgid), "processes of the first command's group still run").toEqual([]);
  await waitFor("the first holder's watchdog to exit", 5000, () => (isLive(watchdogPid) ? undefined : true));
  expect(liveWatchdogs(s.endpoints), "the second holder's watchdog outlived it").toEqual([]);
  return { firstProcess, watchdogPid, signalledAt, lastLine, secondStart };
}

/** Prints the measured margins (for the record; speed is never asserted). */
export function logMargins(what: string, ttlMs: number, r: HandoverResult): void {
  console.log(
    `${what} (TTL ${ttlMs} ms): after the signal, the first command's last line came at +${r.lastLine - r.signalledAt} ms, ` +
      `the second command started at +${r.secondStart - r.signalledAt} ms (${r.secondStart - r.lastLine} ms later)`,
  );
}
