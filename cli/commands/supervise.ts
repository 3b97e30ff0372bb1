// Running a command under a lock or a leadership: the child gets its own process group (so the whole tree it
// starts can be stopped together), our stdin is piped to it, and SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2
// are forwarded to its group.
//
// Invariant: the command's whole process group is gone before the servers could expire the hold's lease, whatever
// happens to this process (frozen, starved of CPU, killed). The bound is the lease's own deadline — one TTL after
// the last acknowledged keep-alive was sent, on our monotonic clock — minus a safety margin. A watchdog process in
// its own session (../watchdog/main.ts) holds it: we pass on the new bound at each renewal, and the watchdog
// SIGKILLs the group when the bound passes unrenewed, or stops it when we exit without saying the command ended.
// When the hold is lost while we run, the group gets SIGTERM at once and SIGKILL after the grace period, cut
// short at the bound.

import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import type { Lease } from "../../src/client/lease.js";
import { monotonicMs } from "../watchdog/protocol.js";
import { Watchdog } from "../watchdog/watchdog.js";
import { EXIT } from "./common.js";

const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];
/** Forwarded signals that, arriving before the command started, cancel it. */
const CANCELLING = new Set<NodeJS.Signals>(["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"]);

/** A lock hold or a leadership: what the command runs under. */
export interface Hold {
  /** Fires when the hold may be over. */
  lost: AbortSignal;
  lease: Lease;
}

/**
 * How long before the lease's client-side deadline the command's group must be dead: room for the watchdog's
 * timer and the SIGKILL running late on a busy machine, and for the servers' clocks running up to 2% faster than
 * ours. At most a quarter of the TTL, so that short leases keep most of their TTL.
 */
export function leaseSafetyMarginMs(ttlMs: number): number {
  return Math.min(ttlMs / 4, 250 + ttlMs / 50);
}

/**
 * Runs `argv` while `hold` lasts, guarded by `watchdog` (started with the same label and grace period, best while
 * waiting for the hold); closes the watchdog. Resolves with the exit code to propagate (128+N when killed by
 * signal N).
 */
