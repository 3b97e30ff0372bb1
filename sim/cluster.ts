// The simulated cluster: N production hosts (src/host, the code a member runs) with only the world replaced —
// each host's clock (sim/clock.ts), disk (sim/file-system.ts) and network (sim/peer-network.ts, and client
// connections: sim/client-socket.ts). A crash drops the host process and whatever its disk had not made
// durable; a restart opens a new Host on the same disk, as a restarted member recovers. A failed fsync stops
// the member (the host's own rule); the cluster then restarts it like any stopped process. Every host reports
// what it persists, applies and installs to the invariant checkers as it happens.

import { InvariantError } from "../src/assert.js";
import { Host } from "../src/host/host.js";
import type { HostConfig } from "../src/host/host-config.js";
import type { TokenEntry, TokenTable } from "../src/host/auth.js";
import { decodeNodeSnapshot } from "../src/host/node-snapshot.js";
import type { Replica } from "../src/host/replica.js";
import type { HostLogger, PeerHandlers, World } from "../src/host/world.js";
import type { RaftLog } from "../src/raft/log.js";
import type { Storage } from "../src/raft/storage.js";
import type { JointConfig } from "../src/raft/quorum.js";
import { EntryType, type ConfState, type Entry, type Message, type NodeId, type SnapshotMetadata } from "../src/raft/types.js";
import type { ApplyOutput } from "../src/statemachine/index.js";
import { StorageFailedError } from "../src/storage/errors.js";
import { simAuthCrypto } from "./auth-crypto.js";
import { SimClientSocket, SimLink, type LinkEnd } from "./client-socket.js";
import { SimClock, type SimTime } from "./clock.js";
import type { CoordinationChecker } from "./coordination-checker.js";
import type { EventQueue } from "./event-queue.js";
import { SimFileSystem } from "./file-system.js";
import { InvariantViolation, type Elector, type InvariantChecker, type LogView } from "./invariants.js";
import type { Network } from "./network.js";
import { SimPeerNetwork } from "./peer-network.js";
import type { Prng } from "./prng.js";
import type { PushFrame } from "../src/transport/protocol.js";
import { realMachine, type MachineFactory } from "./machines.js";

/** Virtual milliseconds per nominal tick (the member default). */
export const TICK = 100;

export interface SimStats {
  steps: number;
  elections: number;
  faults: Map<string, number>;
  snapshotsTaken: number;
  /** Snapshots taken over more than one turn, and those with entries applied while they were taken. */
  snapshotsAcrossTurns: number;
  snapshotsAppliedMeanwhile: number;
  /** Snapshots abandoned half taken (one from the leader installed meanwhile, or the member stopped). */
  snapshotsAbandoned: number;
  snapshotsInstalled: number;
  /** Snapshots from the leader restored over more than one turn. */
  installsAcrossTurns: number;
  restarts: number;
  fatalStops: number;
}

export interface SimContext extends SimTime {
  readonly queue: EventQueue<() => void>;
  now: number;
  readonly rng: Prng;
  readonly network: Network;
  readonly checker: InvariantChecker;
  readonly coordination: CoordinationChecker;
  readonly stats: SimStats;
  /** Record a line of the narrative/trace; `line` is only called when someone listens. */
  log(line: () => string): void;
  readonly tracing: boolean;
  fault(kind: string): void;
  /** Called when a host becomes leader (the nemesis may strike at once). */
  onNewLeader(host: SimHost): void;
  /** Called when a leader host appends a proposal (the nemesis may strike before it spreads). */
  onProposed(host: SimHost): void;
  /** Called when a leader applies an entry of an earlier term (one it inherited): the nemesis may strike then. */
  onInheritedApplied(host: SimHost): void;
  /** The first application of `index` anywhere: the committed stream, in index order. */
  onCommitted(index: number, output: ApplyOutput): void;
  /** A finding outside the event that is running (a host stopping on a broken invariant, an INTERNAL reply). */
  fail(e: unknown): void;
}

/** What every host of a seed is configured with (drawn per seed), beyond its name. */
export type HostParams = Omit<HostConfig, "name" | "dataDir" | "initialCluster" | "clientUrls" | "join" | "forwardProof">;

