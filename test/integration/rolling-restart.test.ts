// Rolling restart of every member while three session clients write continuously — gracefully (SIGTERM: a
// leader hands leadership over first), then as crashes (SIGKILL: recovery from the fsynced WAL): no
// acknowledged write is lost, none is applied twice, and clients see only retryable errors.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster, waitUntil } from "../../src/harness/index.js";
import { SessionWriter, checkWriter, readPrefix } from "./writer.js";

describe.sequential("rolling restart under a write load", () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    // A small snapshot threshold: snapshots are taken and shipped while members restart.
    cluster = await LocalCluster.start({ size: 3, basePort: 9200, tickMs: 50, snapshotEntries: 200 });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it.each(["SIGTERM", "SIGKILL"] as const)(
    "%s each member in turn: loses no acknowledged write, applies none twice, clients see only retryable errors",
    async (signal) => {
      const prefix = `rr/${signal}/`;
      const writers = [0, 1, 2].map(
        (i) => new SessionWriter(cluster, () => cluster.running().sort(), `${prefix}c${i}/`, i),
      );
      await Promise.all(writers.map((w) => w.open()));
      let stop = false;
      const loads = writers.map((w) => w.run(() => stop, 2));
      const restarts: { member: string; wasLeader: boolean; writesDuring: number }[] = [];
      try {
        for (const name of ["n1", "n2", "n3"]) {
          const ackedBefore = writers.reduce((n, w) => n + w.acked.length, 0);
          const leader = await cluster.waitForLeader();
          await cluster.stop(name, signal);
          await cluster.restart(name);
          const newLeader = await cluster.waitForLeader(20_000);
          const commit = (await cluster.status(newLeader)).commit;
          await cluster.waitForApplied(name, commit, 30_000);
          // Writes continue with the member back: each writer makes progress before the next restart.
          const marks = writers.map((w) => w.acked.length);
          await waitUntil("every writer to make progress", 20_000, () =>
            writers.every((w, i) => w.acked.length >= marks[i] + 5) ? true : undefined,
          );
          restarts.push({
            member: name,
            wasLeader: name === leader,
            writesDuring: writers.reduce((n, w) => n + w.acked.length, 0) - ackedBefore,
          });
        }
      } finally {
        stop = true;
        await Promise.allSettled(loads);
        for (const w of writers) w.client.close();
      }

      for (const w of writers) expect(w.client.fatalErrors).toEqual([]);
      await Promise.all(loads); // rethrows a writer's non-retryable error, if any
      expect(restarts.some((r) => r.wasLeader)).toBe(true); // the leader was restarted at least once

      const leader = await cluster.waitForLeader();
      const commit = (await cluster.status(leader)).commit;
      for (const n of ["n1", "n2", "n3"]) {
        await cluster.waitForApplied(n, commit);
        const kvs = await readPrefix(cluster, n, prefix);
        for (const w of writers) expect(checkWriter(w, n, kvs)).toEqual([]);
      }
      const total = writers.reduce((n, w) => n + w.acked.length, 0);
      const retried = Object.fromEntries(
        writers
          .flatMap((w) => [...w.client.retryableErrors])
          .reduce((m, [c, k]) => m.set(c, (m.get(c) ?? 0) + k), new Map<string, number>()),
      );
      console.log(
        `rolling restart (${signal}): ${total} acknowledged writes, retryable errors ${JSON.stringify(retried)}, restarts ${JSON.stringify(restarts)}`,
      );
      expect(total).toBeGreaterThan(50);
    },
  );
});
