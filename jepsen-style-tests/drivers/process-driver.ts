// The process driver: each member is a `concord server` node process on loopback, and every directed peer
// link A→B goes through a FaultProxy the nemesis controls.
//
// Wiring: member A gets its own --initial-cluster in which every OTHER member's peer URL is the proxy for
// A→B (A dials B only through it), and all members share an explicit --cluster-id (the derived default would
// differ, since the lists differ). Port plan inside [basePort, basePort + 200): member slot s listens for
// clients on base + 20·s and for peers on +1; the proxy for A→B listens on base + 20·slot(A) + 10 + slot(B).
//
// Each member runs in its own process group (node --import tsx, so the group holds the server itself):
// SIGKILL/SIGSTOP/SIGCONT go to the group. A member keeps its data directory across kill/restart, so a
// restart is a real recovery from the WAL. Joiners (member nemesis) get fresh slots and dial peers directly.

import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { FaultProxy, type LinkMode } from "./fault-proxy.js";
import { NORMAL_CLOCK, type ClockSettings, type ClusterDriver, type DiskFault, type DiskFaultOutcome, type MemberView } from "./driver.js";
import { connectClient, type Client } from "../client.js";
import { sleep, waitFor } from "../util.js";

export const PORT_MIN = 10000;
export const PORT_MAX = 10990;
const PORTS_PER_CLUSTER = 200;
const MAX_SLOTS = 10;
const HERE = path.dirname(new URL(import.meta.url).pathname);

export interface ProcessClusterOptions {
  size: number;
  basePort: number;
  /** Where data directories and logs go (the results directory's `nodes/`). */
  root: string;
  /** Repository whose cli/concord.ts runs (a mutant copy for the blindness checks). */
  repoRoot: string;
  tickMs?: number;
  electionTicks?: number;
  snapshotEntries?: number;
  logLevel?: string;
}

interface Member extends MemberView {
  readonly slot: number;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly clockFile: string;
  /** The member's own --initial-cluster (others' URLs through its outbound proxies). */
  initialCluster: string;
  join: boolean;
}

