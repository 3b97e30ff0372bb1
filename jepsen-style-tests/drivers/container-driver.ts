// The container driver: each member in its own container on a private network with fixed addresses, run
// through testcontainers from the project's member image (image/build.ts: FROM scratch, nothing pulled) plus the
// clock-fault preload. A member counts as started when its /ready answers 200 (Wait.forHttp: no shell in the
// image is needed; forListeningPorts would exec /bin/sh inside it).
//
// Faults: partitions are iptables rules inside a container's network namespace, entered from the host
// (`nsenter -t <pid> -n iptables -A INPUT -s <peer ip> -j DROP`): dropping at B every packet from A cuts the
// A→B link (and, since TCP needs both halves, B→A too: container partitions are symmetric). SIGKILL, pause /
// unpause and start go through the engine (the data directory is a bind mount, so restarts recover from the
// WAL). Clocks: the same preload as the process driver, its control file bind-mounted.
// Availability: the driver runs only when a Docker engine answers and the image builds and runs; otherwise
// `containerDriverUnavailable()` says why and the runner records the run as skipped.

import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { GenericContainer, getContainerRuntimeClient, StartedNetwork, Wait, type ContainerRuntimeClient } from "testcontainers";
import type { LinkMode } from "./fault-proxy.js";
import { NORMAL_CLOCK, type ClockSettings, type ClusterDriver, type DiskFault, type DiskFaultOutcome, type MemberView } from "./driver.js";
import { connectClient } from "../client.js";
import { fetchStatus, httpGet, waitForLeader, waitUntil, type MemberStatus } from "../../src/harness/index.js";
import { buildMemberImage, checkImageRuns, CLIENT_PORT, IMAGE_ENTRYPOINT, PEER_PORT } from "../../image/build.js";
import { sleep } from "../util.js";

const run = promisify(execFile);
const SUITE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const REPO_ROOT = path.resolve(SUITE_DIR, "..");
const START_TIMEOUT_MS = 60_000;

let engine: Promise<string | null> | null = null;
const images = new Map<string, Promise<string>>();

/** null when containers can run members of `repoRoot` here; otherwise why not. Builds the image on first call. */
export async function containerDriverUnavailable(repoRoot = REPO_ROOT): Promise<string | null> {
  engine ??= (async () => {
    try {
      await getContainerRuntimeClient();
    } catch (e) {
      return `no Docker engine reachable (${firstLines(e, 2)}); start one (jepsen-style-tests/ci.sh does) to run the container driver`;
    }
    for (const tool of ["nsenter", "iptables"]) {
      try {
        execFileSync("which", [tool], { stdio: "ignore" });
      } catch {
        return `${tool} is not installed (partitions need it: apt-get install -y util-linux iptables)`;
      }
    }
    return null;
  })();
  const why = await engine;
  if (why !== null) return why;
  try {
    await jepsenImage(repoRoot);
    return null;
  } catch (e) {
    return `the Docker engine answers but cannot build or run the member image: ${firstLines(e, 3)}`;
  }
}

function firstLines(e: unknown, n: number): string {
  return String((e as Error).message ?? e).split("\n").slice(0, n).join(" ").trim();
}

/** The member image of `repoRoot` (a mutant's copy gets its own) with the clock preload on top; built once. */
function jepsenImage(repoRoot: string): Promise<string> {
  let image = images.get(repoRoot);
  if (image === undefined) {
    const id = createHash("sha256").update(repoRoot).digest("hex").slice(0, 12);
    image = (async () => {
      const member = await buildMemberImage({ repoRoot, tag: `concord-jepsen-member:${id}` });
      await checkImageRuns(member);
      const ctx = fs.mkdtempSync("/tmp/concord-jepsen-image-");
      try {
        fs.copyFileSync(path.join(SUITE_DIR, "clock-skew.mjs"), path.join(ctx, "clock-skew.mjs"));
        const [node, ...rest] = IMAGE_ENTRYPOINT;
        fs.writeFileSync(
          path.join(ctx, "Dockerfile"),
          [
            `FROM ${member}`,
            "COPY clock-skew.mjs /jepsen/clock-skew.mjs",
            `ENTRYPOINT ${JSON.stringify([node, "--import", "/jepsen/clock-skew.mjs", ...rest])}`,
            "",
          ].join("\n"),
        );
        const tag = `concord-jepsen:${id}`;
        await GenericContainer.fromDockerfile(ctx).build(tag, { deleteOnExit: false });
        return tag;
      } finally {
        fs.rmSync(ctx, { recursive: true, force: true });
      }
    })();
    images.set(repoRoot, image);
  }
  return image;
}