export interface DiskProfile {
  /** Latency range of an asynchronous disk call, virtual ms. */
  minLatency: number;
  maxLatency: number;
}

export const fastDisk: DiskProfile = { minLatency: 0, maxLatency: 1 };

function memberIds(cs: ConfState): NodeId[] {
  return [...new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext])];
}

export function isMember(cs: ConfState, id: NodeId): boolean {
  return cs.voters.includes(id) || cs.learners.includes(id) || cs.votersOutgoing.includes(id) || cs.learnersNext.includes(id);
}

/** A member's URLs are its name: the simulated network routes by name. */
export const peerUrl = (id: NodeId): string => `ws://${id}:1`;
export const clientUrl = (id: NodeId): string => `ws://${id}:2`;
const hostOfUrl = (url: string): NodeId => new URL(url).hostname;
const FORWARD_PROOF = "sim-forward-proof";

/**
 * The tokens file of every simulated member: one admin token, which the workload's clients present. Runtime
 * auth (auth-clients.ts) does not restrict it, as it does not restrict a real member's tokens-file tokens.
 */
export const SIM_ADMIN_TOKEN = "sim-admin-token-0123456789";
const SIM_ADMIN: TokenEntry = {
  name: "sim-admin",
  permissions: (["key", "lock", "election", "cluster"] as const).map((kind) => ({ kind, prefix: "", access: "admin" as const })),
};
const SIM_TOKENS: TokenTable = { lookup: (token) => (token === SIM_ADMIN_TOKEN ? SIM_ADMIN : undefined), size: 1 };
const DATA_DIR = "/data";

export class SimHost {
  host: Host | null = null;
  /** Bumped when the process ends (crash or stop): events of an earlier incarnation are ignored. */
  incarnation = 0;
  /** Opening (recovering) or running. */
  starting = false;
  /** Removed from the cluster and shut down for good. */
  retired = false;
  /** Global time until which the process is paused. */
  pausedUntil = 0;
  /** Member-clock rate of this machine (drift). */
  clockRate = 1;
  clock: SimClock;
  diskProfile: DiskProfile = fastDisk;
  readonly disk: SimFileSystem;
  /** The highest commit index this host ever persisted (for "commit never decreases" across restarts). */
  maxDurableCommit = 0;
  handlers: PeerHandlers | null = null;
  network: SimPeerNetwork | null = null;
  /** Client links to this host's gateway, and its own links to the leader (closed when the process ends). */
  readonly links = new Set<SimLink>();

  constructor(
    readonly id: NodeId,
    readonly rng: Prng,
    private readonly ctx: SimContext,
    /** The founding voters for a bootstrapping member; null for one that joins later. */
    readonly founders: NodeId[] | null,
  ) {
    this.disk = new SimFileSystem(rng.fork(), (at, fn) => this.atMachine(at, fn), () => ctx.now, () => this.rng.int(this.diskProfile.minLatency, this.diskProfile.maxLatency));
    this.clock = this.newClock();
  }

  get up(): boolean {
    return this.host !== null;
  }

  get replica(): Replica {
    if (!this.host) throw new Error(`sim: ${this.id} is not running`);
    return this.host.replica;
  }

  newClock(): SimClock {
    const inc = this.incarnation;
    return new SimClock(this.ctx, this.clockRate, () => this.incarnation === inc, () => this.pausedUntil, 1_800_000_000_000);
  }

  /** Runs `fn` at global time `at` on this machine: after a pause ends, whatever incarnation runs then. */
  atMachine(at: number, fn: () => void): void {
    const run = (): void => {
      if (this.pausedUntil > this.ctx.now) {
        this.ctx.queue.push(this.pausedUntil, run);
        return;
      }
      fn();
    };
    this.ctx.queue.push(at, run);
  }

  /** The core's log, for the invariant checks (white-box: the simulator reads the replica's private state). */
  coreLog(): RaftLog {
    return (this.replica as unknown as { raft: { raft: { log: RaftLog } } }).raft.raft.log;
  }

  /** The log as this host's disk holds it (what a restart loads), fed by the replica's persisted writes. */
  readonly durableLog = new DurableLogView();

