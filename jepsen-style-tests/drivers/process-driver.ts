// The process driver: each member is a `concord server` node process on loopback (the project's cluster harness,
// src/harness), and every directed peer link A→B goes through a FaultProxy the nemesis controls.
//
// Wiring: member A gets its own --initial-cluster in which every OTHER member's peer URL is the proxy for
// A→B (A dials B only through it), and all members share an explicit --cluster-id (the derived default would
// differ, since the lists differ). Port plan inside [basePort, basePort + 200): member slot s listens for
// clients on base + 20·s and for peers on +1; the proxy for A→B listens on base + 20·slot(A) + 10 + slot(B).
//
// The harness runs each member in its own process group (node --import tsx plus the clock preload, from
// `repoRoot`, which may be a mutant copy): SIGKILL/SIGSTOP/SIGCONT go to the group. A member keeps its data
// directory across kill/restart, so a restart is a real recovery from the WAL. Joiners (member nemesis) get
// fresh slots and dial peers directly.

import fs from "node:fs";
import path from "node:path";
import { LocalCluster, sourceCommand, waitUntil, type MemberInfo, type MemberStatus } from "../../src/harness/index.js";
import { FaultProxy, type LinkMode } from "./fault-proxy.js";
import { type ClockSettings, type ClusterDriver, type DiskFault, type DiskFaultOutcome, type MemberView } from "./driver.js";

export const PORT_MIN = 10000;
export const PORT_MAX = 10990;
const PORTS_PER_CLUSTER = 200;
const PORT_STRIDE = 20;
const MAX_SLOTS = 10;
const CLOCK_PRELOAD = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "clock-skew.mjs");

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

const clockFile = (root: string, name: string) => path.join(root, `${name}.clock.json`);

export class ProcessCluster implements ClusterDriver {
  readonly kind = "process" as const;
  private readonly proxies = new Map<string, FaultProxy>();
  private nextJoiner = 1;

  private constructor(
    readonly opts: ProcessClusterOptions,
    private readonly cluster: LocalCluster,
  ) {}

  static async start(opts: ProcessClusterOptions): Promise<ProcessCluster> {
    if (!Number.isInteger(opts.size) || opts.size < 1 || opts.size > 7) throw new RangeError(`size ${opts.size}; expected 1..7`);
    if (opts.basePort < PORT_MIN || opts.basePort + PORTS_PER_CLUSTER - 1 > PORT_MAX + 9)
      throw new RangeError(`basePort ${opts.basePort}; expected ${PORT_MIN}..${PORT_MAX + 10 - PORTS_PER_CLUSTER} (a cluster takes ${PORTS_PER_CLUSTER} ports)`);
    const proxyPort = (from: MemberInfo, to: MemberInfo) => opts.basePort + from.slot * PORT_STRIDE + 10 + to.slot;
    const cluster = new LocalCluster({
      size: opts.size,
      basePort: opts.basePort,
      portStride: PORT_STRIDE,
      lastSlot: MAX_SLOTS - 1,
      command: sourceCommand(opts.repoRoot, [CLOCK_PRELOAD]),
      root: opts.root,
      keepData: true, // the runner keeps or removes them (--keep-data)
      tickMs: opts.tickMs,
      electionTicks: opts.electionTicks,
      snapshotEntries: opts.snapshotEntries,
      logLevel: opts.logLevel ?? "info",
      clusterId: `jepsen-${opts.basePort}-${process.pid}`,
      peerUrlFor: (from, to) => `ws://127.0.0.1:${proxyPort(from, to)}`,
      // No control file yet means a normal clock; setClock writes one.
      env: (m) => ({ CONCORD_JEPSEN_CLOCK_FILE: clockFile(opts.root, m.name) }),
    });
    const c = new ProcessCluster(opts, cluster);
    try {
      const initial = cluster.members();
      for (const m of initial) fs.rmSync(clockFile(opts.root, m.name), { force: true });
      for (const a of initial) {
        for (const b of initial) {
          if (a === b) continue;
          const p = new FaultProxy(`${a.name}->${b.name}`, proxyPort(a, b), b.peerPort);
          await p.start();
          c.proxies.set(`${a.name}->${b.name}`, p);
        }
      }
      await cluster.start(60_000);
    } catch (e) {
      await c.teardown();
      throw new Error(`cluster did not start: ${(e as Error).message}`);
    }
    return c;
  }

  members(): MemberView[] {
    return this.cluster.members();
  }
  running(): string[] {
    return this.cluster.running();
  }
  endpoints(): string[] {
    return this.cluster.endpoints();
  }
  status(name: string): Promise<MemberStatus> {
    return this.cluster.status(name);
  }
  /** The leader every running, unpaused member agrees on, or null after `timeoutMs`. */
  leader(timeoutMs = 20_000): Promise<string | null> {
    return this.cluster.waitForLeader(timeoutMs).catch(() => null);
  }

  setLink(from: string, to: string, mode: LinkMode, delayMs = 0): void {
    const p = this.proxies.get(`${this.cluster.member(from).name}->${this.cluster.member(to).name}`);
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

  kill(name: string): Promise<void> {
    return this.cluster.kill(name);
  }
  pause(name: string): void {
    this.cluster.pause(name);
  }
  resume(name: string): void {
    this.cluster.resume(name);
  }
  async restart(name: string): Promise<void> {
    if (this.cluster.running().includes(this.cluster.member(name).name)) return;
    await this.cluster.restart(name);
  }
  /** Member names that are stopped by SIGSTOP right now. */
  pausedMembers(): string[] {
    return this.cluster.paused();
  }
  setClock(name: string, clock: ClockSettings): void {
    const file = clockFile(this.opts.root, this.cluster.member(name).name);
    // Write then rename: the preload never reads a half-written file.
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(clock));
    fs.renameSync(`${file}.tmp`, file);
  }

  async corruptDisk(name: string, fault: DiskFault, seed: number): Promise<DiskFaultOutcome> {
    const m = this.cluster.member(name);
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
    await this.cluster.restart(name);
    // A member that refuses to start exits within seconds; one that recovers answers /health.
    const outcome = await Promise.race([
      this.cluster.exited(name).then((e) => ({ exited: true as const, code: e.code })),
      waitUntil(`${name} to answer /health`, 30_000, async () => ((await this.cluster.httpGet(name, "/health")).status === 200 ? true : undefined)).then(
        () => ({ exited: false as const, code: null }),
        () => ({ exited: false as const, code: null }),
      ),
    ]);
    const log = fs.readFileSync(m.logFile, "utf8").slice(logStart);
    const corruptionLines = log.split("\n").filter((l) => /corrupt|crc|torn|truncat/i.test(l)).slice(0, 4).join("\n");
    const restarted = !outcome.exited && this.cluster.running().includes(name);
    const detected = fault === "flip-wal-bits" ? outcome.exited && /corrupt|crc/i.test(log) : restarted;
    return { fault, file, detail, detected, restarted, logExcerpt: corruptionLines.slice(0, 1500) };
  }

  async addMember(): Promise<string> {
    const name = `j${this.nextJoiner++}`;
    await this.cluster.addMember(name);
    return name;
  }

  async removeMember(name: string): Promise<void> {
    await this.cluster.removeMember(name);
  }

  async teardown(): Promise<void> {
    await this.cluster.teardown();
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    this.proxies.clear();
  }
}
