// `concord lock` end to end: real CLI processes against a real 3-member cluster (ports 8200-8221).

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { waitUntil as waitFor } from "../../src/harness/index.js";
import { CliSuite, type CliProcess } from "./cli.js";
import { handover, isLive, liveGroupMembers, liveWatchdogs, logMargins, readPid, watchdogOf } from "./supervision.js";

const suite = new CliSuite(8200, "lock-cli");

function lock(args: string[]): CliProcess {
  return suite.cli(["lock", ...args]);
}

/**
 * A child that logs "start T MS", then "tick T MS" every 50 ms for `runS` seconds, then "end T MS" (also on
 * SIGTERM); T is its fencing token, MS the wall clock. A run SIGKILLed at its lease's deadline has no "end".
 */
function recorder(log: string, runS: number): string[] {
  const line = (kind: string) => `echo "${kind} $CONCORD_LOCK_TOKEN $(date +%s%3N)" >> ${log}`;
  return [
    "sh",
    "-c",
    `${line("start")}; trap '${line("end")}; exit 143' TERM; until=$(($(date +%s%3N) + ${Math.round(runS * 1000)})); ` +
      `while [ "$(date +%s%3N)" -lt "$until" ]; do ${line("tick")}; sleep 0.05; done; ${line("end")}`,
  ];
}

interface Run {
  token: number;
  /** Wall-clock ms of its first and last line. */
  first: number;
  last: number;
  ended: boolean;
}

/**
 * The recorders' runs in the order they started. Asserts that they never overlap (no line of a run is later than
 * the next run's start) and that tokens strictly increase.
 */
function checkExclusive(log: string): Run[] {
  const lines = fs.readFileSync(log, "utf8").trim().split("\n");
  const runs: Run[] = [];
  for (const l of lines) {
    const [kind, t, ms] = l.split(" ");
    const token = Number(t);
    const at = Number(ms);
    let run = runs.find((r) => r.token === token);
    if (!run) {
      expect(kind, `the first line of token ${t} is not its start:\n${lines.join("\n")}`).toBe("start");
      run = { token, first: at, last: at, ended: false };
      runs.push(run);
    }
    run.last = Math.max(run.last, at);
    if (kind === "end") run.ended = true;
  }
  for (let i = 1; i < runs.length; i++) {
    expect(runs[i].token).toBeGreaterThan(runs[i - 1].token);
    expect(
      runs[i - 1].last,
      `token ${runs[i - 1].token} still ran when ${runs[i].token} started:\n${lines.join("\n")}`,
    ).toBeLessThanOrEqual(runs[i].first);
  }
  return runs;
}

