// A cluster of real `concord server` processes on loopback, for integration tests, the failover benchmark and
// (later) the Jepsen-style suite.
//
// Each member is its own detached process group, so teardown (and SIGKILL of one member) kills tsx's child
// too; every live group is also killed when this process exits, so a failing or crashing test never leaves
// members behind. Members keep their data directory across kill/restart: a restart is a real recovery from the
// WAL and snapshots. Ports: member slot i listens for clients on basePort + 10·i and for peers on +1.

import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ClientSocket, RequestError, type ClientSocketOptions } from "../../src/transport/client-socket.js";
import { RETRYABLE } from "../../src/transport/protocol.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CLI_PATH = path.join(REPO_ROOT, "cli/concord.ts");

/** The port range integration tests may use (another engineer's tests use 8100+). */
export const PORT_MIN = 9100;
export const PORT_MAX = 9990;

export interface ClientTls {
  /** PEM files of the members' client-port certificate. */
  cert: string;
  key: string;
  /** PEM CA file the harness's clients trust. */
  ca: string;
  /**
   * Mutual TLS: members get --client-ca-file `ca` and require client certificates; the harness's own
   * connections (and HTTP requests) present this certificate.
   */
  clientCert?: { cert: string; key: string };
}

export interface PeerTls {
  cert: string;
  key: string;
  ca: string;
}

export interface ClusterOptions {
  /** Voters started at bootstrap (n1…nN). */
  size: number;
  /** Client port of n1; member slot i uses basePort + 10·i (peer port +1). Must stay within 9100–9990. */
  basePort: number;
  /** Raft tick; the server default (100 ms) when undefined. */
  tickMs?: number;
  electionTicks?: number;
  snapshotEntries?: number;
  /** Serve clients over wss with these files. */
  clientTls?: ClientTls;
  /** Peers talk wss with mutual TLS. */
  peerTls?: PeerTls;
  authTokensFile?: string;
  /** Bearer token the harness shows on /status and /metrics (needed when `authTokensFile` is set). */
  httpToken?: string;
  logLevel?: string;
  /** Extra flags for every member. */
  extraArgs?: string[];
  /** Data root; a fresh temp dir when undefined. Removed at teardown unless `keepData`. */
  root?: string;
  keepData?: boolean;
}

export interface MemberInfo {
  name: string;
  slot: number;
  clientUrl: string;
  peerUrl: string;
  httpBase: string;
  dataDir: string;
  logFile: string;
}

export interface MemberStatus {
  id: string;
  term: number;
  role: string;
  leader: string | null;
  commit: number;
  applied: number;
  lastIndex: number;
  revision: number;
  keys: number;
  snapshotIndex: number;
  confState: { voters: string[]; learners: string[] };
  members: { id: string; role: string; peerUrl: string; clientUrl: string }[];
}

