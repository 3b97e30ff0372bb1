// A running Concord node: owns the event loop, the timers and the wiring between the pure Raft core, the
// durable storage, the peer transport and the replicated state machine.
//
// The ready loop, per Ready (Ready contract in src/raft/types.ts):
//   1. a leader sends its appends and heartbeats at once (before its own fsync: thesis §10.2.1 — the core
//      counts the leader's own entries only after `advance`);
//   2. start persisting hard state + entries + snapshot (DurableStorage group commit: saves issued while a
//      write is in flight share the next write and fdatasync);
//   3. apply the snapshot and the committed entries at once (they are durable on a quorum); resolve the
//      waiting proposals;
//   4. when this Ready's write and every earlier one have completed, in order: a follower or candidate sends
//      its messages (votes and acks must follow the fsync), read states are served, the core advances, and a
//      snapshot is taken when enough was applied.
// Several Readies are in flight at once (up to MAX_READIES_IN_FLIGHT): the next one's appends go out and its
// commits are applied while earlier writes are still being synced, so a write's latency is one quorum fsync,
// not a wait for the leader's previous fsync. Proposals and reads only touch the core synchronously; one Ready
// per event-loop turn carries all of them.

import { nodeFileSystem } from "../storage/node-file-system.js";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { decodeConfChange } from "../raft/confchange.js";
import { NotLeaderError, ProposalDroppedError } from "../raft/errors.js";
import { RaftNode } from "../raft/node.js";
import { EntryType, type ConfChange, type ConfState, type Entry, type HardState, type SnapshotMetadata, type Message, type NodeId, type Ready, type SoftState } from "../raft/types.js";
import { encodeCommand, type Command, type Outcome } from "../statemachine/commands.js";
import { contentHash } from "../statemachine/hash.js";
import type { StateMachine, StateMachineEvent } from "../statemachine/state-machine.js";
import type { Coordination } from "../locks/index.js";
import { DurableStorage } from "../storage/durable-storage.js";
import { PeerTransport } from "../transport/peer.js";
import type { ServerConfig } from "./config.js";
import { IdleCollector, shrinkPackBuffer } from "./idle-gc.js";
import { LeaseKeeper } from "./lease-keeper.js";
import type { Logger } from "./logger.js";
import { PendingProposals, ProposalError } from "./proposals.js";
import { ReadBarrier } from "./reads.js";
import { decodeNodeSnapshot, encodeNodeSnapshot, type Member } from "./node-snapshot.js";

export type { Member } from "./node-snapshot.js";

/** Readies taken before the oldest one's write completed; group commit merges their writes anyway. */
const MAX_READIES_IN_FLIGHT = 8;

/** What one applied entry produced, for the gateway to push (watch, lock and election streams). */
export interface AppliedEvents {
  index: number;
  events: StateMachineEvent[];
}

export interface NodeOptions {
  config: ServerConfig;
  logger: Logger;
  /** Builds the state machine, empty or restored from snapshot bytes (locks and elections installed). */
  createStateMachine(snapshot?: Uint8Array): Coordination;
  /** Monotonic milliseconds (lease deadlines); injectable so tests can skew a node's clock. */
  now?: () => number;
  /** Wall-clock milliseconds recorded in lease grants (informational). */
  wallClock?: () => number;
  /** Told of proposals and of each fsync's duration (the server feeds /metrics from it). */
  observer?: { proposed(): void; fsync(seconds: number): void };
}


export class ConcordNode extends EventEmitter {
  readonly id: NodeId;
  readonly config: ServerConfig;
  readonly log: Logger;
  /** The state machine with locks and elections; replaced wholesale when a snapshot is installed. */
  coord: Coordination;
  private readonly raft: RaftNode;
  private readonly disk: DurableStorage;
  private readonly transport: PeerTransport;
  private readonly proposals = new PendingProposals();
  private readonly reads: ReadBarrier;
  private readonly leases = new LeaseKeeper();
  /** Linearizable reads and keep-alives served (they apply nothing): with appliedIndex, what "idle" watches. */
  private readsAndKeepAlives = 0;
  private readonly idleGc = new IdleCollector(
    () => this.appliedIndex + this.readsAndKeepAlives,
    (ms) => this.log.info({ ms: Math.round(ms), rss: process.memoryUsage.rss() }, "idle: returned garbage to the OS"),
  );
  readonly members = new Map<NodeId, Member>();
  private confState: ConfState;
  private readonly createStateMachine: NodeOptions["createStateMachine"];
  readonly now: () => number;
  private readonly wallClock: () => number;
  private readonly observer: NodeOptions["observer"];

