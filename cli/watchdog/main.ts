// The supervised command's watchdog: a small process of its own, in its own session (so it is not stopped,
// frozen or killed along with the `concord lock`/`concord elect` process that started it, nor with the command),
// that ends the command's process group when that supervisor can no longer vouch for the hold.
//
// Invariant: unless the supervisor said `done`, the group gets SIGKILL no later than the last deadline the
// supervisor sent (`hold`, or a `final` one) — however long the supervisor is frozen or starved, and after it
// died. At end-of-file without `done` (the supervisor died), the group gets SIGTERM at once if the deadline is
// still ahead, then SIGKILL after the grace period or at the deadline, whichever comes first.
//
// Usage (see ./watchdog.ts): main.ts LABEL GRACE_MS, messages on stdin (./protocol.ts); prints "ready" on stdout
// once it listens.

import fs from "node:fs";
import { createInterface } from "node:readline";
import { decodeMessage, monotonicMs, type WatchdogMessage } from "./protocol.js";

const label = process.argv[2] ?? "watchdog";
const graceMs = Number(process.argv[3]);
if (!(graceMs >= 0)) {
  say(`grace ${JSON.stringify(process.argv[3])} is not a duration in ms (usage: main.ts LABEL GRACE_MS)`);
  process.exit(2);
}

/** Timers take at most 2^31-1 ms; a longer wait is simply re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

let group: number | null = null;
/** Nothing vouched for yet: a group learned before any `hold` is killed at once. */
let deadline = -Infinity;
let final = false;
let supervisorGone = false;
let terminated = false;
let timer: NodeJS.Timeout | undefined;

function say(msg: string): void {
  try {
    fs.writeSync(2, `concord ${label}: ${msg}\n`);
  } catch {
    // nobody left to read it
  }
}

/** Signals the whole group; false when no process is left in it. */
function signalGroup(sig: NodeJS.Signals): boolean {
  try {
    process.kill(-group!, sig);
    return true;
  } catch {
    return false;
  }
}

function check(): void {
  clearTimeout(timer);
  if (group === null) {
    if (supervisorGone) process.exit(0); // the command was never started
    return;
  }
  const now = monotonicMs();
  if (now >= deadline) {
    if (signalGroup("SIGKILL") && !final && !supervisorGone) {
      say(
        `the hold was not confirmed in time (no keep-alive acknowledged, or this process stopped running): ` +
          `SIGKILL to the command's process group ${group} before its lease can expire`,
      );
    }
    process.exit(0);
  }
  if (supervisorGone && !terminated) {
    terminated = true;
    signalGroup("SIGTERM");
  }
  timer = setTimeout(check, Math.min(deadline - now, MAX_TIMER_MS));
}

function onMessage(m: WatchdogMessage): void {
  switch (m.kind) {
    case "hold":
      if (!final) deadline = m.at;
      break;
    case "final":
      final = true;
      deadline = Math.min(deadline, m.at);
      break;
    case "group":
      group = m.pgid;
      break;
    case "done":
      process.exit(0);
  }
  check();
}

const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  let m: WatchdogMessage;
  try {
    m = decodeMessage(line);
  } catch (e) {
    // Both ends are this program: a garbled line is a bug, and the safe reaction is to end the command.
    say(`watchdog: ${(e as Error).message}; killing the command`);
    if (group !== null) signalGroup("SIGKILL");
    process.exit(1);
  }
  onMessage(m);
});
input.on("close", () => {
  supervisorGone = true;
  if (final) {
    terminated = true; // the supervisor already sent SIGTERM when the hold ended
  } else if (group !== null) {
    const killIn = Math.max(0, Math.min(graceMs, deadline - monotonicMs()));
    deadline = monotonicMs() + killIn;
    say(
      `the supervising process exited; stopping the command's process group ${group} ` +
        (killIn > 0 ? `(SIGTERM now, SIGKILL in ${Math.round(killIn)} ms)` : "(SIGKILL now)"),
    );
  }
  check();
});
process.stdout.write("ready\n");