  /** The core's voters (what its elections count). */
  coreConfig(): JointConfig {
    return (this.replica as unknown as { raft: { raft: { config: { voters: JointConfig } } } }).raft.raft.config.voters;
  }

  /** The core's log holds a membership change in (lo, hi] — or cannot tell (compacted there). */
  confChangeBetween(lo: number, hi: number): boolean {
    if (hi <= lo) return false;
    const log = this.coreLog();
    if (lo + 1 < log.firstIndex()) return true;
    return log.slice(lo + 1, Math.min(hi, log.lastIndex()) + 1).some((e) => e.type === EntryType.ConfChange);
  }

  /** Term of entry i in the core's log: -1 when compacted, undefined past the end. */
  termAt(i: number): number | undefined {
    const log = this.coreLog();
    if (i > log.lastIndex()) return undefined;
    if (i < log.firstIndex() - 1) return -1;
    return log.term(i);
  }

  /**
   * The term at index `i` of this host's log when `entries` (a write that just completed) were written: from
   * the entries themselves, or — for the one before them — from the core's log if it still holds the first of
   * them (a later write may have replaced them since: several are in flight); -1 when unknown.
   */
  termBefore(entries: readonly Entry[], i: number): number {
    const first = entries[0].index;
    if (i >= first) return entries[i - first].term;
    const log = this.coreLog();
    if (i < log.firstIndex() - 1 || first > log.lastIndex() || log.term(first) !== entries[0].term) return -1;
    return log.term(i);
  }
}

/** Terms of a log by index as a disk holds it: -1 where compacted into the snapshot. */
export class DurableLogView implements LogView {
  private terms: number[] = [0];

  get lastIndex(): number {
    return this.terms.length - 1;
  }

  get lastTerm(): number {
    return this.terms[this.terms.length - 1];
  }

  termAt(i: number): number | undefined {
    return i < this.terms.length ? this.terms[i] : undefined;
  }

  /** A (re)started member loaded its log from its disk into `storage`. */
  loaded(storage: Storage): void {
    const last = storage.lastIndex();
    this.terms = new Array<number>(last + 1).fill(-1);
    for (let i = storage.firstIndex() - 1; i <= last; i++) this.terms[i] = storage.term(i);
  }

  /** A write completed: a snapshot from the leader replaces the log; entries replace everything from their first index. */
  persisted(entries: readonly Entry[], snapshot: SnapshotMetadata | undefined): void {
    if (snapshot) {
      this.terms = new Array<number>(snapshot.index + 1).fill(-1);
      this.terms[snapshot.index] = snapshot.term;
    }
    if (entries.length === 0) return;
    if (entries[0].index > this.terms.length) throw new Error(`sim: a write of entries from ${entries[0].index} leaves a gap after ${this.lastIndex}`);
    this.terms.length = entries[0].index;
    for (const e of entries) this.terms.push(e.term);
  }
}

export interface ClusterOptions {
  params: HostParams;
  machine?: MachineFactory;
  /** Test hook: sees every Host the cluster starts (mutation tests break the core on purpose). */
  onHostStarted?: (host: SimHost) => void;
}

export class SimCluster {
  readonly hosts = new Map<NodeId, SimHost>();
  private readonly machine: MachineFactory;

  constructor(
    private readonly ctx: SimContext,
    private readonly opts: ClusterOptions,
  ) {
    this.machine = opts.machine ?? realMachine;
    ctx.checker.electorate = () => this.electors();
  }

  /** The members as the invariant checker judges elections: their configuration and log as they run, and their disk's log. */
  private *electors(): Iterable<Elector> {
    for (const h of this.hosts.values()) {
      if (h.retired) continue;
      const log = h.up ? h.coreLog() : null;
      const applied = log?.applied ?? 0;
      yield {
        id: h.id,
        config: h.up ? h.coreConfig() : null,
        campaignsWith: {
          running: log !== null && !h.confChangeBetween(applied, log.committed),
          onDisk: log !== null && !h.confChangeBetween(Math.min(applied, h.maxDurableCommit), Math.max(applied, h.maxDurableCommit)),
        },
        memory: log && { lastIndex: log.lastIndex(), lastTerm: log.lastTerm(), termAt: (i) => h.termAt(i) },
        durable: h.durableLog,
      };
    }
  }

