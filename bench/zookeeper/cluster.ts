// A 3-server ZooKeeper 3.8 ensemble on loopback (Debian's `zookeeper` package) for npm run bench:compare:
// fresh data dirs, one java process per server started and stopped by pid, ready once all three answer `srvr`
// as leader or follower. Durability as the other two systems: forceSync stays at its default (yes), so every
// transaction-log write is fsynced before a server acknowledges it.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

/** The Debian package's server jar; its manifest's Class-Path names every dependency under /usr/share/java. */
const ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar";
/** slf4j's simple binding, so warnings land on stderr (the server log file) and nothing else is needed. */
const SLF4J_BINDING = "/usr/share/java/slf4j-simple.jar";
export const ZOOKEEPER_SERVERS = [1, 2, 3] as const;

export interface ZooKeeperPorts {
  client: number;
  peer: number;
  election: number;
}

/** Server i (1-based) listens on i2181 for clients, i2888 for its peers and i3888 for leader election. */
export function portsOf(server: number): ZooKeeperPorts {
  return { client: server * 10_000 + 2181, peer: server * 10_000 + 2888, election: server * 10_000 + 3888 };
}

/** zoo.cfg of one server: the same ensemble list in each, its own data dir and client port. */
export function zooCfg(server: number, dataDir: string): string {
  return [
    "tickTime=2000",
    "initLimit=10",
    "syncLimit=5",
    `dataDir=${dataDir}`,
    `clientPort=${portsOf(server).client}`,
    "clientPortAddress=127.0.0.1",
    // The load client keeps one session per server; the fill and setup add a few more.
    "maxClientCnxns=0",
    "admin.enableServer=false",
    "4lw.commands.whitelist=srvr,ruok,mntr",
    ...ZOOKEEPER_SERVERS.map((s) => `server.${s}=127.0.0.1:${portsOf(s).peer}:${portsOf(s).election}`),
    "",
  ].join("\n");
}

/** Installs Debian's zookeeper (and with it a Java runtime) when its jar is missing. */
export function ensureZooKeeperInstalled(): void {
  if (fs.existsSync(ZOOKEEPER_JAR)) return;
  execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore" });
  execFileSync("apt-get", ["install", "-y", "-qq", "zookeeper"], {
    stdio: "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (!fs.existsSync(ZOOKEEPER_JAR)) throw new Error(`apt-get install zookeeper left no ${ZOOKEEPER_JAR}`);
}

/** Sends a four-letter word and returns the whole reply ("" when the server is not answering yet). */
export function fourLetterWord(port: number, word: "srvr" | "ruok" | "mntr", timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = () => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(timeoutMs, done);
    socket.on("connect", () => socket.write(word));
    socket.on("data", (d) => (reply += d.toString("utf8")));
    socket.on("end", done);
    socket.on("error", done);
  });
}

/** The `Mode:` line of a `srvr` reply: leader, follower, or undefined while the server is not serving. */
export function modeOf(srvrReply: string): string | undefined {
  return /^Mode: (\w+)/m.exec(srvrReply)?.[1];
}

/** A number from an `mntr` reply ("zk_cnt_fsynctime\t42" → 42 for key "cnt_fsynctime"), undefined if absent. */
export function mntrValue(mntrReply: string, key: string): number | undefined {
  const m = new RegExp(`^zk_${key}\\s+(\\S+)$`, "m").exec(mntrReply);
  return m ? Number(m[1]) : undefined;
}

export class ZooKeeperCluster {
  private constructor(
    readonly dir: string,
    private readonly servers: ChildProcess[],
  ) {}

  /** "127.0.0.1:12181,127.0.0.1:22181,127.0.0.1:32181" */
  static connectionString(): string {
    return ZOOKEEPER_SERVERS.map((s) => `127.0.0.1:${portsOf(s).client}`).join(",");
  }

  /** Starts the three servers in fresh directories under `dir` (emptied first) and waits until all serve. */
  static async start(dir: string, readyTimeoutMs = 60_000): Promise<ZooKeeperCluster> {
    ensureZooKeeperInstalled();
    fs.rmSync(dir, { recursive: true, force: true });
    const servers: ChildProcess[] = [];
    const cluster = new ZooKeeperCluster(dir, servers);
    try {
      for (const s of ZOOKEEPER_SERVERS) {
        const home = path.join(dir, `n${s}`);
        fs.mkdirSync(path.join(home, "data"), { recursive: true });
        fs.writeFileSync(path.join(home, "data/myid"), `${s}\n`);
        fs.writeFileSync(path.join(home, "zoo.cfg"), zooCfg(s, path.join(home, "data")));
        const log = fs.openSync(path.join(home, "server.log"), "w");
        const child = spawn(
          "java",
          [
            // zkServer.sh's default heap; without it the JVM may take a quarter of the machine's memory.
            "-Xmx1000m",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            `${ZOOKEEPER_JAR}:${SLF4J_BINDING}`,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            path.join(home, "zoo.cfg"),
          ],
          { stdio: ["ignore", log, log] },
        );
        fs.closeSync(log);
        servers.push(child);
        fs.writeFileSync(path.join(home, "server.pid"), `${child.pid}\n`);
      }
      await cluster.waitServing(readyTimeoutMs);
      return cluster;
    } catch (e) {
      await cluster.kill(); // the directory stays: the error names its logs
      throw e;
    }
  }

  pids(): number[] {
    return this.servers.map((c) => c.pid!);
  }

  private async waitServing(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let modes: (string | undefined)[] = [];
    while (Date.now() < deadline) {
      const exited = this.servers.findIndex((c) => c.exitCode !== null || c.signalCode !== null);
      if (exited >= 0)
        throw new Error(
          `zookeeper server ${exited + 1} exited while starting; see ${path.join(this.dir, `n${exited + 1}/server.log`)}`,
        );
      modes = await Promise.all(
        ZOOKEEPER_SERVERS.map(async (s) => modeOf(await fourLetterWord(portsOf(s).client, "srvr"))),
      );
      if (modes.every((m) => m === "leader" || m === "follower") && modes.includes("leader")) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      `zookeeper ensemble not serving after ${timeoutMs} ms (modes: ${modes.map((m) => m ?? "none").join(", ")}); logs in ${this.dir}`,
    );
  }

  /** Stops the servers and removes their directory. */
  async stop(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** SIGTERM to every server this process started, SIGKILL to any still running 5 s later. */
  async kill(): Promise<void> {
    const running = this.servers.filter((c) => c.exitCode === null && c.signalCode === null);
    const exits = running.map((c) => new Promise<void>((r) => c.once("exit", () => r())));
    for (const c of running) c.kill("SIGTERM");
    const timer = setTimeout(() => running.forEach((c) => c.kill("SIGKILL")), 5000);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
