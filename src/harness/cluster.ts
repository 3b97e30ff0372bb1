// A cluster of real `concord server` member processes on loopback — what the integration and client tests, the
// Jepsen-style suite's process driver, the benchmarks and `concord dev` run.
//
// Member slot i is named n{i+1}; its ports come from ports.ts, its data directory is <root>/<name> and its log
// <root>/<name>.log. Members are MemberProcesses: detached process groups, killed when this process exits, data
// kept across kill/restart. Members added later (addMember) join as learners, catch up and are promoted.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ClientSocket, RequestError, type ClientSocketOptions } from "../transport/client-socket.js";
import { harnessCommand, type ConcordCommand } from "./command.js";
import { MemberProcess, type MemberExit } from "./member.js";
import { DEFAULT_PORT_STRIDE, memberPorts } from "./ports.js";
import { isRetryable } from "./requests.js";
import { fetchStatus, httpGet, metricValue, type HttpAnswer, type HttpTls, type MemberStatus } from "./status.js";
import { sleep, waitForApplied, waitForLeader, waitUntil, type StatusSource } from "./wait.js";

export interface ClientTls {
  /** PEM files of the members' client-port certificate. */
  cert: string;
  key: string;
  /** PEM CA file the harness's own clients trust. */
  ca: string;
  /**
   * Mutual TLS: members get --client-ca-file `ca` and require client certificates; the harness's own connections
   * (and HTTP requests) present this certificate.
   */
  clientCert?: { cert: string; key: string };
}

export interface PeerTls {
  cert: string;
  key: string;
  ca: string;
}

export interface MemberInfo {
  readonly name: string;
  readonly slot: number;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** Base of /status, /health, /metrics (the client port). */
  readonly httpBase: string;
  readonly dataDir: string;
  readonly logFile: string;
}

export interface LocalClusterOptions {
  /** Voters started at bootstrap: n1…n{size}. */
  size: number;
  /** Client port of slot 0 (see ports.ts). */
  basePort: number;
  /** Ports between consecutive slots (default 10). */
  portStride?: number;
  /** The highest slot a member may take (a port budget); unlimited when undefined. */
  lastSlot?: number;
  /** How to run `concord`; harnessCommand() when undefined (the sources, through tsx or transpiled by the tests). */
  command?: ConcordCommand;
  /** Data and log root; a fresh temp directory when undefined. Removed at teardown unless `keepData`. */
  root?: string;
  keepData?: boolean;
  /** Server flags; the server's defaults when undefined. */
  tickMs?: number;
  electionTicks?: number;
  snapshotEntries?: number;
  logLevel?: string;
  /** Serve clients over wss with these files. */
  clientTls?: ClientTls;
  /** Peers talk wss with mutual TLS. */
  peerTls?: PeerTls;
  /** Every member's peer secret (given as CONCORD_PEER_SECRET, so that it never shows in ps). */
  peerSecret?: string;
  /**
   * Pass --insecure-peers, without which a member of a multi-member cluster with neither a peer secret nor
   * peer TLS refuses to start. Default: on unless `peerTls` or `peerSecret` is given (local test clusters).
   */
  insecurePeers?: boolean;
  authTokensFile?: string;
  /** Bearer token the harness shows on /status and /metrics (needed when `authTokensFile` is set). */
  httpToken?: string;
  /** Given to every member as --cluster-id (else the server derives it from the initial cluster). */
  clusterId?: string;
  /** Extra flags for every member. */
  extraArgs?: readonly string[];
  /**
   * The peer URL initial member `from` is given for `to` in its --initial-cluster (default: `to`'s own), e.g. a
   * fault proxy's. Members added later dial peers directly.
   */
  peerUrlFor?: (from: MemberInfo, to: MemberInfo) => string;
  /** Extra environment for a member's process. */
  env?: (member: MemberInfo) => Readonly<Record<string, string>>;
  /** Called whenever a member's process exits (`exit.requested` false: it exited on its own). */
  onExit?: (member: MemberInfo, exit: MemberExit) => void;
}