const liveGroups = new Set<number>();
let exitHook = false;
function track(pid: number): void {
  liveGroups.add(pid);
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const g of liveGroups) signalGroup(g, "SIGKILL");
  });
}
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export class ProcessCluster implements ClusterDriver {
  readonly kind = "process" as const;
  private readonly all = new Map<string, Member>();
  private readonly procs = new Map<string, ChildProcess>();
  private readonly exits = new Map<string, Promise<number | null>>();
  private readonly proxies = new Map<string, FaultProxy>();
  private readonly paused = new Set<string>();
  private readonly clusterId: string;
  private nextJoiner = 1;

  private constructor(readonly opts: ProcessClusterOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1 || opts.size > 7) throw new RangeError(`size ${opts.size}; expected 1..7`);
    if (opts.basePort < PORT_MIN || opts.basePort + PORTS_PER_CLUSTER - 1 > PORT_MAX + 9)
      throw new RangeError(`basePort ${opts.basePort}; expected ${PORT_MIN}..${PORT_MAX + 10 - PORTS_PER_CLUSTER} (a cluster takes ${PORTS_PER_CLUSTER} ports)`);
    this.clusterId = `jepsen-${opts.basePort}-${process.pid}`;
    fs.mkdirSync(opts.root, { recursive: true });
    for (let s = 0; s < opts.size; s++) this.define(`n${s + 1}`, s, false);
    const initial = [...this.all.values()];
    for (const a of initial) {
      a.initialCluster = initial.map((b) => `${b.name}=ws://127.0.0.1:${a === b ? b.peerPort : this.proxyPort(a, b)}`).join(",");
    }
  }

  static async start(opts: ProcessClusterOptions): Promise<ProcessCluster> {
    const c = new ProcessCluster(opts);
    try {
      const initial = [...c.all.values()];
      for (const a of initial) for (const b of initial) if (a !== b) await c.startProxy(a, b);
      for (const m of initial) c.spawnMember(m);
      const leader = await c.leader(60_000);
      if (leader === null) throw new Error("no leader within 60 s");
    } catch (e) {
      const tails = c.members().map((m) => `--- ${m.name} ---\n${tail(m.logFile, 12)}`).join("\n");
      await c.teardown();
      throw new Error(`cluster did not start: ${(e as Error).message}\n${tails}`);
    }
    return c;
  }

  private proxyPort(from: Member, to: Member): number {
    return this.opts.basePort + from.slot * 20 + 10 + to.slot;
  }

  private define(name: string, slot: number, join: boolean): Member {
    if (slot >= MAX_SLOTS) throw new RangeError(`member ${name}: no free slot (at most ${MAX_SLOTS} per cluster)`);
    const clientPort = this.opts.basePort + slot * 20;
    const m: Member = {
      name,
      slot,
      clientPort,
      peerPort: clientPort + 1,
      clientUrl: `ws://127.0.0.1:${clientPort}`,
      httpBase: `http://127.0.0.1:${clientPort}`,
      dataDir: path.join(this.opts.root, name),
      logFile: path.join(this.opts.root, `${name}.log`),
      clockFile: path.join(this.opts.root, `${name}.clock.json`),
      initialCluster: "",
      join,
    };
    fs.writeFileSync(m.clockFile, JSON.stringify(NORMAL_CLOCK));
    this.all.set(name, m);
    return m;
  }

  private async startProxy(a: Member, b: Member): Promise<void> {
    const p = new FaultProxy(`${a.name}->${b.name}`, this.proxyPort(a, b), b.peerPort);
    await p.start();
    this.proxies.set(`${a.name}->${b.name}`, p);
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
    return [...this.procs.keys()];
  }
  endpoints(): string[] {
    return [...this.all.values()].map((m) => m.clientUrl);
  }

  private spawnMember(m: Member): void {
    if (this.procs.has(m.name)) throw new Error(`member ${m.name} is already running`);
    const o = this.opts;
    const args = [
      "--import", "tsx",
      "--import", path.join(HERE, "..", "clock-skew.mjs"),
      path.join(o.repoRoot, "cli/concord.ts"), "server",
      "--name", m.name,
      "--data-dir", m.dataDir,
      "--client-url", m.clientUrl,
      "--peer-url", `ws://127.0.0.1:${m.peerPort}`,
      "--initial-cluster", m.initialCluster,
      // Only names in this member's --initial-cluster are accepted (members added later carry their own URL).
      "--initial-cluster-clients", [...this.all.values()].filter((x) => m.initialCluster.split(",").some((e) => e.startsWith(`${x.name}=`))).map((x) => `${x.name}=${x.clientUrl}`).join(","),
      "--cluster-id", this.clusterId,
      "--log-level", o.logLevel ?? "info",
    ];
    if (m.join) args.push("--join");
    if (o.tickMs !== undefined) args.push("--tick-ms", String(o.tickMs));
    if (o.electionTicks !== undefined) args.push("--election-ticks", String(o.electionTicks));
    if (o.snapshotEntries !== undefined) args.push("--snapshot-entries", String(o.snapshotEntries));
    const log = fs.openSync(m.logFile, "a");
    fs.writeSync(log, `\n### jepsen: starting ${m.name} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, args, {
      cwd: o.repoRoot,
      detached: true,
      stdio: ["ignore", log, log],
      env: { ...process.env, CONCORD_JEPSEN_CLOCK_FILE: m.clockFile },
    });
    fs.closeSync(log);
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start member ${m.name}`);
    track(pid);
    this.procs.set(m.name, child);
    this.exits.set(
      m.name,
      new Promise((resolve) =>
        child.once("exit", (code) => {
          signalGroup(pid, "SIGKILL");
          liveGroups.delete(pid);
          if (this.procs.get(m.name) === child) this.procs.delete(m.name);
          this.paused.delete(m.name);
          resolve(code);
        }),
      ),
    );
  }

  httpGet(name: string, urlPath: string, timeoutMs = 1500): Promise<string> {
    const m = this.member(name);
    return new Promise((resolve, reject) => {
      const req = http.get(`${m.httpBase}${urlPath}`, { timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString("utf8")) : reject(new Error(`${name} ${urlPath}: HTTP ${res.statusCode}`))));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${name} ${urlPath} timed out`)));
      req.on("error", reject);
    });
  }

  async status(name: string) {
    return JSON.parse(await this.httpGet(name, "/status")) as Awaited<ReturnType<ClusterDriver["status"]>>;
  }

  async leader(timeoutMs = 20_000): Promise<string | null> {
    try {
      return await waitFor("a leader every reachable member agrees on", timeoutMs, async () => {
        const names = this.running().filter((n) => !this.paused.has(n));
        const statuses = (await Promise.all(names.map((n) => this.status(n).catch(() => null)))).filter((s) => s !== null);
        if (statuses.length === 0) return undefined;
        const leader = statuses[0]!.leader;
        if (leader === null || !statuses.every((s) => s.leader === leader)) return undefined;
        return names.includes(leader) ? leader : undefined;
      }, 150);
    } catch {
      return null;
    }
  }

  setLink(from: string, to: string, mode: LinkMode, delayMs = 0): void {
    const p = this.proxies.get(`${this.member(from).name}->${this.member(to).name}`);
    // Joiners dial directly (no proxy): their links cannot be cut, which the partition nemesis knows.
    if (p) p.setMode(mode, delayMs);
  }
  /** Directed links that have a proxy (initial members only). */
  links(): Array<[string, string]> {
    return [...this.proxies.keys()].map((k) => k.split("->") as [string, string]);
  }
  healLinks(): void {
    for (const p of this.proxies.values()) p.setMode("pass");
  }

  async kill(name: string): Promise<void> {
    const child = this.procs.get(this.member(name).name);
    if (!child) return;
    signalGroup(child.pid!, "SIGKILL");
    await this.exits.get(name);
  }
  pause(name: string): void {
    const child = this.procs.get(this.member(name).name);
    if (!child) return;
    signalGroup(child.pid!, "SIGSTOP");
    this.paused.add(name);
  }
  resume(name: string): void {
    const child = this.procs.get(this.member(name).name);
    if (!child) return;
    signalGroup(child.pid!, "SIGCONT");
    this.paused.delete(name);
  }
  async restart(name: string): Promise<void> {
    const m = this.member(name);
    if (this.procs.has(name)) return;
    this.spawnMember(m);
  }
  setClock(name: string, clock: ClockSettings): void {
    const m = this.member(name);
    // Write then rename: the preload never reads a half-written file.
    fs.writeFileSync(`${m.clockFile}.tmp`, JSON.stringify(clock));
    fs.renameSync(`${m.clockFile}.tmp`, m.clockFile);
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
    const logStart = fs.existsSync(m.logFile) ? fs.statSync(m.logFile).size : 0;
    let detail: string;
    if (fault === "truncate-wal-tail") {
      // Cut inside the last record: a torn write the server must truncate and survive.
      const cut = Math.min(size, 1 + (seed % 7));
      fs.truncateSync(file, size - cut);
      detail = `truncated the last ${cut} bytes (size ${size} → ${size - cut})`;
    } else {
      // Flip bits well before the tail (in the first half of the newest segment): not a torn write, so
      // the server must refuse to start and name the file and offset.
      const fd = fs.openSync(file, "r+");
      try {
        const offset = 16 + (seed % Math.max(1, Math.floor(size / 2) - 16));
        const b = Buffer.alloc(1);
        fs.readSync(fd, b, 0, 1, offset);
        b[0] = b[0]! ^ 0x5a;
        fs.writeSync(fd, b, 0, 1, offset);
        fs.fsyncSync(fd);
        detail = `flipped bits 0x5a of byte ${offset} of ${size}`;
      } finally {
        fs.closeSync(fd);
      }
    }
    this.spawnMember(m);
    // A member that refuses to start exits within seconds; one that recovers answers /health.
    const exit = this.exits.get(name)!;
    const outcome = await Promise.race([
      exit.then((code) => ({ exited: true as const, code })),
      waitFor(`${name} to answer /health`, 30_000, () => this.httpGet(name, "/health").then(() => true)).then(
        () => ({ exited: false as const, code: null }),
        () => ({ exited: false as const, code: null }),
      ),
    ]);
    const log = fs.readFileSync(m.logFile, "utf8").slice(logStart);
    const corruptionLines = log.split("\n").filter((l) => /corrupt|crc|torn|truncat/i.test(l)).slice(0, 4).join("\n");
    const restarted = !outcome.exited && this.procs.has(name);
    const detected = fault === "flip-wal-bits" ? outcome.exited && /corrupt|crc/i.test(log) : restarted;
    return { fault, file, detail, detected, restarted, logExcerpt: corruptionLines.slice(0, 1500) };
  }

  async addMember(): Promise<string> {
    const slot = Math.max(...[...this.all.values()].map((m) => m.slot)) + 1;
    const name = `j${this.nextJoiner++}`;
    const m = this.define(name, slot, true);
    const client = await this.adminClient();
    try {
      await client.addMember(name, `ws://127.0.0.1:${m.peerPort}`, m.clientUrl);
      const peers = (await client.members()).members;
      m.initialCluster = peers.map((p) => `${p.id}=${p.peerUrl}`).join(",");
      if (!peers.some((p) => p.id === name)) m.initialCluster += `,${name}=ws://127.0.0.1:${m.peerPort}`;
      this.spawnMember(m);
      await waitFor(`${name} to catch up`, 30_000, async () => {
        const leader = await this.leader(5000);
        if (leader === null) return undefined;
        const [l, s] = await Promise.all([this.status(leader), this.status(name)]);
        return s.applied >= l.commit ? true : undefined;
      }, 200);
      await client.promoteMember(name);
    } finally {
      await client.close();
    }
    return name;
  }

  async removeMember(name: string): Promise<void> {
    this.member(name);
    const client = await this.adminClient();
    try {
      await client.removeMember(name);
    } finally {
      await client.close();
    }
    await sleep(300);
    await this.kill(name);
    this.all.delete(name);
  }

  private async adminClient(): Promise<Client> {
    return connectClient(this.endpoints(), { timeoutMs: 15_000 });
  }

  async teardown(): Promise<void> {
    for (const n of this.paused) this.resume(n);
    await Promise.all(this.running().map((n) => this.kill(n)));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    this.proxies.clear();
  }

  /** Member names that are stopped by SIGSTOP right now. */
  pausedMembers(): string[] {
    return [...this.paused];
  }
}

export function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
