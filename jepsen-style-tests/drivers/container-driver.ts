// The container driver: each member in its own container on a private docker network, from an image built
// locally FROM scratch (the node binary, the shared libraries it links, and the app with its node_modules).
// Uses the docker CLI through child_process (testcontainers is not a dependency; see the suite's README).
//
// Faults: partitions are iptables rules inside a container's network namespace
// (`nsenter -t <pid> -n iptables -A INPUT -s <peer ip> -j DROP`): dropping at B every packet from A cuts the
// A→B link (and, since TCP needs both halves, B→A too: container partitions are symmetric). `docker kill`,
// `docker pause`/`unpause`, `docker start` (the data directory is a bind mount, so restarts recover from the
// WAL). Clocks: the same preload as the process driver, its control file bind-mounted.
// Availability: the driver runs only when a Docker engine answers and a container can actually start;
// otherwise `containerDriverUnavailable()` says why and the runner records the run as skipped.

import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { LinkMode } from "./fault-proxy.js";
import { NORMAL_CLOCK, type ClockSettings, type ClusterDriver, type DiskFault, type DiskFaultOutcome, type MemberView } from "./driver.js";
import { connectClient } from "../client.js";
import { fetchStatus, httpGet, waitForLeader, waitUntil, type MemberStatus } from "../../src/harness/index.js";
import { sleep } from "../util.js";

const run = promisify(execFile);
const IMAGE = "concord-jepsen:local";
const CLIENT_PORT = 7000;
const PEER_PORT = 7001;

async function docker(args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await run("docker", args, { timeout: timeoutMs, maxBuffer: 64 << 20 });
  return stdout.trim();
}

/** A container's output: the server logs to stdout and stderr, docker keeps them apart. */
async function dockerLogs(container: string, since?: string): Promise<string> {
  const { stdout, stderr } = await run("docker", ["logs", ...(since ? ["--since", since] : []), container], { timeout: 30_000, maxBuffer: 256 << 20 });
  return stdout + stderr;
}

let availability: Promise<string | null> | null = null;

/** null when containers can run here; otherwise the reason they cannot. Builds the image on first call. */
export function containerDriverUnavailable(repoRoot?: string): Promise<string | null> {
  availability ??= (async () => {
    try {
      await docker(["version", "--format", "{{.Server.Version}}"], 10_000);
    } catch (e) {
      return `no Docker engine reachable (docker version: ${(e as Error).message.split("\n").slice(-2).join(" ").trim()}); start one (jepsen-style-tests/ci.sh does) to run the container driver`;
    }
    for (const tool of ["nsenter", "iptables"]) {
      try {
        execFileSync("which", [tool], { stdio: "ignore" });
      } catch {
        return `${tool} is not installed (partitions need it: apt-get install -y util-linux iptables)`;
      }
    }
    try {
      await buildImage(repoRoot ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), "../.."));
      await docker(["run", "--rm", "--entrypoint", "/usr/bin/node", IMAGE, "-e", "process.exit(0)"], 60_000);
    } catch (e) {
      return `the Docker engine answers but cannot build or run the FROM-scratch image: ${(e as Error).message.split("\n").slice(0, 3).join(" ")}`;
    }
    return null;
  })();
  return availability;
}