  /** Create a founding member (bootstrapping on an empty disk) or a later one (joining) and start it. */
  addHost(id: NodeId, founders: NodeId[] | null, clockRate: number): SimHost {
    if (this.hosts.has(id)) throw new Error(`sim: host ${id} already exists`);
    const host = new SimHost(id, this.ctx.rng.fork(), this.ctx, founders);
    host.clockRate = clockRate;
    this.hosts.set(id, host);
    this.start(host);
    return host;
  }

  get(id: NodeId): SimHost | undefined {
    return this.hosts.get(id);
  }

  liveHosts(): SimHost[] {
    return [...this.hosts.values()].filter((h) => h.up);
  }

  /** The running host that believes it leads, with the highest term. */
  leader(): SimHost | undefined {
    let best: SimHost | undefined;
    for (const h of this.hosts.values()) {
      if (h.up && h.replica.isLeader && (!best || h.replica.term > best.replica.term)) best = h;
    }
    return best;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Lifecycle

  private config(host: SimHost): HostConfig {
    // A joining member knows the others' addresses (as --initial-cluster tells a real one); the founding members
    // are whoever founded the cluster.
    const names = host.founders ?? [...this.hosts.keys()];
    const known = new Set([...names, ...this.hosts.keys()]);
    return {
      ...this.opts.params,
      name: host.id,
      dataDir: DATA_DIR,
      initialCluster: new Map(names.map((n) => [n, peerUrl(n)])),
      clientUrls: new Map([...known].map((n) => [n, clientUrl(n)])),
      join: host.founders === null,
      forwardProof: FORWARD_PROOF,
      tokens: SIM_TOKENS,
    };
  }

  private world(host: SimHost): World {
    const inc = host.incarnation;
    const clock = host.clock;
    return {
      clock,
      fs: host.disk,
      random: () => host.rng.next(),
      logger: this.logger(host),
      network: async (handlers) => {
        host.handlers = handlers;
        return (host.network = new SimPeerNetwork(host.id, {
          delays: (from, to, messages) => this.batchDelays(from, to, messages),
          deliver: (from, to, at, fn) => this.deliverPeer(from, to, at, fn),
          atSender: (at, fn) => clock.at(at, () => host.incarnation === inc && fn()),
          now: () => this.ctx.now,
          isCut: (from, to) => this.ctx.network.isCut(from, to),
        }, handlers));
      },
      authCrypto: simAuthCrypto(FORWARD_PROOF, () => host.rng.next()),
      dialLeader: (url) => this.connect(this.hostEnd(host), hostOfUrl(url), { forwardedBy: FORWARD_PROOF }, (ms, fn) => clock.setTimer(ms, fn), undefined, undefined, host),
    };
  }

  private logger(host: SimHost): HostLogger {
    const ctx = this.ctx;
    const line = (level: string) => (obj: object | string, msg?: string) => {
      if (!ctx.tracing) return;
      const text = typeof obj === "string" ? obj : `${msg ?? ""} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : typeof v === "bigint" ? String(v) : v instanceof Error ? v.message : v))}`;
      ctx.log(() => `${host.id} ${level}: ${text}`);
    };
    const logger: HostLogger = { debug: () => {}, info: line("info"), warn: line("warn"), error: line("error"), fatal: line("fatal"), child: () => logger };
    return logger;
  }

  private start(host: SimHost): void {
    host.starting = true;
    host.clock = host.newClock();
    const inc = host.incarnation;
    const ctx = this.ctx;
    const id = host.id;
    Host.open({
      config: this.config(host),
      world: this.world(host),
      createStateMachine: () => this.machine.create(),
      observer: {
        proposed: () => ctx.onProposed(host),
        persisted: (entries, hs, snapshot) => {
          host.durableLog.persisted(entries, snapshot);
          if (entries.length > 0) ctx.checker.persisted(id, entries, (i) => host.termBefore(entries, i));
          if (hs) host.maxDurableCommit = Math.max(host.maxDurableCommit, hs.commit);
        },
        applied: (e, output) => {
          ctx.checker.applied(id, e, host.replica.isLeader ? host.replica.term : undefined);
          if (host.host !== null && e.term < host.replica.term && host.replica.isLeader) ctx.onInheritedApplied(host);
          if (output === undefined) return;
          const first = ctx.coordination.applied(id, e.index, e.data, output, host.replica.coord);
          if (first) ctx.onCommitted(e.index, output);
        },
        snapshotInstalled: (index, turns) => {
          ctx.checker.restartedAt(id, index);
          ctx.stats.snapshotsInstalled++;
          if (turns > 1) ctx.stats.installsAcrossTurns++;
          ctx.log(() => `${id} installs a snapshot at index ${index}`);
        },
        snapshotTaken: (index, { turns, appliedMeanwhile }) => {
          ctx.stats.snapshotsTaken++;
          if (turns > 1) ctx.stats.snapshotsAcrossTurns++;
          if (appliedMeanwhile > 0) ctx.stats.snapshotsAppliedMeanwhile++;
        },
        snapshotAbandoned: () => ctx.stats.snapshotsAbandoned++,
        snapshotSaved: (index) => {
          // The bytes as the file holds them: the log's snapshot reads them back from this host's disk.
          const saved = host.coreLog().storage.snapshot();
          if (saved.metadata.index === index) ctx.coordination.snapshotTaken(id, index, decodeNodeSnapshot(saved.data).sm);
        },
      },
    }).then(
      (h) => {
        if (host.incarnation !== inc) {
          void h.stop({ transfer: false });
          return;
        }
        host.host = h;
        host.starting = false;
        const r = h.replica;
        const status = r.status();
        host.durableLog.loaded(host.coreLog().storage);
        ctx.checker.restartedAt(id, r.appliedTo);
        ctx.checker.restartCommit(id, status.commit, host.maxDurableCommit);
        r.roleChanged.add((s) => {
          if (s.role !== "leader" || host.incarnation !== inc) return;
          ctx.stats.elections++;
          ctx.checker.leader(id, r.term);
          const voters = host.coreConfig();
          ctx.checker.leaderVotes(id, r.term, voters.incoming, voters.outgoing);
          ctx.checker.newLeaderLog(id, r.term, (i) => host.termAt(i));
          ctx.log(() => `${id} becomes leader of term ${r.term} (log ends at ${host.coreLog().lastIndex()})`);
          ctx.onNewLeader(host);
        });
        let previous = status.confState;
        r.membershipChanged.add((cs) => {
          if (host.incarnation !== inc) return;
          // A change that drops members is committed (it is applied): they are removed from the cluster and shut
          // down — once the change is known, after the ready loop has had time to hand over leadership. (A member
          // replaying configurations from before it was added is not being removed.)
          const before = memberIds(previous);
          previous = cs;
          for (const gone of before.filter((m) => !isMember(cs, m))) {
            const h = this.hosts.get(gone);
            if (h && !h.retired) ctx.queue.push(ctx.now + 3 * TICK, () => this.retire(h));
          }
        });
        r.failed.add((e) => {
          if (host.incarnation !== inc) return;
          // A failed disk is a fault the member must survive by stopping; anything else that stops it (a broken
          // invariant, a check of the simulator's failing inside the host's hooks) is a finding.
          if (!(e instanceof StorageFailedError) || (e as { cause?: unknown }).cause instanceof InvariantError) {
            ctx.fail(e);
            return;
          }
          ctx.stats.fatalStops++;
          ctx.log(() => `${id} stops after a fatal error: ${e.message}`);
          // The process exits: its page cache survives (no power loss). An operator (or systemd) restarts it.
          this.stop(host, false);
          ctx.queue.push(ctx.now + ctx.rng.int(2 * TICK, 10 * TICK), () => this.restart(host));
        });
        this.opts.onHostStarted?.(host);
      },
      (e: Error) => {
        if (host.incarnation !== inc) return;
        throw new InvariantViolation("restart", `${id} cannot start from its disk: ${e.message}`);
      },
    );
  }

  /** The process ends: with a power loss (`crash`: the disk loses what it had not made durable) or not. */
  private stop(host: SimHost, powerLoss: boolean): void {
    host.incarnation++;
    host.host = null;
    host.starting = false;
    host.handlers = null;
    // Whatever the dead process's code still does (a disk call completing) can no longer reach anyone.
    host.network?.kill();
    host.network = null;
    if (powerLoss) host.disk.crash();
    else host.disk.processExit();
    for (const link of host.links) link.close(`connection to ${host.id} reset`, "crash");
    host.links.clear();
  }

  crash(host: SimHost): void {
    if (!host.up && !host.starting) return;
    this.ctx.log(() => `${host.id} crashes`);
    this.stop(host, true);
  }

  restart(host: SimHost): void {
    if (host.up || host.starting || host.retired) return;
    this.ctx.stats.restarts++;
    this.ctx.log(() => `${host.id} restarts from its disk`);
    this.start(host);
  }

  /** A member removed from the configuration shuts down for good. */
  retire(host: SimHost): void {
    if (host.retired) return;
    this.ctx.log(() => `${host.id} is no longer a member and shuts down`);
    this.stop(host, false);
    host.retired = true;
  }

  /** The process stops running for `ms` (a GC pause, SIGSTOP, a starved machine); its clock runs on. */
  pause(host: SimHost, ms: number): void {
    host.pausedUntil = Math.max(host.pausedUntil, this.ctx.now + ms);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Network

  private batchDelays(from: NodeId, to: NodeId, messages: readonly Message[]): number[] {
    let delays: number[] | undefined;
    for (const m of messages) {
      if (m.type === "voteResp" && !m.reject) this.ctx.checker.voteGranted(m.from, m.to, m.term);
      // One draw per batch; a scripted filter (dropIf) or a cut drops the whole batch.
      const d = this.ctx.network.delays(m);
      if (d.length === 0) return [];
      delays ??= d;
    }
    void from;
    void to;
    return delays ?? [];
  }

  private deliverPeer(from: NodeId, to: NodeId, at: number, fn: (handlers: PeerHandlers) => void): void {
    const host = this.hosts.get(to);
    if (!host) return;
    host.atMachine(at, () => {
      if (!host.handlers) return;
      this.ctx.stats.steps++;
      if (!this.ctx.network.isCut(from, to)) host.network?.learn(from);
      fn(host.handlers);
    });
  }

  /** The end of a link at a host: runs in its current incarnation only. */
  hostEnd(host: SimHost): LinkEnd {
    const inc = host.incarnation;
    return {
      endpoint: host.id,
      at: (t, fn) => host.clock.at(t, () => host.incarnation === inc && fn()),
      now: () => this.ctx.now,
    };
  }

  /** The end of a link at a simulated client (never paused, never crashes). */
  clientEnd(endpoint: string): LinkEnd {
    return { endpoint, at: (t, fn) => this.ctx.queue.push(t, fn), now: () => this.ctx.now };
  }

  /** Opens a client connection from `from` to host `to`'s gateway and completes the handshake. */
  connect(
    from: LinkEnd,
    to: NodeId,
    hello: { token?: string; forwardedBy?: string },
    setTimer: (ms: number, fn: () => void) => { cancel(): void },
    onPush?: (frame: PushFrame) => void,
    onClose?: (reason: string) => void,
    /** The host making the connection (a forwarding member): its crash closes the link too. */
    owner?: SimHost,
  ): Promise<SimClientSocket> {
    const host = this.hosts.get(to);
    const link = new SimLink(this.ctx.network, from, host ? this.hostEnd(host) : this.clientEnd(`${to}(gone)`));
    owner?.links.add(link);
    if (host?.host) {
      const conn = host.host.gateway.accept(link.serverSide());
      if (conn) {
        link.attach(conn);
        host.links.add(link);
      }
    } else {
      // Nothing listens there: the connection is refused after a round trip.
      from.at(from.now() + 2 * this.ctx.network.delay(), () => link.close(`cannot reach ${to}: connection refused`, "server"));
    }
    return SimClientSocket.connect(link, { hello, setTimer, onPush, onClose, connectTimeoutMs: 2 * TICK });
  }
}
