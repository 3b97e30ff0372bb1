// `concord dev`: a local cluster of real member processes on loopback (src/harness), data under ./.concord/dev.
// --fresh deletes the data first, but never a directory a running process holds (its LOCK names a live pid): that
// would wipe a running cluster's acknowledged writes from under it.
import fs from "node:fs";
import path from "node:path";
import { ClusterStartError, LocalCluster, currentCommand, describeExit, memberPorts } from "../src/harness/index.js";
import { lockHolder } from "../src/storage/data-dir.js";

export interface DevOptions {
  nodes: number;
  basePort: number;
  data: string;
  fresh: boolean;
  logLevel: string;
}

/** `root` and its subdirectories (members' data directories) whose LOCK a live process holds. */
function heldDataDirs(root: string): { dir: string; pid: number }[] {
  if (!fs.existsSync(root)) return [];
  const subdirs = fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => path.join(root, d.name));
  return [root, ...subdirs].flatMap((dir) => {
    const pid = lockHolder(dir);
    return pid === undefined ? [] : [{ dir, pid }];
  });
}

export async function runDev(o: DevOptions): Promise<void> {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 9)
    throw new Error(`--nodes: expected 1..9, got ${o.nodes}`);
  try {
    memberPorts(o.basePort, o.nodes - 1);
  } catch (e) {
    throw new Error(`--base-port: ${(e as Error).message}`);
  }
  const dataRoot = path.resolve(o.data);
  if (o.fresh) {
    const held = heldDataDirs(dataRoot);
    if (held.length > 0) {
      const list = held.map((h) => `${h.dir} (held by pid ${h.pid})`).join(", ");
      throw new Error(
        `dev --fresh: refusing to delete ${dataRoot}: a running process holds ${list}. ` +
          `Stop that cluster first (Ctrl-C in its terminal), or use another --data directory.`,
      );
    }
    fs.rmSync(dataRoot, { recursive: true, force: true });
  }

  let up = false;
  let stopping = false;
  const cluster = new LocalCluster({
    size: o.nodes,
    basePort: o.basePort,
    root: dataRoot,
    keepData: true,
    logLevel: o.logLevel,
    command: currentCommand(),
    // Loopback members for development: no peer secret or TLS to set up (each member says so at start).
    insecurePeers: true,
    onExit: (m, exit) => {
      if (!up || exit.requested || stopping) return;
      console.error(
        `member ${m.name} exited (${describeExit(exit)}); last lines of ${m.logFile}:\n${cluster.logTail(m.name, 10)}`,
      );
    },
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping the dev cluster (graceful: leadership is handed over first)…");
    void Promise.all(cluster.running().map((n) => cluster.stop(n, "SIGTERM", 10_000)));
  };
  // Members run in process groups of their own, so a terminal's Ctrl-C or hang-up reaches only this process: each
  // stops the members gracefully.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, stop);

  console.log(`Concord dev cluster: starting ${o.nodes} member process(es) on loopback, data in ${dataRoot}`);
  let leader: string;
  try {
    leader = await cluster.start(60_000);
  } catch (e) {
    if (stopping) return;
    if (e instanceof ClusterStartError) throw new Error(`dev: the cluster did not start: ${e.message}`);
    throw e;
  }
  up = true;
  for (const m of cluster.members())
    console.log(`  ${m.name}  clients ${m.clientUrl}  peers ${m.peerUrl}  log ${m.logFile}`);
  console.log(`Up: leader ${leader}.
Try it (in another terminal):
  export CONCORD_ENDPOINTS=${cluster.endpoints().join(",")}
  curl -s http://127.0.0.1:${o.basePort}/status | head -c 300; echo
  curl -s http://127.0.0.1:${o.basePort}/metrics | grep concord_raft_
Press Ctrl-C to stop.`);
  await Promise.all(cluster.members().map((m) => cluster.exited(m.name)));
  if (!stopping) throw new Error(`dev: every member exited; their logs are in ${dataRoot}`);
}
