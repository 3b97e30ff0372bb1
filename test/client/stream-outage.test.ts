// Watches and observers never go silent: with every member down (killed, or frozen by SIGSTOP so their sockets
// stay open) a watch or an observe ends with a clear error once it could not resume within its deadline — in
// the library and in the CLI (exit 1, one line on stderr). Real member processes (ports 8700-8721).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type ConcordError } from "../../src/index.js";
import { LocalCluster } from "../../src/harness/index.js";
import { waitUntil as waitFor } from "../../src/harness/index.js";
import { runCli, type CliProcess } from "./cli.js";

let cluster: LocalCluster;
/** CLI processes to kill at the end even if a test timed out. */
const procs: CliProcess[] = [];

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, basePort: 8700, logLevel: "warn" });
});

afterAll(async () => {
  for (const p of procs) p.kill();
  await cluster?.teardown();
});

/** Drains an async iterable in the background; resolves with what it delivered and how it ended. */
function drain<T>(it: AsyncIterable<T>): { items: T[]; ended: Promise<{ error: ConcordError | null; at: number }> } {
  const items: T[] = [];
  const ended = (async () => {
    try {
      for await (const x of it) items.push(x);
      return { error: null, at: performance.now() };
    } catch (e) {
      return { error: e as ConcordError, at: performance.now() };
    }
  })();
  return { items, ended };
}

async function restartAll(): Promise<void> {
  for (const m of cluster.members()) {
    if (cluster.paused().includes(m.name)) cluster.resume(m.name);
    if (!cluster.running().includes(m.name)) await cluster.restart(m.name);
  }
  await cluster.waitForLeader(30_000);
}

describe("with every member down", () => {
  it("a watch and an observe end with UNAVAILABLE after their resume deadline, in the library and the CLI", async () => {
    const c = await connect(cluster.endpoints().join(","), { timeoutMs: 2000 });
    const env = { CONCORD_ENDPOINTS: cluster.endpoints().join(",") };
    const cliWatch = runCli(["watch", "outage/", "--prefix", "--request-timeout", "1000"], env);
    const cliObserve = runCli(["elect", "outage-election", "--observe", "--request-timeout", "1000"], env);
    procs.push(cliWatch, cliObserve);
    try {
      const w = c.watch("outage/", { prefix: true, resumeTimeoutMs: 3000 });
      await w.ready();
      const o = c.election("outage-election").observe({ resumeTimeoutMs: 3000 });
      await o.ready();
      const watched = drain(w);
      const observed = drain(o);
      // Both CLI streams are live: the watch printed a put made after it opened, the observer the current state.
      let n = 0;
      await waitFor("concord watch to print a put", 30_000, async () => {
        await c.put("outage/k", String(++n));
        return cliWatch.stdout().includes("PUT outage/k") ? true : undefined;
      });
      await waitFor("concord elect --observe to print the current state", 30_000, () =>
        cliObserve.stdout().includes("no leader") ? true : undefined,
      );
      expect(watched.items.length).toBeGreaterThan(0);
      expect(observed.items.length).toBeGreaterThan(0);

      await Promise.all(cluster.members().map((m) => cluster.kill(m.name)));
      const killedAt = performance.now();

      const [wEnd, oEnd] = await Promise.all([watched.ended, observed.ended]);
      expect(wEnd.error?.code).toBe("UNAVAILABLE");
      expect(wEnd.error?.message).toMatch(/^watch on prefix "outage\/" could not resume within 3000 ms: /);
      expect(oEnd.error?.code).toBe("UNAVAILABLE");
      expect(oEnd.error?.message).toMatch(/^observer of election "outage-election" could not resume within 3000 ms: /);
      // Not silent for long: the deadline (plus noticing the drop and one connect attempt), with loaded-machine slack.
      expect(wEnd.at - killedAt).toBeLessThan(25_000);

      const [cw, co] = await Promise.all([cliWatch.exited, cliObserve.exited]);
      expect(cw.code, cliWatch.stderr()).toBe(1);
      expect(cliWatch.stderr()).toMatch(
        /^concord watch: UNAVAILABLE: watch on prefix "outage\/" could not resume within 3000 ms: .+\n$/,
      );
      expect(co.code, cliObserve.stderr()).toBe(1);
      expect(cliObserve.stderr()).toMatch(
        /^concord elect: UNAVAILABLE: observer of election "outage-election" could not resume within 3000 ms: .+\n$/,
      );
    } finally {
      cliWatch.kill();
      cliObserve.kill();
      await c.close();
      await restartAll();
    }
  });

  it("a watch on members frozen by SIGSTOP (sockets open, nothing answers) ends with an error too", async () => {
    const c = await connect(cluster.endpoints().join(","), { timeoutMs: 2000 });
    try {
      const w = c.watch("frozen/", { prefix: true, resumeTimeoutMs: 3000 });
      await w.ready();
      const watched = drain(w);
      for (const m of cluster.members()) cluster.pause(m.name);
      const frozenAt = performance.now();
      const end = await watched.ended;
      expect(end.error?.code).toMatch(/^(UNAVAILABLE|TIMEOUT)$/);
      expect(end.error?.message).toMatch(/^watch on prefix "frozen\/" could not resume within 3000 ms: /);
      // Noticing the silence (pings every 2 s, dropped after 4 s without a reply), then the deadline.
      expect(end.at - frozenAt).toBeLessThan(30_000);
    } finally {
      await c.close();
      await restartAll();
    }
  });
});

describe("closing the client", () => {
  it("ends its watches and observers normally, without an error", async () => {
    const c = await connect(cluster.endpoints().join(","));
    const w = c.watch("closing/", { prefix: true });
    const o = c.election("closing-election").observe();
    await Promise.all([w.ready(), o.ready()]);
    const watched = drain(w);
    const observed = drain(o);
    await c.close();
    expect((await watched.ended).error).toBeNull();
    expect((await observed.ended).error).toBeNull();
  });
});
