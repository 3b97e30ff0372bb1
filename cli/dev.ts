// `concord dev`: a local cluster of real member processes on loopback, data under ./.concord/dev.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export interface DevOptions {
  nodes: number;
  basePort: number;
  data: string;
  fresh: boolean;
  logLevel: string;
}

export function devClusterLayout(o: Pick<DevOptions, "nodes" | "basePort">) {
  const members = Array.from({ length: o.nodes }, (_, i) => ({
    name: `n${i + 1}`,
    clientUrl: `ws://127.0.0.1:${o.basePort + i * 10}`,
    peerUrl: `ws://127.0.0.1:${o.basePort + i * 10 + 1}`,
  }));
  return {
    members,
    initialCluster: members.map((m) => `${m.name}=${m.peerUrl}`).join(","),
    initialClusterClients: members.map((m) => `${m.name}=${m.clientUrl}`).join(","),
    endpoints: members.map((m) => m.clientUrl).join(","),
  };
}

export async function runDev(o: DevOptions): Promise<void> {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 9) throw new Error(`--nodes: expected 1..9, got ${o.nodes}`);
  const layout = devClusterLayout(o);
  const dataRoot = path.resolve(o.data);
  if (o.fresh) fs.rmSync(dataRoot, { recursive: true, force: true });
  fs.mkdirSync(dataRoot, { recursive: true });
  const script = process.argv[1];
  const children: ChildProcess[] = [];
  for (const m of layout.members) {
    const logFile = fs.openSync(path.join(dataRoot, `${m.name}.log`), "a");
    const child = spawn(
      process.execPath,
      [
        ...process.execArgv,
        script,
        "server",
        "--name", m.name,
        "--data-dir", path.join(dataRoot, m.name),
        "--client-url", m.clientUrl,
        "--peer-url", m.peerUrl,
        "--initial-cluster", layout.initialCluster,
        "--initial-cluster-clients", layout.initialClusterClients,
        "--log-level", o.logLevel,
      ],
      { stdio: ["ignore", logFile, logFile] },
    );
    children.push(child);
    child.on("exit", (code, signal) => {
      if (!stopping) console.error(`member ${m.name} exited (${signal ?? code}); see ${path.join(dataRoot, `${m.name}.log`)}`);
    });
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping the dev cluster (graceful: leadership is handed over first)…");
    for (const c of children) c.kill("SIGTERM");
    const killer = setTimeout(() => children.forEach((c) => c.kill("SIGKILL")), 10_000);
    killer.unref();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);

  console.log(`Concord dev cluster: ${o.nodes} member process(es) on loopback, data in ${dataRoot}`);
  for (const m of layout.members) console.log(`  ${m.name}  clients ${m.clientUrl}  peers ${m.peerUrl}  log ${path.join(dataRoot, m.name + ".log")}`);
  console.log(`
Try it (in another terminal):
  export CONCORD_ENDPOINTS=${layout.endpoints}
  curl -s http://127.0.0.1:${o.basePort}/status | head -c 300; echo
  curl -s http://127.0.0.1:${o.basePort}/metrics | grep concord_raft_
Press Ctrl-C to stop.`);
  await Promise.all(children.map((c) => new Promise((r) => c.on("exit", r))));
}