interface Member {
  info: MemberInfo;
  proc: MemberProcess;
}

export function describeExit(e: MemberExit): string {
  return e.signal !== null ? `killed by ${e.signal}` : `exit code ${e.code}`;
}

export class LocalCluster implements StatusSource {
  readonly root: string;
  readonly opts: LocalClusterOptions;
  private readonly all = new Map<string, Member>();
  private readonly command: ConcordCommand;
  private clusterIdValue: string | undefined;
  private tlsValue: HttpTls | undefined;

  constructor(opts: LocalClusterOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1)
      throw new RangeError(`cluster size ${opts.size}: expected an integer >= 1`);
    this.opts = opts;
    this.command = opts.command ?? harnessCommand();
    this.clusterIdValue = opts.clusterId;
    this.root = path.resolve(opts.root ?? fs.mkdtempSync(path.join(os.tmpdir(), "concord-cluster-")));
    fs.mkdirSync(this.root, { recursive: true });
    const initial = Array.from({ length: opts.size }, (_, i) => this.memberInfo(`n${i + 1}`, i));
    for (const m of initial) {
      const peers = initial.map((to) => ({
        name: to.name,
        peerUrl: to === m ? m.peerUrl : (opts.peerUrlFor?.(m, to) ?? to.peerUrl),
        clientUrl: to.clientUrl,
      }));
      this.define(m, peers, false);
    }
  }

  /** Define the cluster and start it (see start()). */
  static async start(opts: LocalClusterOptions, timeoutMs?: number): Promise<LocalCluster> {
    const c = new LocalCluster(opts);
    await c.start(timeoutMs);
    return c;
  }

  /**
   * Start every member that is not running and wait until all of them answer and agree on a leader. Fails at once
   * when a member exits meanwhile (a port in use, a locked data directory…), with the exited members' log tails —
   * or after `timeoutMs` with every member's — and then tears the cluster down. Resolves with the leader's name.
   */
  async start(timeoutMs = 30_000): Promise<string> {
    const members = [...this.all.values()];
    for (const m of members) if (!m.proc.running) m.proc.start();
    const giveUp = new AbortController();
    const firstExit = new Promise<never>((_, reject) => {
      for (const m of members) {
        void m.proc.exited.then((e) => reject(new MemberExitedError(m.info, e)));
      }
    });
    try {
      return await Promise.race([waitForLeader(this, timeoutMs, { signal: giveUp.signal }), firstExit]);
    } catch (e) {
      giveUp.abort();
      const exited = members.filter((m) => !m.proc.running);
      const shown = exited.length > 0 ? exited : members;
      const tails = shown.map(
        (m) =>
          `--- ${m.info.name} (${m.proc.running ? "running" : "exited"}), last lines of ${m.info.logFile} ---\n${m.proc.logTail(15)}`,
      );
      const first =
        e instanceof MemberExitedError
          ? `member ${e.member.name} exited (${describeExit(e.exit)}) before the cluster was up`
          : (e as Error).message;
      await this.teardown();
      throw new ClusterStartError(`${first}\n${tails.join("\n")}`);
    }
  }

  private memberInfo(name: string, slot: number): MemberInfo {
    if (this.opts.lastSlot !== undefined && slot > this.opts.lastSlot)
      throw new RangeError(`member ${name}: no free slot (slots 0..${this.opts.lastSlot} are the port budget)`);
    const { client, peer } = memberPorts(this.opts.basePort, slot, this.opts.portStride ?? DEFAULT_PORT_STRIDE);
    const clientScheme = this.opts.clientTls ? "wss" : "ws";
    return {
      name,
      slot,
      clientPort: client,
      peerPort: peer,
      clientUrl: `${clientScheme}://127.0.0.1:${client}`,
      peerUrl: `${this.opts.peerTls ? "wss" : "ws"}://127.0.0.1:${peer}`,
      httpBase: `${this.opts.clientTls ? "https" : "http"}://127.0.0.1:${client}`,
      dataDir: path.join(this.root, name),
      logFile: path.join(this.root, `${name}.log`),
    };
  }

  /** Register a member with its own view of the cluster (--initial-cluster and its clients' URLs). */
  private define(
    info: MemberInfo,
    peers: { name: string; peerUrl: string; clientUrl: string }[],
    join: boolean,
  ): Member {
    const o = this.opts;
    const args = [
      "--name",
      info.name,
      "--data-dir",
      info.dataDir,
      "--client-url",
      info.clientUrl,
      "--peer-url",
      info.peerUrl,
      "--initial-cluster",
      peers.map((p) => `${p.name}=${p.peerUrl}`).join(","),
      // The server accepts only names of its own --initial-cluster here.
      "--initial-cluster-clients",
      peers.map((p) => `${p.name}=${p.clientUrl}`).join(","),
      "--log-level",
      o.logLevel ?? "info",
    ];
    if (this.clusterIdValue !== undefined && (join || o.clusterId !== undefined))
      args.push("--cluster-id", this.clusterIdValue);
    if (join) args.push("--join");
    if (o.tickMs !== undefined) args.push("--tick-ms", String(o.tickMs));
    if (o.electionTicks !== undefined) args.push("--election-ticks", String(o.electionTicks));
    if (o.snapshotEntries !== undefined) args.push("--snapshot-entries", String(o.snapshotEntries));
    if (o.clientTls) args.push("--client-cert-file", o.clientTls.cert, "--client-key-file", o.clientTls.key);
    if (o.clientTls?.clientCert) args.push("--client-ca-file", o.clientTls.ca);
    if (o.peerTls)
      args.push("--peer-cert-file", o.peerTls.cert, "--peer-key-file", o.peerTls.key, "--peer-ca-file", o.peerTls.ca);
    if (o.authTokensFile !== undefined) args.push("--auth-tokens-file", o.authTokensFile);
    if (o.insecurePeers ?? (o.peerTls === undefined && o.peerSecret === undefined)) args.push("--insecure-peers");
    if (o.extraArgs) args.push(...o.extraArgs);
    const env = { ...(o.peerSecret !== undefined ? { CONCORD_PEER_SECRET: o.peerSecret } : {}), ...o.env?.(info) };
    const proc = new MemberProcess({
      name: info.name,
      command: this.command,
      serverArgs: args,
      logFile: info.logFile,
      env,
      ...(o.onExit ? { onExit: (e: MemberExit) => o.onExit!(info, e) } : {}),
    });
    const m = { info, proc };
    this.all.set(info.name, m);
    return m;
  }

  private get(name: string): Member {
    const m = this.all.get(name);
    if (!m) throw new Error(`no member ${JSON.stringify(name)}; members: ${[...this.all.keys()].join(", ")}`);
    return m;
  }

  member(name: string): MemberInfo {
    return this.get(name).info;
  }

  /** Every member, started or not, in slot order. */
  members(): MemberInfo[] {
    return [...this.all.values()].map((m) => m.info).sort((a, b) => a.slot - b.slot);
  }

  /** Client URLs of every member. */
  endpoints(): string[] {
    return this.members().map((m) => m.clientUrl);
  }

  /** Names of members whose process runs (paused ones included). */
  running(): string[] {
    return [...this.all.values()].filter((m) => m.proc.running).map((m) => m.info.name);
  }

  /** Names of members stopped by pause(). */
  paused(): string[] {
    return [...this.all.values()].filter((m) => m.proc.paused).map((m) => m.info.name);
  }

  /** Running members that are not paused: the ones expected to answer. */
  reachable(): string[] {
    return [...this.all.values()].filter((m) => m.proc.running && !m.proc.paused).map((m) => m.info.name);
  }

  /** The pid of a running member's process (its process group id too). */
  pid(name: string): number | undefined {
    return this.get(name).proc.pid;
  }

  /** Resolves when the member's current (or last) process has exited. */
  exited(name: string): Promise<MemberExit> {
    return this.get(name).proc.exited;
  }

  /** TLS material the harness's own clients use: the CA, and a client certificate under mutual TLS. */
  clientTlsOptions(): { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined {
    const t = this.opts.clientTls;
    if (!t) return undefined;
    const ca = fs.readFileSync(t.ca);
    return t.clientCert
      ? { ca, cert: fs.readFileSync(t.clientCert.cert), key: fs.readFileSync(t.clientCert.key) }
      : { ca };
  }

  private httpTls(): HttpTls | undefined {
    if (this.opts.clientTls && this.tlsValue === undefined) this.tlsValue = this.clientTlsOptions();
    return this.tlsValue;
  }

  /** GET one of a member's HTTP endpoints (/status, /health, /ready, /metrics): status code and body. */
  httpGet(name: string, urlPath: string, timeoutMs = 2000): Promise<HttpAnswer> {
    return httpGet(`${this.member(name).httpBase}${urlPath}`, { tls: this.httpTls(), timeoutMs, token: this.opts.httpToken });
  }

  status(name: string): Promise<MemberStatus> {
    return fetchStatus(this.member(name).httpBase, { tls: this.httpTls(), token: this.opts.httpToken });
  }

  /** Resident memory as the member's /metrics reports it. */
  async rssBytes(name: string): Promise<number> {
    const v = metricValue((await this.httpGet(name, "/metrics")).body, "concord_process_resident_memory_bytes");
    if (v === undefined) throw new Error(`${name} /metrics has no concord_process_resident_memory_bytes`);
    return v;
  }

  /** See wait.ts: every reachable member (but `exclude`) agrees on a leader that is one of them. */
  waitForLeader(timeoutMs = 20_000, opts: { exclude?: string[] } = {}): Promise<string> {
    return waitForLeader(this, timeoutMs, opts);
  }

  waitForApplied(name: string, index: number, timeoutMs = 20_000): Promise<MemberStatus> {
    return waitForApplied(this, name, index, timeoutMs);
  }

  /** A client connection to a member, handshake done (TLS material added under clientTls). */
  connect(name: string, opts: ClientSocketOptions = {}): Promise<ClientSocket> {
    const tls = this.clientTlsOptions();
    return ClientSocket.connect(this.member(name).clientUrl, { ...(tls ? { tls } : {}), ...opts });
  }

  /** The cluster id (from a member's welcome unless given), which a joining member needs. */
  async clusterId(): Promise<string> {
    if (this.clusterIdValue !== undefined) return this.clusterIdValue;
    const sock = await this.connect(this.reachable()[0] ?? this.members()[0].name);
    try {
      this.clusterIdValue = sock.welcome.clusterId;
    } finally {
      sock.close();
    }
    return this.clusterIdValue;
  }

  /** Send `signal` to a member's process group and wait for its exit (SIGKILL after `graceMs`). */
  async stop(name: string, signal: NodeJS.Signals = "SIGTERM", graceMs = 20_000): Promise<void> {
    await this.get(name).proc.stop(signal, graceMs);
  }

  async kill(name: string): Promise<void> {
    await this.get(name).proc.kill();
  }

  /** SIGSTOP the member's group: its sockets stay open, it answers nothing. */
  pause(name: string): void {
    this.get(name).proc.pause();
  }

  resume(name: string): void {
    this.get(name).proc.resume();
  }

  /** Start a stopped member again on its data directory (waiting for a stop still in progress to finish). */
  async restart(name: string): Promise<void> {
    const { proc } = this.get(name);
    if (proc.stopping) await proc.exited;
    if (proc.running) throw new Error(`member ${name} is still running`);
    proc.start();
  }

  /**
   * Add a member: memberAdd as a learner (through `via`, else any reachable member), start its process with
   * --join, wait until it has applied the leader's commit index, promote it to voter, and wait until it knows.
   */
  async addMember(name: string, via?: string): Promise<MemberInfo> {
    if (this.all.has(name)) throw new Error(`member ${name} already exists`);
    const slot = Math.max(...[...this.all.values()].map((m) => m.info.slot)) + 1;
    const info = this.memberInfo(name, slot);
    await this.clusterId(); // joiners are given it (--join --cluster-id)
    await this.admin("memberAdd", { member: name, peerUrl: info.peerUrl, clientUrl: info.clientUrl }, via, (s) =>
      s.members.some((m) => m.id === name),
    );
    const current = (await this.status(via ?? this.reachable()[0])).members.filter((p) => p.id !== name);
    // Peers are dialled directly (their real peer URLs, not what another member was given for them).
    const peers = current.map((p) => {
      const known = this.all.get(p.id)?.info;
      return { name: p.id, peerUrl: known?.peerUrl ?? p.peerUrl, clientUrl: known?.clientUrl ?? p.clientUrl };
    });
    peers.push({ name, peerUrl: info.peerUrl, clientUrl: info.clientUrl });
    const { proc } = this.define(info, peers, true);
    proc.start();
    const leader = await this.waitForLeader(20_000);
    const commit = (await this.status(leader)).commit;
    await this.waitForApplied(name, commit, 30_000);
    await this.admin("memberPromote", { member: name }, via, (s) => s.confState.voters.includes(name));
    // The promotion is acknowledged once applied on the leader; the new member learns it a moment later.
    await waitUntil(`${name} to see itself a voter`, 20_000, async () =>
      (await this.status(name)).confState.voters.includes(name) ? true : undefined,
    );
    return info;
  }

  /** Remove a member from the configuration (through `via`, else any other reachable member), stop it, forget it. */
  async removeMember(name: string, via?: string): Promise<void> {
    this.get(name);
    await this.admin("memberRemove", { member: name }, via, (s) => !s.members.some((m) => m.id === name), [name]);
    await this.stop(name, "SIGTERM");
    this.all.delete(name);
  }

  /**
   * A membership request, retried while it fails retryably (on the next reachable member, unless `via` is fixed).
   * Before a retry, `done` is asked of the member's status: a request whose reply was lost may have been applied,
   * and sending it again would be refused.
   */
  private async admin(
    op: string,
    args: Record<string, unknown>,
    via: string | undefined,
    done: (s: MemberStatus) => boolean,
    avoid: readonly string[] = [],
    timeoutMs = 30_000,
  ): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const candidates = via !== undefined ? [via] : this.reachable().filter((n) => !avoid.includes(n));
      if (candidates.length === 0) throw new Error(`${op}: no reachable member to send it to`);
      const target = candidates[attempt % candidates.length];
      try {
        if (attempt > 0 && done(await this.status(target))) return;
        const sock = await this.connect(target, { connectTimeoutMs: 2000 });
        try {
          await sock.request(op, args, 10_000);
          return;
        } finally {
          sock.close();
        }
      } catch (e) {
        const retryable = !(e instanceof RequestError) || isRetryable(e.code);
        if (!retryable || performance.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }

  /** Kill every member (resuming paused ones) and remove the data unless `keepData`. Safe to call twice. */
  async teardown(): Promise<void> {
    await Promise.all([...this.all.values()].map((m) => m.proc.stop("SIGKILL")));
    if (!this.opts.keepData && !process.env.CONCORD_KEEP_TEST_DATA)
      fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** The last lines of a member's log, for failure messages. */
  logTail(name: string, lines = 30): string {
    return this.get(name).proc.logTail(lines);
  }
}

/** A member exited while the cluster was starting. */
class MemberExitedError extends Error {
  constructor(
    readonly member: MemberInfo,
    readonly exit: MemberExit,
  ) {
    super(`member ${member.name} exited (${describeExit(exit)})`);
  }
}

/** The cluster did not come up; the message carries the reason and the relevant log tails. */
export class ClusterStartError extends Error {
  override readonly name = "ClusterStartError";
}