/** A GenericContainer with a fixed address on the run's network: every member's URLs are known before any starts. */
class MemberContainer extends GenericContainer {
  constructor(
    image: string,
    private readonly networkName: string,
    private readonly ip: string,
  ) {
    super(image);
    this.withNetworkMode(networkName);
  }
  protected override async beforeContainerCreated(): Promise<void> {
    this.createOpts.NetworkingConfig = { EndpointsConfig: { [this.networkName]: { IPAMConfig: { IPv4Address: this.ip } } } };
  }
}

interface Member extends MemberView {
  readonly slot: number;
  readonly ip: string;
  readonly containerName: string;
  readonly clockDir: string;
  initialCluster: string;
  join: boolean;
  /** Ends when the container stops: its output since its last start, appended to logFile. */
  logsFollowed?: Promise<void>;
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
  private readonly stopped = new Set<string>();
  private readonly dropped = new Set<string>();
  private readonly networkName: string;
  private readonly subnet: string;
  private network: StartedNetwork | null = null;
  private nextJoiner = 1;
  private readonly peerSecret = randomBytes(24).toString("hex");

  readonly opts: ContainerClusterOptions;

  private constructor(
    opts: ContainerClusterOptions,
    private readonly client: ContainerRuntimeClient,
    private readonly image: string,
  ) {
    this.networkName = `${opts.name}-net`;
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
    const c = new ContainerCluster(opts, await getContainerRuntimeClient(), await jepsenImage(opts.repoRoot));
    try {
      await c.removeLeftovers();
      const network = await c.client.network.create({ Name: c.networkName, Driver: "bridge", CheckDuplicate: true, IPAM: { Config: [{ Subnet: `${c.subnet}.0/24` }] } });
      c.network = new StartedNetwork(c.client, c.networkName, network);
      // Together: a member is ready once it knows a leader, which takes a majority of them running.
      await Promise.all([...c.all.values()].map((m) => c.create(m)));
      if ((await c.leader(START_TIMEOUT_MS)) === null) throw new Error(`no leader within ${START_TIMEOUT_MS / 1000} s`);
    } catch (e) {
      await c.teardown();
      throw e;
    }
    return c;
  }

  /** What an earlier run of the same name left behind when it died before its teardown (Ryuk is off). */
  private async removeLeftovers(): Promise<void> {
    for (const m of this.all.values()) await this.engineContainer(m).remove({ force: true }).catch(() => {});
    await this.client.network.getById(this.networkName).remove().catch(() => {});
  }

  private define(name: string, slot: number, join: boolean): Member {
    const dataDir = path.join(this.opts.root, name);
    const clockDir = path.join(this.opts.root, `${name}-clock`);
    fs.mkdirSync(dataDir, { recursive: true });
    fs.mkdirSync(clockDir, { recursive: true });
    fs.writeFileSync(path.join(clockDir, "clock.json"), JSON.stringify(NORMAL_CLOCK));
    const ip = `${this.subnet}.${10 + slot}`;
    const m: Member = {
      name, slot, ip, dataDir, clockDir, join,
      containerName: `${this.opts.name}-${name}`,
      clientUrl: `ws://${ip}:${CLIENT_PORT}`,
      httpBase: `http://${ip}:${CLIENT_PORT}`,
      logFile: path.join(this.opts.root, `${name}.log`),
      initialCluster: "",
    };
    this.all.set(name, m);
    return m;
  }

  /** Creates and starts m's container; resolves once its /ready answers 200. */
  private async create(m: Member): Promise<void> {
    await new MemberContainer(this.image, this.networkName, m.ip)
      .withName(m.containerName)
      .withHostname(m.name)
      .withBindMounts([
        { source: m.dataDir, target: "/data" },
        { source: m.clockDir, target: "/clock" },
      ])
      .withEnvironment({
        CONCORD_JEPSEN_CLOCK_FILE: "/clock/clock.json",
        // Members on a network authenticate each other with a shared secret, as deployed members must.
        CONCORD_PEER_SECRET: this.peerSecret,
      })
      .withCommand([
        "--name", m.name,
        "--client-url", m.clientUrl, "--peer-url", `ws://${m.ip}:${PEER_PORT}`,
        "--initial-cluster", m.initialCluster,
        // Only names in this member's --initial-cluster are accepted (members added later carry their own URL).
        "--initial-cluster-clients", [...this.all.values()].filter((x) => m.initialCluster.split(",").some((e) => e.startsWith(`${x.name}=`))).map((x) => `${x.name}=${x.clientUrl}`).join(","),
        "--cluster-id", this.opts.name,
        ...(m.join ? ["--join"] : []),
      ])
      // Published to a host port only for the wait strategy, which probes through it.
      .withExposedPorts(CLIENT_PORT)
      .withWaitStrategy(Wait.forHttp("/ready", CLIENT_PORT, { abortOnContainerExit: true }).withReadTimeout(1500))
      .withStartupTimeout(START_TIMEOUT_MS)
      .withLogConsumer((stream) => this.followLogs(m, stream))
      .start();
  }

