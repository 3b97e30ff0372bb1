// Running a command under a lock or a leadership: the child gets its own process group (so the whole tree it
// starts can be stopped together), our stdin is piped to it, and SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2
// are forwarded to its group. When the hold is lost the group gets SIGTERM at once and SIGKILL after the grace
// period: work protected by a lock must not continue once the lock may belong to someone else.

import { spawn } from "node:child_process";
import { constants } from "node:os";

const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

export interface SupervisedResult {
  /** The exit code to propagate: the child's, or 128 + signal number when it was killed by a signal. */
  code: number;
  /** True if the child was stopped because the hold was lost. */
  killedForLoss: boolean;
}

export function runSupervised(
  argv: string[],
  env: Record<string, string>,
  lost: AbortSignal,
  opts: { graceMs: number; label: string },
): Promise<SupervisedResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ["pipe", "inherit", "inherit"],
      env: { ...process.env, ...env },
      detached: true,
    });
    let killedForLoss = false;
    let killTimer: NodeJS.Timeout | undefined;
    const signalGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // the group is already gone
      }
    };
    const forwarders = FORWARDED.map((sig) => {
      const fn = () => signalGroup(sig);
      process.on(sig, fn);
      return [sig, fn] as const;
    });
    const onLost = () => {
      killedForLoss = true;
      const why = lost.reason instanceof Error ? lost.reason.message : String(lost.reason);
      console.error(`concord ${opts.label}: ${why}; stopping the command (SIGTERM now, SIGKILL in ${opts.graceMs} ms)`);
      signalGroup("SIGTERM");
      killTimer = setTimeout(() => signalGroup("SIGKILL"), opts.graceMs);
    };
    if (lost.aborted) onLost();
    else lost.addEventListener("abort", onLost, { once: true });

    // stdin: forwarded as a stream; EPIPE when the child does not read it is not an error.
    child.stdin.on("error", () => {});
    if (process.stdin.isTTY || !process.stdin.readableEnded) process.stdin.pipe(child.stdin);

    const finish = (code: number) => {
      clearTimeout(killTimer);
      lost.removeEventListener("abort", onLost);
      for (const [sig, fn] of forwarders) process.off(sig, fn);
      process.stdin.unpipe(child.stdin);
      process.stdin.pause();
      // Anything the child left behind in its group goes too.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // no such group: everything already exited
        }
      }
      resolve({ code, killedForLoss });
    };
    child.on("error", (e) => {
      console.error(`concord ${opts.label}: cannot run ${argv[0]}: ${e.message}`);
      finish(127);
    });
    child.on("exit", (code, signal) => {
      finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}
