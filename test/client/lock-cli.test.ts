// `concord lock` end to end: real CLI processes against a real 3-member cluster (ports 8200-8221).

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { waitUntil } from "../../src/harness/index.js";
import { CliSuite, type CliProcess } from "./cli.js";

const suite = new CliSuite(8200, "lock-cli");

function lock(args: string[]): CliProcess {
  return suite.cli(["lock", ...args]);
}

/** A child that logs "start T" / "end T" around a sleep (also when terminated). */
function recorder(log: string, sleepS: number, pidFile?: string): string[] {
  const pid = pidFile ? `echo $$ > ${pidFile}; ` : "";
  return [
    "sh",
    "-c",
    `${pid}echo "start $CONCORD_LOCK_TOKEN" >> ${log}; trap 'echo "end $CONCORD_LOCK_TOKEN" >> ${log}; exit 143' TERM; sleep ${sleepS} & wait $!; echo "end $CONCORD_LOCK_TOKEN" >> ${log}`,
  ];
}

/** Asserts the log is start/end pairs that never overlap, with strictly increasing tokens; returns the tokens. */
function checkExclusive(log: string): number[] {
  const lines = fs.readFileSync(log, "utf8").trim().split("\n");
  const tokens: number[] = [];
  for (let i = 0; i < lines.length; i += 2) {
    const [s, t1] = lines[i].split(" ");
    const [e, t2] = (lines[i + 1] ?? "missing -").split(" ");
    expect(`${s} ${e}`, `line ${i}: two holders overlapped or a run did not end:\n${lines.join("\n")}`).toBe(
      "start end",
    );
    expect(t2).toBe(t1);
    tokens.push(Number(t1));
  }
  for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
  return tokens;
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
    expect(checkExclusive(log)).toHaveLength(3);
  });

  it("passes the child's exit code through, prints the token without a command, and --try exits 3 when held", async () => {
    const failing = lock(["exitcode", "--", "sh", "-c", "exit 7"]);
    expect((await failing.exited).code).toBe(7);

    const holder = lock(["--json", "held"]);
    const printed = await waitUntil("the token", 15_000, () =>
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
    const childPid = await waitUntil("the child", 15_000, () =>
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

  it("killing the holder's client process hands the lock over after the TTL", async () => {
    const pidFile = path.join(suite.dir, "handover.pid");
    const log = path.join(suite.dir, "handover.log");
    const holder = lock(["--ttl", "2s", "handover", "--", "sh", "-c", `echo $$ > ${pidFile}; sleep 30 & wait $!`]);
    const childPid = await waitUntil("the holder's child", 15_000, () =>
      fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8").trim()
        ? Number(fs.readFileSync(pidFile, "utf8"))
        : undefined,
    );
    suite.orphans.push(childPid); // a SIGKILLed `concord lock` cannot stop its child: the fencing token is the guard
    const waiter = lock(["--ttl", "2s", "handover", "--", "sh", "-c", `echo "second $CONCORD_LOCK_TOKEN" >> ${log}`]);
    await waitUntil("the waiter to queue", 15_000, async () =>
      (await suite.client.lockStatus("handover")).waiters.length > 0 ? true : undefined,
    );
    const t0 = Date.now();
    process.kill(holder.child.pid!, "SIGKILL");
    const r = await waiter.exited;
    const handover = Date.now() - t0;
    expect(r.code, waiter.stderr()).toBe(0);
    expect(handover).toBeGreaterThan(1000); // not before the lease could have expired
    expect(handover).toBeLessThan(6000);
    expect(fs.readFileSync(log, "utf8")).toMatch(/^second \d+/);
  });

  it("killing the member the holder is connected to never lets two holders run at once", async () => {
    const log = path.join(suite.dir, "nodekill.log");
    const holder = lock(["--ttl", "2s", "nodekill", "--", ...recorder(log, 3)]);
    await waitUntil("the holder's child", 15_000, () => (fs.existsSync(log) ? true : undefined));
    // The waiter must keep its lease through the failover (election + reconnect, which can pass 2 s on a loaded
    // machine); the holder's short TTL is what this test is about.
    const waiter = lock(["--ttl", "5s", "nodekill", "--", ...recorder(log, 0.2)]);
    await waitUntil("the waiter to queue", 15_000, async () =>
      (await suite.client.lockStatus("nodekill")).waiters.length > 0 ? true : undefined,
    );
    const leader = await suite.cluster.waitForLeader(5000);
    void suite.cluster.kill(leader);
    const [r1, r2] = await Promise.all([holder.exited, waiter.exited]);
    expect([0, 143]).toContain(r1.code); // kept the lock through the failover, or lost it and was stopped
    expect(r2.code, waiter.stderr()).toBe(0);
    expect(checkExclusive(log)).toHaveLength(2);
    await suite.cluster.restart(leader);
  });
});