describe("concord lock", () => {
  it("three processes never run their commands at the same time, and tokens strictly increase", async () => {
    const log = path.join(suite.dir, "mutex.log");
    const ps = [0, 1, 2].map(() => lock(["--ttl", "3s", "mutex", "--", ...recorder(log, 0.3)]));
    const results = await Promise.all(ps.map((p) => p.exited));
    expect(
      results.map((r) => r.code),
      ps.map((p) => p.stderr()).join("\n"),
    ).toEqual([0, 0, 0]);
    expect(checkExclusive(log).map((r) => r.ended)).toEqual([true, true, true]);
  });

  it("passes the child's exit code through, prints the token without a command, and --try exits 3 when held", async () => {
    const failing = lock(["exitcode", "--", "sh", "-c", "exit 7"]);
    expect((await failing.exited).code).toBe(7);
    expect(liveWatchdogs(suite.cluster.endpoints().join(","))).toEqual([]); // it ends with the command
    const missing = lock(["exitcode", "--", "/nonexistent/command"]);
    expect((await missing.exited).code).toBe(127);
    expect(missing.stderr()).toMatch(/cannot run \/nonexistent\/command/);
    expect(liveWatchdogs(suite.cluster.endpoints().join(","))).toEqual([]);

    const holder = lock(["--json", "held"]);
    const printed = await waitFor("the token", 15_000, () =>
      holder.stdout().includes("\n") ? JSON.parse(holder.stdout()) : undefined,
    );
    expect(printed).toMatchObject({ name: "held" });
    expect(printed.token).toBeGreaterThan(0);
    const status = await suite.client.lockStatus("held");
    expect(status.holders.map((h) => h.token)).toEqual([printed.token]);

    const tryer = lock(["--try", "held", "--", "true"]);
    const r = await tryer.exited;
    expect(r.code).toBe(3);
    expect(tryer.stderr()).toMatch(/LOCK_BUSY/);

    holder.kill("SIGINT");
    expect((await holder.exited).code).toBe(0);
    expect((await suite.client.lockStatus("held")).holders).toEqual([]);
  });

  it("Ctrl-C stops the command's group; the lock is released and nothing is left running", async () => {
    const pidFile = path.join(suite.dir, "ctrlc.pid");
    // The background sleep ignores SIGINT (as in any non-interactive shell): the group's leftovers go too.
    const p = lock(["ctrlc", "--", "sh", "-c", `echo $$ > ${pidFile}; sleep 30 & wait`]);
    const pgid = await waitFor("the command", 15_000, () => readPid(pidFile));
    const watchdog = await waitFor("the watchdog", 5000, () => watchdogOf(p.child.pid!));
    p.kill("SIGINT"); // what a terminal does: SIGINT to its foreground process group, `concord lock` alone
    const r = await p.exited;
    expect(r.code, p.stderr()).toBe(130); // sh died of the forwarded SIGINT
    expect(liveGroupMembers(pgid)).toEqual([]);
    expect(isLive(watchdog.pid)).toBe(false);
    expect((await suite.client.lockStatus("ctrlc")).holders).toEqual([]);
  });

  it("a lost lock kills the child's process group at once", async () => {
    const pidFile = path.join(suite.dir, "lost.pid");
    const p = lock([
      "--ttl",
      "5s",
      "--grace",
      "1s",
      "lostlock",
      "--",
      "sh",
      "-c",
      `echo $$ > ${pidFile}; sleep 30 & wait $!`,
    ]);
    const childPid = await waitFor("the child", 15_000, () =>
      fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8").trim()
        ? Number(fs.readFileSync(pidFile, "utf8"))
        : undefined,
    );
    suite.orphans.push(childPid);
    const holder = (await suite.client.lockStatus("lostlock")).holders[0];
    const t0 = Date.now();
    await suite.client.revokeLease(holder.lease); // the lock ends on the server
    const r = await p.exited;
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(r.code).toBe(143); // the child died of SIGTERM; its code is passed through
    expect(p.stderr()).toMatch(/lost/);
    expect(() => process.kill(childPid, 0)).toThrow();
  });

  it("a SIGKILLed `concord lock` hands the lock over after the TTL, and its command is dead before the next one starts", async () => {
    const r = await handover({
      dir: suite.dir,
      endpoints: suite.cluster.endpoints().join(","),
      first: (cmd) => lock(["--ttl", "2s", "handover", "--", ...cmd]),
      second: (cmd) => lock(["--ttl", "2s", "handover", "--", ...cmd]),
      secondWaits: async () => (await suite.client.lockStatus("handover")).waiters.length > 0,
      signal: "SIGKILL",
    });
    logMargins("lock, SIGKILL", 2000, r);
    expect(r.secondStart - r.signalledAt).toBeGreaterThan(1000); // not before the lease could have expired
    expect(r.secondStart - r.signalledAt).toBeLessThan(6000);
    await waitFor("the watchdog's message", 5000, () =>
      /the supervising process exited; stopping the command's process group/.test(r.firstProcess.stderr())
        ? true
        : undefined,
    );
  });

  it("a frozen `concord lock` (SIGSTOP) cannot keep its command running: it is dead before the next holder's starts", async () => {
    const r = await handover({
      dir: suite.dir,
      endpoints: suite.cluster.endpoints().join(","),
      first: (cmd) => lock(["--ttl", "3s", "frozen", "--", ...cmd]),
      second: (cmd) => lock(["--ttl", "3s", "frozen", "--", ...cmd]),
      secondWaits: async () => (await suite.client.lockStatus("frozen")).waiters.length > 0,
      signal: "SIGSTOP",
    });
    logMargins("lock, SIGSTOP", 3000, r);
    r.firstProcess.kill("SIGCONT");
    expect((await r.firstProcess.exited).code).toBe(137); // its command died of the watchdog's SIGKILL
    expect(r.firstProcess.stderr()).toMatch(
      /the hold was not confirmed in time.*SIGKILL to the command's process group/,
    );
  });

  it("killing the member the holder is connected to never lets two holders run at once", async () => {
    const log = path.join(suite.dir, "nodekill.log");
    // The holder's command runs long enough for the waiter's CLI to start and queue (several seconds under load).
    const holder = lock(["--ttl", "2s", "nodekill", "--", ...recorder(log, 10)]);
    await waitFor("the holder's child", 15_000, () => (fs.existsSync(log) ? true : undefined));
    // The waiter must keep its lease through the failover (election + reconnect, which can pass 2 s on a loaded
    // machine); the holder's short TTL is what this test is about.
    const waiter = lock(["--ttl", "5s", "nodekill", "--", ...recorder(log, 0.2)]);
    await waitFor("the waiter to queue", 30_000, async () =>
      (await suite.client.lockStatus("nodekill")).waiters.length > 0 ? true : undefined,
    );
    const leader = await suite.cluster.waitForLeader(5000);
    void suite.cluster.kill(leader);
    const [r1, r2] = await Promise.all([holder.exited, waiter.exited]);
    // Kept the lock through the failover; or lost it and was stopped (SIGTERM), or no keep-alive was acknowledged
    // before the lease's deadline and it was SIGKILLed then.
    expect([0, 143, 137], holder.stderr()).toContain(r1.code);
    expect(r2.code, waiter.stderr()).toBe(0);
    const runs = checkExclusive(log);
    expect(runs).toHaveLength(2);
    expect(runs[1].ended).toBe(true);
    await suite.cluster.restart(leader);
  });
});