/** Every process group started by any cluster in this process, killed on exit whatever happens. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const g of liveGroups) killGroup(g, "SIGKILL");
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a value other than undefined, or throw after `timeoutMs` naming `what`. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined> | T | undefined,
  everyMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ""}`,
      );
    }
    await sleep(everyMs);
  }
}

export class TestCluster {
  readonly root: string;
  readonly opts: ClusterOptions;
  readonly members = new Map<string, MemberInfo>();
  private readonly procs = new Map<string, ChildProcess>();
  private readonly exited = new Map<string, Promise<void>>();
  /** Peer URLs of the initial cluster (what bootstrap uses and what a joiner is told). */
  private initialCluster: string;
  private readonly initialClients: string;
  private clusterIdValue: string | undefined;

  private constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.root = opts.root ?? fs.mkdtempSync(path.join(os.tmpdir(), "concord-integ-"));
    fs.mkdirSync(this.root, { recursive: true });
    for (let i = 0; i < opts.size; i++) this.defineMember(`n${i + 1}`, i);
    const all = [...this.members.values()];
    this.initialCluster = all.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    this.initialClients = all.map((m) => `${m.name}=${m.clientUrl}`).join(",");
  }

  /** Start `size` members, and wait until they agree on a leader. */
  static async start(opts: ClusterOptions): Promise<TestCluster> {
    const c = new TestCluster(opts);
    try {
      for (const name of c.members.keys()) c.spawnMember(name);
      await c.waitForLeader(30_000);
    } catch (e) {
      const tails = [...c.members.keys()].map(
        (n) => `--- ${n} (${c.isRunning(n) ? "running" : "exited"}) ---\n${c.logTail(n, 15)}`,
      );
      await c.teardown();
      throw new Error(`${(e as Error).message}\n${tails.join("\n")}`);
    }
    return c;
  }

  private defineMember(name: string, slot: number): MemberInfo {
    const clientPort = this.opts.basePort + slot * 10;
    if (clientPort < PORT_MIN || clientPort + 1 > PORT_MAX)
      throw new RangeError(`member ${name}: port ${clientPort} outside ${PORT_MIN}–${PORT_MAX}`);
    const scheme = this.opts.clientTls ? "wss" : "ws";
    const m: MemberInfo = {
      name,
      slot,
      clientUrl: `${scheme}://127.0.0.1:${clientPort}`,
      peerUrl: `${this.opts.peerTls ? "wss" : "ws"}://127.0.0.1:${clientPort + 1}`,
      httpBase: `${this.opts.clientTls ? "https" : "http"}://127.0.0.1:${clientPort}`,
      dataDir: path.join(this.root, name),
      logFile: path.join(this.root, `${name}.log`),
    };
    this.members.set(name, m);
    return m;
  }

  member(name: string): MemberInfo {
    const m = this.members.get(name);
    if (!m) throw new Error(`no member ${name}; members: ${[...this.members.keys()].join(", ")}`);
    return m;
  }

  isRunning(name: string): boolean {
    return this.procs.has(name);
  }

  /** Names of members whose process is running. */
  running(): string[] {
    return [...this.procs.keys()];
  }

  private spawnMember(name: string, join?: { initialCluster: string; clusterId: string }): void {
    if (this.procs.has(name)) throw new Error(`member ${name} is already running`);
    const m = this.member(name);
    const o = this.opts;
    const args = [
      "--import",
      "tsx",
      CLI_PATH,
      "server",
      "--name",
      name,
      "--data-dir",
      m.dataDir,
      "--client-url",
      m.clientUrl,
      "--peer-url",
      m.peerUrl,
      "--initial-cluster",
      join?.initialCluster ?? this.initialCluster,
      "--initial-cluster-clients",
      this.initialClients,
      "--log-level",
      o.logLevel ?? "info",
    ];
    if (join) args.push("--join", "--cluster-id", join.clusterId);
    if (o.tickMs !== undefined) args.push("--tick-ms", String(o.tickMs));
    if (o.electionTicks !== undefined) args.push("--election-ticks", String(o.electionTicks));
    if (o.snapshotEntries !== undefined) args.push("--snapshot-entries", String(o.snapshotEntries));
    if (o.clientTls) args.push("--client-cert-file", o.clientTls.cert, "--client-key-file", o.clientTls.key);
    if (o.clientTls?.clientCert) args.push("--client-ca-file", o.clientTls.ca);
    if (o.peerTls)
      args.push("--peer-cert-file", o.peerTls.cert, "--peer-key-file", o.peerTls.key, "--peer-ca-file", o.peerTls.ca);
    if (o.authTokensFile) args.push("--auth-tokens-file", o.authTokensFile);
    if (o.extraArgs) args.push(...o.extraArgs);
    const log = fs.openSync(m.logFile, "a");
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, detached: true, stdio: ["ignore", log, log] });
    fs.closeSync(log);
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start member ${name}`);
    trackGroup(pid);
    this.procs.set(name, child);
    this.exited.set(
      name,
      new Promise<void>((resolve) =>
        child.once("exit", () => {
          // tsx runs the server in a child of its own: kill the rest of the group so no port stays bound.
          killGroup(pid, "SIGKILL");
          liveGroups.delete(pid);
          if (this.procs.get(name) === child) this.procs.delete(name);
          resolve();
        }),
      ),
    );
  }

  /** GET a member's HTTP endpoint (/status, /health, /metrics); resolves with status code and body. */
  httpGet(name: string, urlPath: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
    const m = this.member(name);
    const lib = m.httpBase.startsWith("https") ? https : http;
    const tls = this.clientTlsOptions();
    return new Promise((resolve, reject) => {
      const headers = this.opts.httpToken ? { Authorization: `Bearer ${this.opts.httpToken}` } : {};
      const req = lib.get(`${m.httpBase}${urlPath}`, { timeout: timeoutMs, headers, ...(tls ?? {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`GET ${urlPath} on ${name} timed out`)));
      req.on("error", reject);
    });
  }

  async status(name: string): Promise<MemberStatus> {
    const r = await this.httpGet(name, "/status");
    if (r.status !== 200) throw new Error(`${name} /status answered ${r.status}: ${r.body.slice(0, 200)}`);
    return JSON.parse(r.body) as MemberStatus;
  }

  /** Resident memory reported by a member's /metrics. */
  async rssBytes(name: string): Promise<number> {
    const r = await this.httpGet(name, "/metrics");
    const line = r.body.split("\n").find((l) => l.startsWith("concord_process_resident_memory_bytes "));
    if (!line) throw new Error(`${name} /metrics has no concord_process_resident_memory_bytes`);
    return Number(line.split(" ")[1]);
  }

  /**
   * Wait until every running member (except `exclude`) names the same leader, which is itself running and
   * reports role leader. Returns the leader's name.
   */
  async waitForLeader(timeoutMs = 20_000, opts: { exclude?: string[] } = {}): Promise<string> {
    return waitFor(
      "a leader agreed by every running member",
      timeoutMs,
      async () => {
        const names = this.running().filter((n) => !opts.exclude?.includes(n));
        if (names.length === 0) throw new Error("no member is running");
        const statuses = await Promise.all(names.map((n) => this.status(n)));
        const leader = statuses[0].leader;
        if (leader === null || !statuses.every((s) => s.leader === leader)) return undefined;
        const own = statuses.find((s) => s.id === leader);
        return own?.role === "leader" ? leader : undefined;
      },
      100,
    );
  }

  /** Wait until `name` has applied at least `index`. */
  async waitForApplied(name: string, index: number, timeoutMs = 20_000): Promise<MemberStatus> {
    return waitFor(
      `${name} to apply index ${index}`,
      timeoutMs,
      async () => {
        const s = await this.status(name);
        return s.applied >= index ? s : undefined;
      },
      100,
    );
  }

  /** The cluster id every member reports in its welcome (needed by a joining member). */
  async clusterId(): Promise<string> {
    if (this.clusterIdValue) return this.clusterIdValue;
    const name = this.running()[0];
    const sock = await this.connect(name);
    try {
      this.clusterIdValue = sock.welcome.clusterId;
    } finally {
      sock.close();
    }
    return this.clusterIdValue;
  }

  /** A client connection to a member (handshake done). */
  connect(name: string, opts: ClientSocketOptions = {}): Promise<ClientSocket> {
    const tls = this.clientTlsOptions();
    return ClientSocket.connect(this.member(name).clientUrl, { ...(tls ? { tls } : {}), ...opts });
  }

  /** What the harness's clients use for wss: the CA, and a client certificate under mutual TLS. */
  clientTlsOptions(): { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined {
    const t = this.opts.clientTls;
    if (!t) return undefined;
    const ca = fs.readFileSync(t.ca);
    return t.clientCert
      ? { ca, cert: fs.readFileSync(t.clientCert.cert), key: fs.readFileSync(t.clientCert.key) }
      : { ca };
  }

  /** Send `signal` to a member's process group and wait for it to exit. */
  async stop(name: string, signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000): Promise<void> {
    const child = this.procs.get(name);
    if (!child) return;
    const exited = this.exited.get(name)!;
    killGroup(child.pid!, signal);
    const timer = setTimeout(() => killGroup(child.pid!, "SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  kill(name: string): Promise<void> {
    return this.stop(name, "SIGKILL");
  }

  /** Start a stopped member again on its data directory. */
  async restart(name: string): Promise<void> {
    if (this.procs.has(name)) throw new Error(`member ${name} is still running`);
    this.spawnMember(name);
  }

  /**
   * Add a member: memberAdd as a learner (through `via`, any running member), start its process with --join,
   * wait until it has caught up with the leader's commit index, promote it to voter, and wait until it knows.
   */
  async addMember(name: string, via?: string): Promise<MemberInfo> {
    const slot = Math.max(...[...this.members.values()].map((m) => m.slot)) + 1;
    const m = this.defineMember(name, slot);
    const clusterId = await this.clusterId();
    const through = via ?? this.running()[0];
    const admin = await this.connect(through);
    try {
      await retrying(() =>
        admin.request("memberAdd", { member: name, peerUrl: m.peerUrl, clientUrl: m.clientUrl }, 10_000),
      );
      const peers = (await this.status(through)).members;
      const initialCluster = [...peers.map((p) => `${p.id}=${this.member(p.id).peerUrl}`), `${name}=${m.peerUrl}`];
      this.spawnMember(name, { initialCluster: [...new Set(initialCluster)].join(","), clusterId });
      const leader = await this.waitForLeader(20_000);
      const commit = (await this.status(leader)).commit;
      await this.waitForApplied(name, commit, 30_000);
      await retrying(() => admin.request("memberPromote", { member: name }, 10_000));
    } finally {
      admin.close();
    }
    // The promotion is acknowledged once applied on the leader; the new member learns it a moment later.
    await waitFor(`${name} to see itself a voter`, 20_000, async () =>
      (await this.status(name)).confState.voters.includes(name) ? true : undefined,
    );
    return m;
  }

  /** Remove a member from the configuration (through `via`), then stop its process. */
  async removeMember(name: string, via: string): Promise<void> {
    const admin = await this.connect(via);
    try {
      await retrying(() => admin.request("memberRemove", { member: name }, 10_000));
    } finally {
      admin.close();
    }
    await this.stop(name, "SIGTERM");
  }

  /** Kill every member and remove the data (unless keepData). Safe to call twice. */
  async teardown(): Promise<void> {
    await Promise.all(this.running().map((n) => this.stop(n, "SIGKILL")));
    if (!this.opts.keepData && !process.env.CONCORD_KEEP_TEST_DATA)
      fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** The last lines of a member's log, for failure messages. */
  logTail(name: string, lines = 30): string {
    try {
      return fs.readFileSync(this.member(name).logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

/** Retry `fn` while it fails with a retryable wire error, for up to `timeoutMs`. */
export async function retrying<T>(fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof RequestError) || !isRetryable(e.code) || performance.now() > deadline) throw e;
      await sleep(100);
    }
  }
}

export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}