export async function runSupervised(
  argv: string[],
  env: Record<string, string>,
  hold: Hold,
  watchdog: Watchdog,
  opts: { graceMs: number; label: string },
): Promise<number> {
  const { lease, lost } = hold;
  /** The instant (monotonic ms) by which the command's group must be dead, as far as we know now. */
  const bound = () => monotonicMs() + lease.remainingMs - leaseSafetyMarginMs(lease.ttlMs);

  let child: ChildProcess | null = null;
  let cancelledBy: NodeJS.Signals | null = null;
  const signalGroup = (sig: NodeJS.Signals) => {
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // the group is already gone
    }
  };
  const forwarders = FORWARDED.map((sig) => {
    const fn = () => {
      if (child) signalGroup(sig);
      else if (CANCELLING.has(sig)) cancelledBy ??= sig;
    };
    process.on(sig, fn);
    return [sig, fn] as const;
  });
  const stopForwarding = () => {
    for (const [sig, fn] of forwarders) process.off(sig, fn);
  };

  try {
    await watchdog.ready;
  } catch (e) {
    stopForwarding();
    throw e;
  }
  watchdog.hold(bound());
  const offRenewed = lease.onRenewed(() => watchdog.hold(bound()));
  if (cancelledBy !== null || lost.aborted) {
    stopForwarding();
    offRenewed();
    await watchdog.close();
    if (cancelledBy !== null) return 128 + (constants.signals[cancelledBy] ?? 0);
    console.error(`concord ${opts.label}: ${reasonOf(lost)}; the command was not started`);
    return EXIT.FAILED;
  }

  return new Promise((resolve) => {
    const started = spawn(argv[0], argv.slice(1), {
      stdio: ["pipe", "inherit", "inherit"],
      env: { ...process.env, ...env },
      detached: true,
    });
    child = started;
    // Guarded from here on: if we die before this line is written, the group was never named (one step).
    if (started.pid !== undefined) watchdog.guard(started.pid);

    const onLost = () => {
      const now = monotonicMs();
      const killAt = Math.min(now + opts.graceMs, bound());
      const killIn = Math.round(killAt - now);
      const how =
        killIn <= 0
          ? "SIGKILL now: its lease may expire at any moment"
          : `SIGTERM now, SIGKILL in ${killIn} ms` +
            (killIn < opts.graceMs ? " (--grace cut short: the lease may expire then)" : "");
      console.error(`concord ${opts.label}: ${reasonOf(lost)}; stopping the command (${how})`);
      watchdog.final(killAt);
      signalGroup(killIn <= 0 ? "SIGKILL" : "SIGTERM");
    };
    if (lost.aborted) onLost();
    else lost.addEventListener("abort", onLost, { once: true });

    // Without the watchdog nothing bounds the command if we stall: it must not run on unguarded.
    void watchdog.exited.then((r) => {
      if (watchdog.closed) return;
      if (r.code !== 0) {
        console.error(
          `concord ${opts.label}: the watchdog process ended (${r.signal ?? `code ${r.code}`}); killing the command`,
        );
      }
      signalGroup("SIGKILL");
    });

    // stdin: forwarded as a stream; EPIPE when the child does not read it is not an error.
    started.stdin.on("error", () => {});
    if (process.stdin.isTTY || !process.stdin.readableEnded) process.stdin.pipe(started.stdin);

    let finished = false;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      offRenewed();
      lost.removeEventListener("abort", onLost);
      stopForwarding();
      process.stdin.unpipe(started.stdin);
      process.stdin.pause();
      // Anything the child left behind in its group goes too.
      if (started.pid !== undefined) {
        try {
          process.kill(-started.pid, "SIGKILL");
        } catch {
          // no such group: everything already exited
        }
      }
      void watchdog.close().then(() => resolve(code));
    };
    started.on("error", (e) => {
      console.error(`concord ${opts.label}: cannot run ${argv[0]}: ${e.message}`);
      finish(127);
    });
    started.on("exit", (code, signal) => {
      finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}

function reasonOf(lost: AbortSignal): string {
  const r: unknown = lost.reason;
  return r instanceof Error ? r.message : String(r);
}

/** How `concord lock` and `concord elect` take, announce, run under and give up their hold. */
export interface HoldCommand<H extends Hold> {
  /** "lock" or "elect": the watchdog's and the messages' label. */
  label: string;
  /** The command to run while holding; empty: hold until SIGINT/SIGTERM. */
  command: string[];
  graceMs: number;
  /** Waits for the hold; gives up (rejects) when `signal` fires. */
  take(signal: AbortSignal): Promise<H>;
  /** Prints the token (no command given). */
  announce(hold: H): void;
  /** What was lost, for "concord LABEL: WHAT lost: why". */
  what: string;
  /** The command's environment: the name and token. */
  env(hold: H): Record<string, string>;
  /** Releases or resigns. */
  giveUp(hold: H): Promise<void>;
}

/**
 * Takes a hold, then runs the command under it (runSupervised) or, without one, prints the token and holds until
 * SIGINT/SIGTERM. Resolves with the exit code. Ctrl-C while waiting abandons the wait; while holding, it gives the
 * hold up. One signal handler throughout: removing the last SIGINT listener restores the default action at once,
 * so a Ctrl-C that came between removing one handler and adding the next would kill the process instead of
 * releasing (seen under load: the token printed, then a SIGINT in that gap).
 */
export async function holdWhile<H extends Hold>(o: HoldCommand<H>): Promise<number> {
  // Started while we wait, so that the command can start as soon as the hold is ours.
  const watchdog = o.command.length > 0 ? new Watchdog(o.label, o.graceMs) : null;
  const signalled = new AbortController();
  const onSignal = () => signalled.abort();
  const offSignals = () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let hold: H;
  try {
    hold = await o.take(signalled.signal);
  } catch (e) {
    offSignals();
    await watchdog?.close();
    throw e;
  }
  if (watchdog === null) {
    o.announce(hold);
    const outcome = await new Promise<"signal" | "lost">((resolve) => {
      if (signalled.signal.aborted) return resolve("signal");
      signalled.signal.addEventListener("abort", () => resolve("signal"), { once: true });
      hold.lost.addEventListener("abort", () => resolve("lost"), { once: true });
    });
    if (outcome === "lost") {
      const r: unknown = hold.lost.reason;
      console.error(`concord ${o.label}: ${o.what} lost: ${r instanceof Error ? r.message : String(r)}`);
      return EXIT.FAILED;
    }
    await o.giveUp(hold);
    return EXIT.OK;
  }
  offSignals(); // runSupervised handles signals while the command runs
  const code = await runSupervised(o.command, o.env(hold), hold, watchdog, { graceMs: o.graceMs, label: o.label });
  await o.giveUp(hold).catch(() => {});
  return code;
}
