// `concord elect` and observe end to end: real CLI processes against a real 3-member cluster (ports 8300-8321).

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { LeaderChange } from "../../src/index.js";
import { waitUntil } from "../../src/harness/index.js";
import { CliSuite, type CliProcess } from "./cli.js";
import { handover, logMargins } from "./supervision.js";

const suite = new CliSuite(8300, "elect-cli");

const cli = (args: string[]): CliProcess => suite.cli(args);

interface ObservedLine {
  leader: number | null;
  value: string | null;
  token: number | null;
  index: number;
}

describe("concord elect", () => {
  it("hands leadership over on SIGKILL of the leading process; --observe sees every change in order", async () => {
    const observer = cli(["elect", "sched", "--observe", "--json"]);
    await waitUntil("the observer's first line", 15_000, () => (observer.stdout().includes("\n") ? true : undefined));

    const pidFile = path.join(suite.dir, "a.pid");
    const a = cli([
      "elect",
      "--ttl",
      "2s",
      "sched",
      "alpha",
      "--",
      "sh",
      "-c",
      `echo $$ > ${pidFile}; echo "$CONCORD_ELECTION_VALUE $CONCORD_ELECTION_TOKEN"; sleep 30 & wait $!`,
    ]);
    const childA = await waitUntil("alpha leading", 15_000, () =>
      fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8").trim()
        ? Number(fs.readFileSync(pidFile, "utf8"))
        : undefined,
    );
    suite.orphans.push(childA);
    const b = cli(["elect", "--ttl", "2s", "sched", "beta"]);
    await new Promise((r) => setTimeout(r, 500));
    expect(b.stdout()).toBe(""); // beta waits while alpha leads
    const t0 = Date.now();
    process.kill(a.child.pid!, "SIGKILL");
    const tokenB = await waitUntil("beta leading", 10_000, () =>
      b.stdout().trim() ? Number(b.stdout().trim()) : undefined,
    );
    const handover = Date.now() - t0;
    expect(handover).toBeGreaterThan(1000);
    expect(handover).toBeLessThan(6000);
    expect((await suite.client.election("sched").leader())?.text).toBe("beta");

    b.kill("SIGTERM"); // resigns on exit
    expect((await b.exited).code).toBe(0);
    await waitUntil("no leader", 5000, async () => ((await suite.client.election("sched").leader()) === null ? true : undefined));

    const lines = await waitUntil("the observer to see beta resign", 5000, () => {
      const ls = observer
        .stdout()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as ObservedLine);
      return ls.length >= 2 && ls[ls.length - 1].leader === null && ls.some((l) => l.value === "beta") ? ls : undefined;
    });
    // Every change, in order: nobody → alpha → (nobody) → beta → nobody.
    const values = lines.map((l) => l.value).filter((v, i, all) => i === 0 || v !== all[i - 1]);
    expect(values.filter((v) => v !== null)).toEqual(["alpha", "beta"]);
    expect(values[values.length - 1]).toBeNull();
    const indexes = lines.map((l) => l.index);
    for (let i = 1; i < indexes.length; i++) expect(indexes[i]).toBeGreaterThanOrEqual(indexes[i - 1]);
    const tokens = lines.filter((l) => l.token !== null).map((l) => l.token!);
    expect(tokens[tokens.length - 1]).toBe(tokenB);
    expect(tokens[0]).toBeLessThan(tokenB);
  });

  for (const signal of ["SIGKILL", "SIGSTOP"] as const) {
    it(`a ${signal === "SIGKILL" ? "SIGKILLed" : "frozen (SIGSTOP)"} \`concord elect\` leader's command is dead before the next leader's starts`, async () => {
      const name = `guarded-${signal}`;
      /** The next candidate queues once its candidacy's lease (3 s, granted after the leader's) exists. */
      const secondWaits = async () => {
        const leader = await suite.client.election(name).leader();
        const leases = await suite.client.leases();
        return !!leader && leases.some((l) => l.ttlMs === 3000 && l.id > leader.lease);
      };
      const r = await handover({
        dir: suite.dir,
        endpoints: suite.cluster.endpoints().join(","),
        first: (cmd) => cli(["elect", "--ttl", "3s", name, "alpha", "--", ...cmd]),
        second: (cmd) => cli(["elect", "--ttl", "3s", name, "beta", "--", ...cmd]),
        secondWaits,
        signal,
      });
      logMargins(`elect, ${signal}`, 3000, r);
      if (signal === "SIGSTOP") {
        r.firstProcess.kill("SIGCONT");
        expect((await r.firstProcess.exited).code).toBe(137);
      }
    });
  }

  it("the library's observe() resumes across a member kill without repeating or skipping changes", async () => {
    const seen: LeaderChange[] = [];
    const obs = suite.client.election("resume").observe();
    await obs.ready();
    const done = (async () => {
      for await (const ch of obs) {
        seen.push(ch);
        if (ch.leader?.text === "v3") return;
      }
    })();
    const leader = await suite.cluster.waitForLeader(5000);
    let reconnects = 0;
    const off = suite.client.onReconnect(() => reconnects++);
    for (let i = 1; i <= 3; i++) {
      const lead = await suite.client.election("resume").campaign(`v${i}`, { ttlMs: 3000 });
      if (i === 2) void suite.cluster.kill(leader);
      if (i < 3) await lead.resign();
    }
    await Promise.race([
      done,
      new Promise((_, rej) => setTimeout(() => rej(new Error("observe went silent")), 15_000)),
    ]);
    const leaders = seen.map((ch) => ch.leader?.text ?? null);
    expect(leaders.filter((v) => v !== null)).toEqual(["v1", "v2", "v3"]);
    const idx = seen.map((s) => s.index);
    for (let i = 1; i < idx.length; i++) expect(idx[i]).toBeGreaterThan(idx[i - 1]);
    expect(reconnects).toBeGreaterThanOrEqual(1);
    off();
    await suite.cluster.restart(leader);
  });
});
