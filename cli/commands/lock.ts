// concord lock NAME [-- CMD ARGS…], concord lock status NAME, concord lock list

import { Option, type Command } from "commander";
import type { Client } from "../../src/client/client.js";
import { clientCommand, withInspectionSubcommands, durationArg, intArg, ttlArg, printJson, printTable, run, type ClientFlags } from "./common.js";
import { textArg } from "./bytes.js";
import { holdWhile } from "./supervise.js";

interface LockFlags extends ClientFlags {
  /** Durations and counts in milliseconds / units, parsed by commander. */
  ttl: number;
  timeout?: number;
  try?: boolean;
  limit?: number;
  grace: number;
}

export function registerLockCommand(program: Command): void {
  const lock = program.command("lock");
  clientCommand(
    lock
      .description("take a distributed lock, then run a command holding it (or hold it until interrupted)"),
    { json: true },
  )
    .argument("<name>", "the lock's name")
    .argument("[command...]", "the command to run while holding the lock (after --)")
    .addOption(
      new Option("--ttl <duration>", "lease TTL: how long the lock outlives this process going silent")
        .argParser(ttlArg())
        .default(10_000, "10s"),
    )
    .option("--timeout <duration>", "give up waiting after this long (exit code 3)", durationArg())
    .option("--try", "do not wait: exit with code 3 at once if the lock is held")
    .option("--limit <n>", "counting semaphore: up to n holders at once", intArg(1))
    .addOption(
      new Option(
        "--grace <duration>",
        "after a lost lock: time between SIGTERM and SIGKILL of the command's process group, cut short so that the SIGKILL comes before the lease could expire",
      )
        .argParser(durationArg())
        .default(5000, "5s"),
    )
    .addHelpText(
      "after",
      `
The command runs with CONCORD_LOCK_NAME and CONCORD_LOCK_TOKEN (the fencing token: strictly increasing per
lock) in its environment, in its own process group; stdin and SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 are
forwarded to it. The command never outlives the lock: its group is SIGKILLed before the lease could expire on
the servers — one TTL after the last acknowledged keep-alive was sent, less a margin of min(TTL/4, 250ms + TTL/50)
— also if this process is frozen (SIGSTOP, Ctrl-Z) or killed, by a watchdog process of its own. If the lock is
lost while the command runs, the group gets SIGTERM at once and SIGKILL after --grace or at that deadline,
whichever comes first (keep-alives failing until the deadline: SIGKILL, exit 137). See docs/cli.md for the limits.
The exit code is the command's (128+N if killed by signal N).
Without a command, prints the token and holds the lock until SIGINT/SIGTERM (exit 1 if it is lost).
Exit codes: 3 when --try finds the lock held or --timeout passes; 2 for bad arguments; 1 for other failures.

Examples:
  concord lock nightly-backup -- ./backup.sh --full
  concord lock --try --ttl 30s deploy -- make deploy
  concord lock --limit 3 --timeout 2m gpu -- python train.py
  concord lock maintenance            # holds until Ctrl-C`,
    )
    .action((name: string, command: string[], o: LockFlags) =>
      run("lock", o, (c) => lockCommand(c, textArg("NAME", name), command, o)),
    );
  registerLockInspection(lock);
}

/** `concord lock status NAME` and `concord lock list`: who holds and who waits, in order. */
function registerLockInspection(lock: Command): void {
  withInspectionSubcommands(lock);
  clientCommand(lock.command("status").description("who holds lock NAME (lease, token) and who waits for it, in order"), {
    json: true,
  })
    .argument("<name>", "the lock's name")
    .addHelpText(
      "after",
      `
Holders in grant order with their fencing tokens, then waiters in queue order (position 1 is granted next).
A lock nobody holds or waits for is free (limit 0). A lock named "status" or "list" is taken with the library.

Examples:
  concord lock status nightly-backup
  concord lock status gpu -w json`,
    )
    .action((name: string, o: ClientFlags) =>
      run("lock status", o, async (c) => {
        const s = await c.lockStatus(textArg("NAME", name));
        if (o.json) return printJson(s);
        if (s.holders.length === 0) return console.log(`lock ${JSON.stringify(s.name)} is free: nobody holds or waits for it`);
        console.log(`lock ${JSON.stringify(s.name)}: limit ${s.limit}, ${s.holders.length} holding, ${s.waiters.length} waiting`);
        printTable(
          ["ROLE", "POSITION", "LEASE", "TOKEN"],
          [
            ...s.holders.map((h, i) => ["holder", i + 1, h.lease, h.token]),
            ...s.waiters.map((lease, i) => ["waiter", i + 1, lease, "-"]),
          ],
        );
      }),
    );

  clientCommand(lock.command("list").description("every lock with a holder or a waiter, in name order"), { json: true })
    .option("--prefix <prefix>", "only locks whose name starts with this", "")
    .addHelpText(
      "after",
      `
HOLDERS lists lease:token in grant order, WAITERS the waiting leases in queue order. With tokens configured
this needs lock read permission on the prefix (all locks without --prefix).

Examples:
  concord lock list
  concord lock list --prefix jobs/ -w json`,
    )
    .action((o: ClientFlags & { prefix: string }) =>
      run("lock list", o, async (c) => {
        const locks = await c.lockList(textArg("--prefix", o.prefix));
        if (o.json) return printJson(locks);
        printTable(
          ["NAME", "LIMIT", "HOLDERS", "WAITERS"],
          locks.map((l) => [l.name, l.limit, l.holders.map((h) => `${h.lease}:${h.token}`).join(","), l.waiters.join(",") || "-"]),
        );
      }),
    );
}

async function lockCommand(c: Client, name: string, command: string[], o: LockFlags): Promise<number> {
  const { ttl: ttlMs, timeout: timeoutMs, limit } = o;
  return holdWhile({
    label: "lock",
    command,
    graceMs: o.grace,
    take: (signal) => c.lock(name, { ttlMs, timeoutMs, wait: !o.try, limit, signal }),
    announce: (hold) => (o.json ? printJson({ name, token: hold.token, lease: hold.lease.id }) : console.log(hold.token)),
    what: `lock ${JSON.stringify(name)}`,
    env: (hold) => ({ CONCORD_LOCK_NAME: name, CONCORD_LOCK_TOKEN: String(hold.token) }),
    giveUp: (hold) => hold.release(),
  });
}