  private tickTimer: NodeJS.Timeout | undefined;
  private scheduled = false;
  /** Completes when every Ready taken so far has been persisted and advanced (they complete in order). */
  private readiesDone: Promise<void> = Promise.resolve();
  /** A commit-only hard state not written yet (it rides with the next save, see startReady). */
  private unsavedHardState: HardState | undefined;
  private stopped = false;
  private lastSnapshotIndex: number;
  private appliedIndex: number;
  /** Term of the entry at appliedIndex (for exported snapshots). */
  private appliedTerm = 0;
  private appliedBytesSinceSnapshot = 0;
  /** Size of the last snapshot taken or installed (see snapshotDue). */
  private lastSnapshotBytes = 0;
  private snapshotting = false;
  private fatal: Error | undefined;

  private constructor(opts: NodeOptions, disk: DurableStorage, transport: PeerTransport | undefined) {
    super();
    this.setMaxListeners(0);
    this.config = opts.config;
    this.id = opts.config.name;
    this.log = opts.logger;
    this.disk = disk;
    this.now = opts.now ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? (() => Date.now());
    this.observer = opts.observer;
    this.createStateMachine = opts.createStateMachine;
    this.reads = new ReadBarrier(`${this.id}:${randomBytes(4).toString("hex")}`);

    const snap = disk.snapshot;
    const snapData = snap?.data;
    this.lastSnapshotBytes = snapData?.byteLength ?? 0;
    this.coord = this.restoreSnapshotData(snapData);
    this.confState = snap?.metadata.confState ?? disk.log.initialState().confState;
    this.lastSnapshotIndex = snap?.metadata.index ?? 0;
    this.appliedIndex = this.lastSnapshotIndex;
    this.appliedTerm = snap?.metadata.term ?? 0;
    // Members known from config (URLs) for those in the configuration but not yet in a snapshot.
    for (const [id, peerUrl] of this.config.initialCluster) {
      if (!this.members.has(id)) this.members.set(id, { id, peerUrl, clientUrl: this.config.clientUrls.get(id) ?? "" });
    }

    const seed = randomBytes(4).readUInt32LE(0);
    this.raft = new RaftNode(
      {
        id: this.id,
        electionTicks: this.config.electionTicks,
        heartbeatTicks: this.config.heartbeatTicks,
        applied: this.appliedIndex,
        rng: mulberry32(seed),
      },
      disk.log,
    );
    this.transport =
      transport ??
      new PeerTransport({
        id: this.id,
        clusterId: this.config.clusterId,
        secret: this.config.peerSecret ?? this.config.clusterId,
        listen: this.config.peerListen,
        peers: this.peerUrls(),
        // --peer-cert-file/--peer-key-file/--peer-ca-file: wss with mutual TLS between members.
        ...(this.config.tls.peer
          ? {
              tls: {
                cert: readFileSync(this.config.tls.peer.cert),
                key: readFileSync(this.config.tls.peer.key),
                ...(this.config.tls.peer.ca ? { ca: readFileSync(this.config.tls.peer.ca) } : {}),
              },
            }
          : {}),
        logger: this.log.child({ component: "peer" }),
        onMessages: (batch) => this.onPeerMessages(batch),
        onSnapshotStatus: (to, ok) => {
          this.raft.reportSnapshot(to, ok);
          this.schedule();
        },
      });
  }