  private followLogs(m: Member, stream: Readable): void {
    const out = fs.createWriteStream(m.logFile, { flags: "a" });
    stream.pipe(out);
    m.logsFollowed = new Promise((resolve) => out.on("close", () => resolve()));
  }

  /** Resolves when m's stopped container's output is all in its log file (bounded: the engine may lag). */
  private logsClosed(m: Member): Promise<unknown> {
    return Promise.race([m.logsFollowed, sleep(5000)]);
  }

  private member(name: string): Member {
    const m = this.all.get(name);
    if (!m) throw new Error(`no member ${JSON.stringify(name)}; members: ${[...this.all.keys()].join(", ")}`);
    return m;
  }

  /**
   * The engine's handle on m's container, by its name (unique on the engine): kill, pause, start, inspect are
   * what StartedTestContainer does not offer, and a container that never became ready must still be removed.
   */
  private engineContainer(m: Member) {
    return this.client.container.getById(m.containerName);
  }

  members(): MemberView[] {
    return [...this.all.values()];
  }
  running(): string[] {
    return [...this.all.values()].filter((m) => !this.stopped.has(m.name)).map((m) => m.name);
  }
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

  private async iptables(name: string, args: string[]): Promise<void> {
    const { State } = await this.engineContainer(this.member(name)).inspect();
    if (!(State.Pid > 0)) return; // Not running: nothing to filter; rules are re-applied on restart.
    await run("nsenter", ["-t", String(State.Pid), "-n", "iptables", "-w", ...args], { timeout: 10_000 });
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
    const c = this.engineContainer(this.member(name));
    if (this.paused.delete(name)) await c.unpause().catch(() => {});
    await c.kill({ signal: "SIGKILL" }).catch(() => {});
    this.stopped.add(name);
  }
  pause(name: string): void {
    this.paused.add(name);
    void this.engineContainer(this.member(name)).pause().catch(() => {});
  }
  resume(name: string): void {
    if (!this.paused.delete(name)) return;
    void this.engineContainer(this.member(name)).unpause().catch(() => {});
  }
  /** Starts a killed member's container again, without waiting for it to be ready (it may be partitioned). */
  async restart(name: string): Promise<void> {
    const m = this.member(name);
    if (!this.stopped.has(name)) return;
    const c = this.engineContainer(m);
    await this.logsClosed(m); // the previous run's output is all in the log file before the next run's is appended
    await c.start();
    this.stopped.delete(name);
    const startedAt = new Date((await c.inspect()).State.StartedAt).getTime() / 1000;
    this.followLogs(m, await this.client.container.logs(c, { since: startedAt }));
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
    await this.logsClosed(m);
    const logStart = fs.existsSync(m.logFile) ? fs.statSync(m.logFile).size : 0;
    await this.restart(name);
    let exited = false;
    await waitUntil(`${name} to start or exit`, 30_000, async () => {
      if (!(await this.engineContainer(m).inspect()).State.Running) return (exited = true);
      return this.healthy(name);
    }, { everyMs: 300 }).catch(() => {});
    if (exited) {
      this.stopped.add(name);
      await this.logsClosed(m);
    }
    const log = fs.existsSync(m.logFile) ? fs.readFileSync(m.logFile).subarray(logStart).toString("utf8") : "";
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
    await this.removeContainer(m);
    this.all.delete(name);
  }

  private async removeContainer(m: Member): Promise<void> {
    const c = this.engineContainer(m);
    if (this.paused.delete(m.name)) await c.unpause().catch(() => {});
    await c.remove({ force: true }).catch(() => {});
    await this.logsClosed(m);
  }

  async teardown(): Promise<void> {
    await Promise.all([...this.all.values()].map((m) => this.removeContainer(m)));
    this.paused.clear();
    await this.network?.stop().catch(() => {});
    this.network = null;
  }
}
