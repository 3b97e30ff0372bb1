// npx tsx bench/zookeeper/check.ts — checks the ZooKeeper peer of npm run bench:compare against a real ensemble
// (it binds ports: run it under flock /tmp/concord-tests.lock). Starts the 3 servers, then checks that
//   - sync + getData on one server sees a write acknowledged by another, every time (the linearizable get);
//   - those writes were fsynced: the servers' count of transaction-log fsyncs (mntr's cnt_fsynctime, recorded
//     only when forceSync is on) grows by at least one per write;
//   - the lock recipe never has two holders, hands the lock on under contention and leaves no lock node behind;
//   - stopping ends every server process it started.
// Exits 1 with the failed check's message, 0 after printing what it saw.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ZOOKEEPER_SERVERS, ZooKeeperCluster, fourLetterWord, mntrValue, portsOf } from "./cluster.js";
import { acquireLock, ensureNode, getChildren, getData, openSession, releaseLock, setData, sync } from "./session.js";

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(`check failed: ${message}`);
}

const cluster = await ZooKeeperCluster.start(fs.mkdtempSync(path.join(os.tmpdir(), "zookeeper-check-")));
const pids = cluster.pids();
try {
  const sessions = await Promise.all(ZOOKEEPER_SERVERS.map((s) => openSession(`127.0.0.1:${portsOf(s).client}`)));
  await ensureNode(sessions[0], "/check");
  await ensureNode(sessions[0], "/check/v");

  const fsyncs = async () => {
    const counts = await Promise.all(
      ZOOKEEPER_SERVERS.map(async (s) => mntrValue(await fourLetterWord(portsOf(s).client, "mntr"), "cnt_fsynctime")),
    );
    check(
      counts.every((n) => n !== undefined && Number.isFinite(n)),
      `mntr gave no cnt_fsynctime: ${counts.join(", ")}`,
    );
    return counts.reduce((a, b) => a! + b!, 0)!;
  };
  const fsyncsBefore = await fsyncs();
  const ROUNDS = 300;
  for (let i = 0; i < ROUNDS; i++) {
    const writer = sessions[i % 3];
    const reader = sessions[(i + 1) % 3];
    await setData(writer, "/check/v", Buffer.from(String(i)));
    check((await sync(reader, "/check/v")) === "/check/v", "sync answers with the path it was given");
    const seen = (await getData(reader, "/check/v")).toString();
    check(seen === String(i), `round ${i}: sync + getData on another server read ${seen}, not the acknowledged ${i}`);
  }
  console.log(`sync + getData: ${ROUNDS} reads on another server than the write's, each saw that write`);
  const fsynced = (await fsyncs()) - fsyncsBefore;
  check(fsynced >= ROUNDS, `only ${fsynced} transaction-log fsyncs for ${ROUNDS} acknowledged writes`);
  console.log(`fsync: ${fsynced} transaction-log fsyncs across the 3 servers for those ${ROUNDS} writes`);

  await ensureNode(sessions[0], "/check/lock");
  let holders = 0;
  let handoffs = 0;
  const deadline = performance.now() + 3000;
  await Promise.all(
    Array.from({ length: 16 }, async (_, w) => {
      const c = sessions[w % 3];
      while (performance.now() < deadline) {
        const node = await acquireLock(c, "/check/lock");
        holders++;
        check(holders === 1, `${holders} holders of the lock at once`);
        await new Promise((r) => setTimeout(r, 1)); // hold it across a turn of the event loop
        holders--;
        handoffs++;
        await releaseLock(c, node);
      }
    }),
  );
  const left = await getChildren(sessions[0], "/check/lock");
  check(handoffs > 16, `only ${handoffs} hand-offs in 3 s among 16 contenders`);
  check(left.length === 0, `lock nodes left after every holder released: ${left.join(", ")}`);
  console.log(
    `lock recipe: 16 contenders on 3 sessions, ${handoffs} hand-offs in 3 s, never two holders, no node left`,
  );
  for (const c of sessions) c.close();
} finally {
  await cluster.stop();
}
const alive = pids.filter((pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
});
check(alive.length === 0, `server processes still running after stop: ${alive.join(", ")}`);
console.log(`stop: the ${pids.length} server processes (${pids.join(", ")}) have exited`);