/** Builds IMAGE from scratch: node + its shared libraries (from ldd) + the app. */
async function buildImage(repoRoot: string): Promise<void> {
  const ctx = fs.mkdtempSync("/tmp/concord-image-");
  try {
    const rootfs = path.join(ctx, "rootfs");
    const copy = (from: string, to = from) => {
      fs.mkdirSync(path.dirname(path.join(rootfs, to)), { recursive: true });
      fs.cpSync(from, path.join(rootfs, to), { recursive: true, dereference: true });
    };
    const node = fs.realpathSync(process.execPath);
    copy(node, "/usr/bin/node");
    for (const line of execFileSync("ldd", [node], { encoding: "utf8" }).split("\n")) {
      const m = /(\/\S+)\s+\(0x/.exec(line);
      if (m) copy(m[1]!);
    }
    for (const part of ["src", "cli", "node_modules", "package.json", "tsconfig.json", "jepsen-style-tests/clock-skew.mjs"]) copy(path.join(repoRoot, part), path.join("/app", part));
    const addon = "build/Release/malloc_trim.node"; // links only libc, which ldd brought (src/server/c-heap.ts)
    if (fs.existsSync(path.join(repoRoot, addon))) copy(path.join(repoRoot, addon), path.join("/app", addon));
    fs.mkdirSync(path.join(rootfs, "tmp"), { recursive: true });
    fs.chmodSync(path.join(rootfs, "tmp"), 0o1777);
    fs.mkdirSync(path.join(rootfs, "data"), { recursive: true });
    fs.mkdirSync(path.join(rootfs, "clock"), { recursive: true });
    fs.writeFileSync(
      path.join(ctx, "Dockerfile"),
      [
        "FROM scratch",
        "COPY rootfs/ /",
        "WORKDIR /app",
        "ENV HOME=/tmp",
        `ENTRYPOINT ["/usr/bin/node", "--import", "tsx", "--import", "/app/jepsen-style-tests/clock-skew.mjs", "/app/cli/concord.ts", "server"]`,
        "",
      ].join("\n"),
    );
    await docker(["build", "-q", "-t", IMAGE, ctx], 300_000);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

interface Member extends MemberView {
  readonly slot: number;
  readonly ip: string;
  readonly container: string;
  readonly clockDir: string;
  initialCluster: string;
  join: boolean;
  created: boolean;
}

export interface ContainerClusterOptions {
  size: number;
  root: string;
  repoRoot: string;
  /** Unique per run: network and container names derive from it. */
  name: string;
}

export class ContainerCluster implements ClusterDriver {
  readonly kind = "container" as const;
  private readonly all = new Map<string, Member>();
  private readonly paused = new Set<string>();
  private readonly dropped = new Set<string>();
  private readonly network: string;
  private readonly subnet: string;
  private nextJoiner = 1;
  private readonly peerSecret = randomBytes(24).toString("hex");

  readonly opts: ContainerClusterOptions;

  private constructor(opts: ContainerClusterOptions) {
    this.network = `${opts.name}-net`;
    // A /24 per run from 172.29.x.0, x from the name, so parallel suites rarely collide.
    let h = 0;
    for (const c of opts.name) h = (h * 31 + c.charCodeAt(0)) & 0xff;
    this.subnet = `172.29.${h}`;
    this.opts = { ...opts, root: path.resolve(opts.root) };
    fs.mkdirSync(this.opts.root, { recursive: true });
    for (let s = 0; s < opts.size; s++) this.define(`n${s + 1}`, s, false);
    const initial = [...this.all.values()].map((m) => `${m.name}=ws://${m.ip}:${PEER_PORT}`).join(",");
    for (const m of this.all.values()) m.initialCluster = initial;
  }

  static async start(opts: ContainerClusterOptions): Promise<ContainerCluster> {
    const why = await containerDriverUnavailable(opts.repoRoot);
    if (why !== null) throw new Error(why);
    const c = new ContainerCluster(opts);
    try {
      await docker(["network", "rm", c.network]).catch(() => {});
      await docker(["network", "create", "--subnet", `${c.subnet}.0/24`, c.network]);
      for (const m of c.all.values()) await c.create(m);
      if ((await c.leader(60_000)) === null) throw new Error("no leader within 60 s");
    } catch (e) {
      await c.teardown();
      throw e;
    }
    return c;
  }

  private define(name: string, slot: number, join: boolean): Member {
    const dataDir = path.join(this.opts.root, name);
    const clockDir = path.join(this.opts.root, `${name}-clock`);
    fs.mkdirSync(dataDir, { recursive: true });
    fs.mkdirSync(clockDir, { recursive: true });
    fs.writeFileSync(path.join(clockDir, "clock.json"), JSON.stringify(NORMAL_CLOCK));
    const ip = `${this.subnet}.${10 + slot}`;
    const m: Member = {
      name, slot, ip, dataDir, clockDir, join, created: false,
      container: `${this.opts.name}-${name}`,
      clientUrl: `ws://${ip}:${CLIENT_PORT}`,
      httpBase: `http://${ip}:${CLIENT_PORT}`,
      logFile: path.join(this.opts.root, `${name}.log`),
      initialCluster: "",
    };
    this.all.set(name, m);
    return m;
  }

  private async create(m: Member): Promise<void> {
    await docker(["rm", "-f", m.container]).catch(() => {});
    const args = [
      "run", "-d", "--name", m.container, "--network", this.network, "--ip", m.ip, "--hostname", m.name,
      "--cap-add", "NET_ADMIN",
      "-v", `${m.dataDir}:/data`, "-v", `${m.clockDir}:/clock`,
      "-e", "CONCORD_JEPSEN_CLOCK_FILE=/clock/clock.json",
      // Members on a network authenticate each other with a shared secret, as deployed members must.
      "-e", `CONCORD_PEER_SECRET=${this.peerSecret}`,
      IMAGE,
      "--name", m.name, "--data-dir", "/data",
      "--client-url", `ws://${m.ip}:${CLIENT_PORT}`, "--peer-url", `ws://${m.ip}:${PEER_PORT}`,
      "--initial-cluster", m.initialCluster,
      // Only names in this member's --initial-cluster are accepted (members added later carry their own URL).
      "--initial-cluster-clients", [...this.all.values()].filter((x) => m.initialCluster.split(",").some((e) => e.startsWith(`${x.name}=`))).map((x) => `${x.name}=${x.clientUrl}`).join(","),
      "--cluster-id", this.opts.name,
    ];
    if (m.join) args.push("--join");
    await docker(args);
    m.created = true;
  }

  private member(name: string): Member {
    const m = this.all.get(name);
    if (!m) throw new Error(`no member ${JSON.stringify(name)}; members: ${[...this.all.keys()].join(", ")}`);
    return m;
  }

  members(): MemberView[] {
    return [...this.all.values()];
  }
  running(): string[] {
    return [...this.all.values()].filter((m) => !this.stopped.has(m.name)).map((m) => m.name);
  }
  private readonly stopped = new Set<string>();
  endpoints(): string[] {
    return [...this.all.values()].map((m) => m.clientUrl);
  }
  pausedMembers(): string[] {
    return [...this.paused];
  }
  links(): Array<[string, string]> {
    const names = [...this.all.keys()];
    return names.flatMap((a) => names.filter((b) => b !== a).map((b) => [a, b] as [string, string]));
  }

  private async healthy(name: string): Promise<true | undefined> {
    const r = await httpGet(`${this.member(name).httpBase}/health`, { timeoutMs: 1500 }).catch(() => null);
    return r?.status === 200 ? true : undefined;
  }

  status(name: string): Promise<MemberStatus> {
    return fetchStatus(this.member(name).httpBase, { timeoutMs: 1500 });
  }

  async leader(timeoutMs = 20_000): Promise<string | null> {
    const source = { reachable: () => this.running().filter((n) => !this.paused.has(n)), status: (n: string) => this.status(n) };
    return waitForLeader(source, timeoutMs, { everyMs: 200 }).catch(() => null);
  }

  private async pid(name: string): Promise<number> {
    return Number(await docker(["inspect", "-f", "{{.State.Pid}}", this.member(name).container]));
  }

  private async iptables(name: string, args: string[]): Promise<void> {
    const pid = await this.pid(name);
    if (!(pid > 0)) return; // Not running: nothing to filter; rules are re-applied on restart.
    await run("nsenter", ["-t", String(pid), "-n", "iptables", "-w", ...args], { timeout: 10_000 });
  }

  setLink(from: string, to: string, mode: LinkMode): void {
    const a = this.member(from);
    const key = `${from}->${to}`;
    // Containers get drop/pass only: delay and reset degrade to drop (tc netem is not in a FROM-scratch image).
    if (mode === "pass") {
      if (!this.dropped.delete(key)) return;
      void this.iptables(to, ["-D", "INPUT", "-s", a.ip, "-j", "DROP"]).catch(() => {});
    } else {
      if (this.dropped.has(key)) return;
      this.dropped.add(key);
      void this.iptables(to, ["-A", "INPUT", "-s", a.ip, "-j", "DROP"]).catch(() => {});
    }
  }
  healLinks(): void {
    for (const key of [...this.dropped]) {
      const [from, to] = key.split("->") as [string, string];
      this.setLink(from, to, "pass");
    }
  }

  async kill(name: string): Promise<void> {
    const m = this.member(name);
    if (this.paused.has(name)) await docker(["unpause", m.container]).catch(() => {});
    this.paused.delete(name);
    await docker(["kill", "-s", "KILL", m.container]).catch(() => {});
    this.stopped.add(name);
  }
  pause(name: string): void {
    this.paused.add(name);
    void docker(["pause", this.member(name).container]).catch(() => {});
  }
  resume(name: string): void {
    if (!this.paused.delete(name)) return;
    void docker(["unpause", this.member(name).container]).catch(() => {});
  }
  async restart(name: string): Promise<void> {
    const m = this.member(name);
    if (!this.stopped.has(name)) return;
    await docker(["start", m.container]);
    this.stopped.delete(name);
    // A restarted container has a fresh network namespace: re-apply its inbound drops.
    for (const key of this.dropped) {
      const [from, to] = key.split("->") as [string, string];
      if (to === name) await this.iptables(name, ["-A", "INPUT", "-s", this.member(from).ip, "-j", "DROP"]).catch(() => {});
    }
  }
  setClock(name: string, clock: ClockSettings): void {
    const m = this.member(name);
    const file = path.join(m.clockDir, "clock.json");
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(clock));
    fs.renameSync(`${file}.tmp`, file);
  }

  async corruptDisk(name: string, fault: DiskFault, seed: number): Promise<DiskFaultOutcome> {
    const m = this.member(name);
    await this.kill(name);
    const walDir = path.join(m.dataDir, "wal");
    const segments = fs.existsSync(walDir) ? fs.readdirSync(walDir).filter((f) => f.endsWith(".wal")).sort() : [];
    if (segments.length === 0) {
      await this.restart(name);
      return { fault, file: walDir, detail: "no WAL segment yet", detected: false, restarted: true, logExcerpt: "" };
    }
    const file = path.join(walDir, segments[segments.length - 1]!);
    const size = fs.statSync(file).size;
    let detail: string;
    if (fault === "truncate-wal-tail") {
      const cut = Math.min(size, 1 + (seed % 7));
      fs.truncateSync(file, size - cut);
      detail = `truncated the last ${cut} bytes`;
    } else {
      const fd = fs.openSync(file, "r+");
      const offset = 16 + (seed % Math.max(1, Math.floor(size / 2) - 16));
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, offset);
      b[0] = b[0]! ^ 0x5a;
      fs.writeSync(fd, b, 0, 1, offset);
      fs.closeSync(fd);
      detail = `flipped bits 0x5a of byte ${offset} of ${size}`;
    }
    const since = new Date().toISOString();
    await this.restart(name);
    let exited = false;
    await waitUntil(`${name} to start or exit`, 30_000, async () => {
      const state = await docker(["inspect", "-f", "{{.State.Running}}", m.container]);
      if (state === "false") return (exited = true);
      return this.healthy(name);
    }, { everyMs: 300 }).catch(() => {});
    if (exited) this.stopped.add(name);
    const log = await dockerLogs(m.container, since).catch(() => "");
    const detected = fault === "flip-wal-bits" ? exited && /corrupt|crc/i.test(log) : !exited;
    return { fault, file, detail, detected, restarted: !exited, logExcerpt: log.split("\n").filter((l) => /corrupt|crc|torn|truncat/i.test(l)).slice(0, 4).join("\n") };
  }

  async addMember(): Promise<string> {
    const slot = Math.max(...[...this.all.values()].map((m) => m.slot)) + 1;
    const name = `j${this.nextJoiner++}`;
    const m = this.define(name, slot, true);
    const client = await connectClient(this.endpoints(), { timeoutMs: 15_000 });
    try {
      await client.addMember(name, `ws://${m.ip}:${PEER_PORT}`, m.clientUrl);
      m.initialCluster = (await client.members()).members.map((p) => `${p.id}=${p.peerUrl}`).join(",");
      await this.create(m);
      await waitUntil(`${name} to catch up`, 30_000, async () => {
        const leader = await this.leader(5000);
        if (leader === null) return undefined;
        const [l, s] = await Promise.all([this.status(leader), this.status(name)]);
        return s.applied >= l.commit ? true : undefined;
      }, { everyMs: 300 });
      await client.promoteMember(name);
    } finally {
      await client.close();
    }
    return name;
  }

  async removeMember(name: string): Promise<void> {
    const m = this.member(name);
    const client = await connectClient(this.endpoints(), { timeoutMs: 15_000 });
    try {
      await client.removeMember(name);
    } finally {
      await client.close();
    }
    await sleep(300);
    await this.collectLog(m);
    await docker(["rm", "-f", m.container]).catch(() => {});
    this.all.delete(name);
  }

  private async collectLog(m: Member): Promise<void> {
    if (!m.created) return;
    const log = await dockerLogs(m.container).catch((e) => `(docker logs failed: ${(e as Error).message})`);
    fs.writeFileSync(m.logFile, log + "\n");
  }

  async teardown(): Promise<void> {
    for (const m of this.all.values()) {
      if (this.paused.has(m.name)) await docker(["unpause", m.container]).catch(() => {});
      await this.collectLog(m);
      await docker(["rm", "-f", m.container]).catch(() => {});
    }
    this.paused.clear();
    await docker(["network", "rm", this.network]).catch(() => {});
  }
}