  static async start(opts: NodeOptions): Promise<ConcordNode> {
    const { config, logger } = opts;
    const disk = await DurableStorage.open(nodeFileSystem, config.dataDir, { repair: config.repair, logger: logger.child({ component: "storage" }) });
    if (disk.isNew && !config.join) {
      const voters = [...config.initialCluster.keys()].sort();
      const members: Member[] = voters.map((id) => ({ id, peerUrl: config.initialCluster.get(id)!, clientUrl: config.clientUrls.get(id) ?? "" }));
      const sm = opts.createStateMachine().stateMachine;
      await disk.bootstrap(voters, encodeNodeSnapshot({ v: 1, members, sm: sm.snapshot() }));
      logger.info({ voters }, "bootstrapped a new cluster");
    } else if (disk.isNew) {
      logger.info("joining an existing cluster: waiting for a snapshot from the leader");
    }
    const node = new ConcordNode(opts, disk, undefined);
    await node.transport.start();
    node.tickTimer = setInterval(() => node.tick(), config.tickMs);
    node.log.info(
      { id: node.id, term: node.raft.term, applied: node.appliedIndex, lastIndex: node.raft.status().lastIndex },
      "node started",
    );
    node.schedule();
    return node;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Public API for the gateway

  get sm(): StateMachine {
    return this.coord.stateMachine;
  }

  get role(): SoftState["role"] {
    return this.raft.role;
  }

  get leaderId(): NodeId | null {
    return this.raft.leader;
  }

  get isLeader(): boolean {
    return this.raft.role === "leader";
  }

  get applied(): number {
    return this.appliedIndex;
  }

  /** The leader's client URL, if a leader is known. */
  leaderClientUrl(): string | null {
    const l = this.raft.leader;
    return l === null ? null : (this.members.get(l)?.clientUrl || null);
  }

  /** Propose a command on the leader; resolves with its outcome once applied here. */
  propose(command: Command): Promise<Outcome> {
    this.assertRunning();
    if (command.op === "leaseGrant") (command as { grantedAt: number }).grantedAt = this.wallClock();
    let index: number;
    try {
      index = this.raft.propose(encodeCommand(command));
    } catch (e) {
      throw this.translateProposeError(e);
    }
    const p = this.proposals.add(index, this.raft.term);
    this.observer?.proposed();
    this.schedule();
    return p;
  }

  /** Resolves when a read of local state is linearizable (ReadIndex, batched per turn). */
  readBarrier(): Promise<void> {
    this.assertRunning();
    this.readsAndKeepAlives++;
    const p = this.reads.wait();
    this.schedule();
    return p;
  }

  /** A keep-alive on the leader: the TTL now remaining, or undefined if the lease does not exist. */
  keepAlive(leaseId: number): number | undefined {
    if (!this.isLeader) throw new ProposalError("NOT_LEADER", "keep-alives are answered by the leader");
    this.readsAndKeepAlives++;
    if (!this.sm.leaseAlive(leaseId)) return undefined;
    return this.leases.keepAlive(leaseId, this.now());
  }

  /** Remaining TTL of a lease as the leader sees it (undefined elsewhere). */
  leaseRemainingMs(leaseId: number): number | undefined {
    return this.isLeader ? this.leases.remainingMs(leaseId, this.now()) : undefined;
  }

  transferLeadership(to: NodeId): void {
    try {
      this.raft.transferLeadership(to);
    } catch (e) {
      throw this.translateProposeError(e);
    }
    this.schedule();
  }

  /** Add a member as a learner (it catches up by snapshot), or promote a learner to voter. */
  async changeMembership(cc: ConfChange, member?: Member): Promise<ConfState> {
    this.assertRunning();
    const withContext: ConfChange = member ? { ...cc, context: JSON.stringify(member) } : cc;
    let index: number;
    try {
      index = this.raft.proposeConfChange(withContext);
    } catch (e) {
      throw this.translateProposeError(e);
    }
    const p = this.proposals.add(index, this.raft.term);
    this.schedule();
    await p;
    return this.confState;
  }

  /** The state as of the last applied entry, in the node's snapshot format (what `concord snapshot save` writes). */
  exportSnapshot(): { index: number; term: number; data: Uint8Array; hash: string } {
    const sm = this.sm.snapshot();
    return {
      index: this.appliedIndex,
      term: this.appliedTerm,
      data: encodeNodeSnapshot({ v: 1, members: [...this.members.values()], sm }),
      hash: contentHash(sm), // what sm.hash() would return, without encoding the state a second time
    };
  }

  status() {
    const s = this.raft.status();
    return {
      ...s,
      revision: this.sm.revision,
      compactRevision: this.sm.compactRevision,
      keys: this.sm.keyCount,
      snapshotIndex: this.lastSnapshotIndex,
      members: [...this.members.values()].map((m) => ({
        ...m,
        role: this.confState.voters.includes(m.id) || this.confState.votersOutgoing.includes(m.id) ? "voter" : this.confState.learners.includes(m.id) ? "learner" : "removed",
      })).filter((m) => m.role !== "removed"),
      transport: this.transport.stats(),
      storage: this.disk.stats,
      leases: this.isLeader ? this.leases.size : undefined,
      fatal: this.fatal?.message,
    };
  }

  /** Has a leader, and has applied what it knows to be committed (nearly). */
  readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.fatal) return { ready: false, reason: `fatal: ${this.fatal.message}` };
    if (this.raft.leader === null) return { ready: false, reason: "no leader known" };
    const s = this.raft.status();
    if (s.commit - this.appliedIndex > 1000) return { ready: false, reason: `catching up: applied ${this.appliedIndex} of ${s.commit}` };
    return { ready: true };
  }

  /**
   * Graceful stop: a leader hands leadership to the most caught-up voter first (so a rolling restart loses no
   * write and no lock), then everything is flushed and closed.
   */
  async stop(opts: { transfer?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    if (opts.transfer !== false && this.isLeader) await this.handOffLeadership(opts.timeoutMs ?? this.config.tickMs * this.config.electionTicks * 2);
    this.stopped = true;
    clearInterval(this.tickTimer);
    this.idleGc.stop();
    await this.readiesDone.catch(() => undefined);
    const err = new ProposalError("SHUTTING_DOWN", "the node is shutting down; retry on another member");
    this.proposals.failAll(err);
    this.reads.failAll(err);
    await this.transport.stop();
    await this.disk.close();
    this.log.info("node stopped");
  }

  private async handOffLeadership(timeoutMs: number): Promise<void> {
    const s = this.raft.status();
    const candidates = Object.entries(s.progress)
      .filter(([id]) => id !== this.id && s.confState.voters.includes(id))
      .sort((a, b) => b[1].match - a[1].match);
    if (candidates.length === 0) return;
    const to = candidates[0][0];
    this.log.info({ to }, "transferring leadership before shutdown");
    try {
      this.transferLeadership(to);
    } catch {
      return;
    }
    const deadline = this.now() + timeoutMs;
    while (this.isLeader && this.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Event loop

  private tick(): void {
    if (this.stopped) return;
    this.raft.tick();
    if (this.isLeader) this.maybeExpireLeases();
    this.schedule();
  }

  private onPeerMessages(batch: Message[]): void {
    if (this.stopped) return;
    for (const m of batch) this.raft.step(m);
    this.schedule();
  }

  /** Run the ready loop once at the end of this event-loop turn, so the turn's work shares one Ready. */
  schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.runReadyLoop();
    });
  }

  /** Take every Ready there is, up to MAX_READIES_IN_FLIGHT; completions re-run this (see finishReady). */
  private runReadyLoop(): void {
    if (this.fatal || this.stopped) return;
    try {
      for (;;) {
        this.reads.flush((ctx) => {
          try {
            this.raft.readIndex(ctx);
          } catch (e) {
            throw this.translateProposeError(e); // no leader known (an election is under way): retryable
          }
        });
        if (this.raft.inFlight >= MAX_READIES_IN_FLIGHT || this.snapshotWaitsForWrites()) break;
        if (!this.raft.hasReady()) break;
        this.startReady(this.raft.ready());
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private startReady(rd: Ready): void {
    if (rd.softState) this.onSoftState(rd.softState);
    const termOrVoteChanged = rd.mustSync && rd.hardState !== undefined && rd.entries.length === 0 && !rd.snapshot;
    const sendFirst = this.raft.role === "leader" && !termOrVoteChanged;
    if (sendFirst) this.transport.send(rd.messages);
    let persisting: Promise<void> | undefined;
    const persistStart = this.now();
    if (rd.mustSync || rd.snapshot || rd.entries.length > 0) {
      persisting = this.disk.save(rd.hardState ?? this.unsavedHardState, rd.entries, rd.snapshot);
      this.unsavedHardState = undefined;
    } else if (rd.hardState) {
      // Only the commit index moved: no fsync needed (it is re-learned from the leader after a crash). With no
      // write in flight the in-memory log takes it now; otherwise it rides with the next save (a queued save
      // would set the older hard state it carries after this one).
      if (this.raft.inFlight === 1) this.disk.log.setHardState(rd.hardState);
      else this.unsavedHardState = rd.hardState;
    }
    // Apply now, while this batch (and maybe earlier ones) is being persisted: committed entries are durable on a
    // quorum already (a leader counts itself only after its own fsync), so their results may be released — this
    // takes the leader's fsync out of every write's latency. A crash loses nothing: the state machine is rebuilt
    // from disk on restart.
    if (rd.snapshot) this.installSnapshot(rd.snapshot.metadata, rd.snapshot.data);
    for (const e of rd.committed) this.applyEntry(e);
    // The metric times this save alone, not the wait for earlier Readies to complete.
    persisting?.then(() => this.observer?.fsync((this.now() - persistStart) / 1000), () => undefined);
    const previous = this.readiesDone;
    this.readiesDone = (persisting ? Promise.all([previous, persisting]) : previous).then(() => this.finishReady(rd, sendFirst));
    this.readiesDone.catch((e: Error) => this.fail(e));
  }

  /** This Ready's write and every earlier one completed. */
  private finishReady(rd: Ready, sentFirst: boolean): void {
    if (this.fatal) return;
    // Votes, acks and everything else a follower or candidate says must follow its fsync — and the fsyncs of
    // earlier Readies: an ack may cover entries an earlier, still in-flight write carries.
    if (!sentFirst) this.transport.send(rd.messages);
    for (const rs of rd.readStates) this.reads.onReadState(rs, this.appliedIndex);
    this.raft.advance(rd);
    this.reads.onApplied(this.appliedIndex);
    this.maybeSnapshot();
    // advance may have made more work (the leader's own entries now count toward commit), and the loop may
    // have stopped at the in-flight limit.
    this.schedule();
  }

  private onSoftState(s: SoftState): void {
    this.log.info({ role: s.role, leader: s.leader, term: this.raft.term }, "role changed");
    if (s.role === "leader") {
      // A new leader restarts every lease deadline at now + TTL: no lease expires early because leadership moved.
      this.leases.restart(this.sm.leases(), this.now());
    } else {
      this.leases.clear();
    }
    if (s.role !== "leader") this.reads.failRequested(new ProposalError("NOT_LEADER", "leadership changed during a read; retry"));
    this.emit("role", s);
  }

  private applyEntry(e: Entry): void {
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      this.confState = this.raft.applyConfChange(cc);
      this.onMembershipApplied(cc);
      this.proposals.applied(e.index, e.term, undefined);
    } else if (e.data.byteLength > 0) {
      const out = this.sm.apply(e.index, e.data);
      this.appliedBytesSinceSnapshot += e.data.byteLength;
      for (const ev of out.events) {
        if (ev.type === "leaseGranted" && this.isLeader) this.leases.granted(ev.id, ev.ttlMs, this.now());
        else if (ev.type === "leaseEnded") this.leases.ended(ev.id);
      }
      this.proposals.applied(e.index, e.term, out.result);
      if (out.events.length > 0) this.emit("applied", { index: e.index, events: out.events } satisfies AppliedEvents);
    } else {
      this.proposals.applied(e.index, e.term, undefined);
    }
    this.appliedIndex = e.index;
    this.appliedTerm = e.term;
  }

  private onMembershipApplied(cc: ConfChange): void {
    if (cc.context) {
      try {
        const m = JSON.parse(cc.context) as Member;
        if (typeof m.id === "string" && typeof m.peerUrl === "string") this.members.set(m.id, { id: m.id, peerUrl: m.peerUrl, clientUrl: m.clientUrl ?? "" });
      } catch {
        this.log.warn({ context: cc.context }, "membership change with an unreadable context");
      }
    }
    const inConfig = new Set([...this.confState.voters, ...this.confState.learners, ...this.confState.votersOutgoing, ...this.confState.learnersNext]);
    for (const id of [...this.members.keys()]) if (!inConfig.has(id)) this.members.delete(id);
    this.syncPeers();
    this.log.info({ confState: this.confState, change: cc.changes }, "membership changed");
    this.emit("membership", this.confState);
  }

  private peerUrls(): Map<NodeId, string> {
    const m = new Map<NodeId, string>();
    for (const mem of this.members.values()) if (mem.id !== this.id && mem.peerUrl) m.set(mem.id, mem.peerUrl);
    return m;
  }

  private syncPeers(): void {
    const wanted = this.peerUrls();
    const known = new Set(this.knownPeers);
    for (const [id, url] of wanted) if (!known.has(id)) this.transport.addPeer(id, url);
    for (const id of known) if (!wanted.has(id)) this.transport.removePeer(id);
    this.knownPeers = [...wanted.keys()];
  }
  private knownPeers: NodeId[] = [];

  private installSnapshot(meta: SnapshotMetadata, data: Uint8Array): void {
    const { index, term, confState } = meta;
    this.coord = this.restoreSnapshotData(data);
    this.confState = confState;
    this.appliedIndex = index;
    this.appliedTerm = term;
    this.lastSnapshotIndex = index;
    this.appliedBytesSinceSnapshot = 0;
    this.lastSnapshotBytes = data.byteLength;
    this.syncPeers();
    // The hash of the bytes received is what sm.hash() would return (snapshot bytes are deterministic), without
    // encoding and repacking the whole state again just for this line.
    const hash = data.byteLength > 0 ? contentHash(decodeNodeSnapshot(data).sm) : undefined;
    this.log.info({ index, keys: this.sm.keyCount, hash }, "installed a snapshot from the leader");
    this.emit("snapshot", index);
  }

  private restoreSnapshotData(data: Uint8Array | undefined): Coordination {
    if (!data || data.byteLength === 0) return this.createStateMachine();
    const snap = decodeNodeSnapshot(data);
    for (const m of snap.members) this.members.set(m.id, m);
    return this.createStateMachine(snap.sm);
  }

  /**
   * Due after `snapshotEntries` entries once the log since the last snapshot is at least as large as that
   * snapshot (Raft thesis §5.1.3: then snapshotting costs no more than logging, however large the state grows),
   * or after `snapshotBytes` of log regardless.
   */
  private snapshotDue(): boolean {
    if (this.snapshotting || this.appliedIndex <= this.lastSnapshotIndex) return false;
    const bytes = this.appliedBytesSinceSnapshot;
    return (
      (this.appliedIndex - this.lastSnapshotIndex >= this.config.snapshotEntries && bytes >= this.lastSnapshotBytes) ||
      bytes >= this.config.snapshotBytes
    );
  }

  /**
   * A snapshot is taken at the applied index, which must be in the durable log; entries applied from a Ready
   * whose write is in flight may not be yet. So when one is due, no new Ready is taken until the writes drain.
   */
  private snapshotWaitsForWrites(): boolean {
    return this.raft.inFlight > 0 && this.snapshotDue();
  }

  private maybeSnapshot(): void {
    if (!this.snapshotDue() || this.raft.inFlight > 0) return;
    const index = this.appliedIndex;
    const data = encodeNodeSnapshot({ v: 1, members: [...this.members.values()], sm: this.sm.snapshot() });
    shrinkPackBuffer(); // the snapshot's meta grew it
    const snap = this.disk.log.createSnapshot(index, this.confState, data);
    this.snapshotting = true;
    this.lastSnapshotIndex = index;
    this.appliedBytesSinceSnapshot = 0;
    this.lastSnapshotBytes = data.byteLength;
    const started = this.now();
    this.disk
      .saveSnapshot(snap)
      .then(() => {
        this.log.info({ index, bytes: data.byteLength, ms: Math.round(this.now() - started) }, "snapshot saved");
        this.idleGc.arm();
      })
      .catch((e: Error) => this.fail(e))
      .finally(() => (this.snapshotting = false));
  }

  private maybeExpireLeases(): void {
    const ids = this.leases.takeExpired(this.now());
    if (ids.length === 0) return;
    this.propose({ op: "leaseExpire", ids } as Command).catch(() => this.leases.retryExpiry(ids));
  }

  private translateProposeError(e: unknown): Error {
    if (e instanceof NotLeaderError) {
      return new ProposalError(e.leaderId === null ? "UNAVAILABLE" : "NOT_LEADER", e.leaderId === null ? "no leader is known yet; retry shortly" : `not the leader; the leader is ${e.leaderId}`);
    }
    if (e instanceof ProposalDroppedError) return new ProposalError("UNAVAILABLE", e.message);
    return e as Error;
  }

  private assertRunning(): void {
    if (this.stopped) throw new ProposalError("SHUTTING_DOWN", "the node is shutting down; retry on another member");
    if (this.fatal) throw new ProposalError("UNAVAILABLE", `the node stopped serving after a fatal error: ${this.fatal.message}`);
  }

  /** Storage failures are fatal: after a failed fsync nothing can be acknowledged safely. */
  private fail(e: Error): void {
    if (this.fatal) return;
    this.fatal = e;
    this.log.fatal({ err: e }, "fatal error: the node stops serving (restart it to recover from its data directory)");
    clearInterval(this.tickTimer);
    const err = new ProposalError("UNAVAILABLE", `node failed: ${e.message}`);
    this.proposals.failAll(err);
    this.reads.failAll(err);
    this.emit("fatal", e);
  }
}

/** A tiny seeded PRNG for election timeouts (the core takes its randomness injected). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

