// The replica: the pure Raft core, durable storage, the peer network and the replicated state machine, wired
// by the ready loop. Deterministic given its inputs: time, the disk and the network come in through World.
//
// The ready loop, per Ready (Ready contract in src/raft/types.ts):
//   1. a leader sends its appends and heartbeats at once (before its own fsync: thesis §10.2.1 — the core
//      counts the leader's own entries only after `advance`);
//   2. start persisting hard state + entries + snapshot (DurableStorage group commit: saves issued while a
//      write is in flight share the next write and fdatasync);
//   3. apply the snapshot and the committed entries at once (they are durable on a quorum); resolve the
//      waiting proposals. A snapshot from the leader is restored a run per turn (installSnapshot); until it is
//      in place, with the entries committed after it applied, no Ready is taken or finished;
//   4. when this Ready's write and every earlier one have completed, in order: a follower or candidate sends
//      its messages (votes and acks must follow the fsync), read states are served, the core advances, and a
//      snapshot is started when enough was applied (then taken a run per turn, and saved: see maybeSnapshot).
// A Ready carries at most `applyEntriesPerTurn` committed entries, and after a full one the loop waits a turn: a
// member catching up applies a batch per turn. Several Readies are in flight at once (up to `readiesInFlight`):
// the next one's appends go out and its commits are applied while earlier writes are still being synced, so a
// write's latency is one quorum fsync, not a wait for the leader's previous fsync. Proposals and reads only
// touch the core synchronously; one Ready per turn carries all of them.

import { assert } from "../assert.js";
import type { Coordination } from "../locks/index.js";
import { decodeConfChange } from "../raft/confchange.js";
import { NotLeaderError, ProposalDroppedError } from "../raft/errors.js";
import { RaftNode } from "../raft/node.js";
import {
  EntryType,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type SnapshotMetadata,
  type SoftState,
} from "../raft/types.js";
import { encodeCommand, type Command, type Outcome } from "../statemachine/commands.js";
import { contentHash } from "../statemachine/hash.js";
import type { RestoreJob } from "../statemachine/restore-job.js";
import type { SnapshotJob } from "../statemachine/snapshot-job.js";
import { SnapshotPieces } from "../statemachine/snapshot.js";
import type { ApplyOutput, StateMachine, StateMachineEvent } from "../statemachine/state-machine.js";
import { DurableStorage, type LocalSnapshotFile } from "../storage/durable-storage.js";
import { AutoCompactor, describeAutoCompaction } from "./auto-compaction.js";
import {
  DEFAULT_APPLY_ENTRIES_PER_TURN,
  DEFAULT_MAX_INFLIGHT_BYTES,
  DEFAULT_SNAPSHOT_BACKLOG_BYTES,
  DEFAULT_SNAPSHOT_STEP_BYTES,
  type HostConfig,
} from "./host-config.js";
import { LeaseKeeper } from "./lease-keeper.js";
import { Listeners } from "./listeners.js";
import { decodeNodeSnapshot, encodeNodeSnapshot, nodeSnapshotHeader, type Member } from "./node-snapshot.js";
import { PendingProposals, ProposalError } from "./proposals.js";
import { ReadBarrier } from "./reads.js";
import { snapshotDue, type SnapshotTurn } from "./snapshot-policy.js";
import { WriteBacklog } from "./write-backlog.js";
import type { MemberStatus } from "./status.js";
import type { Clock, HostLogger, PeerNetwork, Timer, World } from "./world.js";

export type { Member } from "./node-snapshot.js";

/** What one applied entry produced, for the push streams (watch, lock and election streams). */
export interface AppliedEvents {
  index: number;
  events: readonly StateMachineEvent[];
}

/**
 * Told what the replica does, as it does it: a member feeds metrics from it, the simulator its invariant
 * checks. Every method is optional and must not throw.
 */
export interface ReplicaObserver {
  proposed?(): void;
  /** A proposal was refused, or failed while waiting to be applied; `code` says why. */
  proposalFailed?(code: ProposalError["code"]): void;
  /** One save's duration (the wait for earlier saves excluded). */
  fsync?(seconds: number): void;
  /** A Ready's write completed: its entries, hard state and snapshot from the leader are durable. */
  persisted?(entries: readonly Entry[], hardState: HardState | undefined, snapshot: SnapshotMetadata | undefined): void;
  /** A committed entry was applied; `output` is undefined for a no-op or a membership change. */
  applied?(entry: Entry, output: ApplyOutput | undefined): void;
  /** The state machine now starts after `index` (a snapshot from the leader was restored over `turns` turns). */
  snapshotInstalled?(index: number, turns: number): void;
  /**
   * A snapshot of applied state was encoded (its file is being finished): over `turns` event-loop turns, while
   * the applied index moved on by `appliedMeanwhile` entries. Its bytes are in the file alone: the log's
   * snapshot reads them once it is saved.
   */
  snapshotTaken?(index: number, progress: { turns: number; appliedMeanwhile: number }): void;
  /** The snapshot being taken at `index` was abandoned (a snapshot from the leader was installed, or a stop). */
  snapshotAbandoned?(index: number): void;
  /** The snapshot taken at `index` is durable; its save took `seconds`. */
  snapshotSaved?(index: number, seconds: number): void;
}

export interface ReplicaOptions {
  config: HostConfig;
  world: World;
  /** Builds an empty state machine (locks and elections installed); a snapshot is restored into it (beginRestore). */
  createStateMachine(): Coordination;
  observer?: ReplicaObserver;
}

/** A Ready taken and not yet advanced. */
interface InFlight {
  rd: Ready;
  /** The leader sent its messages before the write. */
  sentFirst: boolean;
  /** It has something to write (hard state, entries, a snapshot). */
  writes: boolean;
  /** Its write (if any) completed. */
  written: boolean;
}

export class Replica {
  readonly id: NodeId;
  readonly config: HostConfig;
  readonly log: HostLogger;
  readonly clock: Clock;
  /** The state machine with locks and elections; replaced wholesale when a snapshot is installed. */
  coord: Coordination;
  readonly members = new Map<NodeId, Member>();
  readonly applied = new Listeners<AppliedEvents>();
  /** A snapshot from the leader replaced the state machine: streams cannot continue exactly. */
  readonly snapshotInstalled = new Listeners<number>();
  readonly roleChanged = new Listeners<SoftState>();
  readonly membershipChanged = new Listeners<ConfState>();
  readonly failed = new Listeners<Error>();

  private readonly raft: RaftNode;
  private readonly disk: DurableStorage;
  private network!: PeerNetwork;
  private readonly proposals: PendingProposals;
  private readonly reads: ReadBarrier;
  private readonly leases = new LeaseKeeper();
  private readonly createStateMachine: ReplicaOptions["createStateMachine"];
  private readonly observer: ReplicaObserver;
  private readonly inFlight: InFlight[] = [];
  private confState: ConfState;
  /** Peers the network links to, with the URL it dials. */
  private knownPeers = new Map<NodeId, string>();
  private tickTimer: Timer | undefined;
  private scheduled = false;
  /** A full Ready of committed entries was applied: the ready loop waits for a later turn (yieldTurn). */
  private yielding = false;
  private stopped = false;
  private fatal: Error | undefined;
  private lastSnapshotIndex: number;
  private appliedIndex: number;
  /** Term of the entry at appliedIndex (for exported snapshots). */
  private appliedTerm: number;
  private appliedBytesSinceSnapshot = 0;
  /** Size of the last snapshot taken or installed (see snapshot-policy.ts). */
  private lastSnapshotBytes: number;
  /** The applied index at the last look that found no snapshot due (lookForSnapshot). */
  private snapshotLookedAt: number;
  /** This member's turn to snapshot, worked out for the configuration `of` (snapshotTurn). */
  private turn: { of: ConfState; turn: SnapshotTurn } | undefined;
  /** A snapshot is being taken or saved: no second one starts. */
  private snapshotting = false;
  /** The snapshot being taken a run per turn (maybeSnapshot), until it is complete or abandoned. */
  private snapshotInProgress: SnapshotInProgress | undefined;
  /** The snapshot from the leader being restored a run per turn (installSnapshot), until it is in place. */
  private installing: SnapshotInstall | undefined;
  /** A setQuota proposal of this member's is in flight (maybeProposeQuota). */
  private quotaProposed = false;
  /** The leader's automatic compaction (--auto-compaction-*); absent when not configured. */
  private readonly autoCompactor: AutoCompactor | undefined;
  private compactionProposed = false;
  /** Committed entries a Ready carries at most; after a Ready that full the ready loop waits a turn. */
  private readonly applyEntriesPerTurn: number;
  /** Linearizable reads and keep-alives served (they apply nothing): with appliedIndex, how busy the member is. */
  private readsAndKeepAlives = 0;

  private constructor(opts: ReplicaOptions, disk: DurableStorage, restored: RestoredNodeSnapshot) {
    const { config, world } = opts;
    this.config = config;
    this.id = config.name;
    this.log = world.logger;
    this.clock = world.clock;
    this.disk = disk;
    this.observer = opts.observer ?? {};
    this.proposals = new PendingProposals(config.requestTimeoutMs, (code) => this.observer.proposalFailed?.(code));
    this.createStateMachine = opts.createStateMachine;
    // A read unanswered for half an election timeout is asked again (etcd: 500 ms of its 1 s).
    this.reads = new ReadBarrier(`${this.id}:${Math.floor(world.random() * 0xffffffff).toString(16)}`, Math.max(1, Math.ceil(config.electionTicks / 2)));
    this.autoCompactor = config.autoCompaction && new AutoCompactor(config.autoCompaction);
    this.applyEntriesPerTurn = config.applyEntriesPerTurn ?? DEFAULT_APPLY_ENTRIES_PER_TURN;

    const snap = disk.snapshot;
    this.lastSnapshotBytes = restored.bytes;
    this.coord = restored.coord;
    for (const m of restored.members) this.members.set(m.id, m);
    this.confState = snap?.metadata.confState ?? disk.log.initialState().confState;
    this.lastSnapshotIndex = snap?.metadata.index ?? 0;
    this.appliedIndex = this.lastSnapshotIndex;
    this.snapshotLookedAt = this.appliedIndex;
    this.appliedTerm = snap?.metadata.term ?? 0;
    // Members known from config (URLs) for those in the configuration but not yet in a snapshot.
    for (const [id, peerUrl] of config.initialCluster) {
      if (!this.members.has(id)) this.members.set(id, { id, peerUrl, clientUrl: config.clientUrls.get(id) ?? "" });
    }
    this.raft = new RaftNode(
      {
        ...config.raft,
        maxInflightBytes: config.raft?.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES,
        id: this.id,
        electionTicks: config.electionTicks,
        heartbeatTicks: config.heartbeatTicks,
        applied: this.appliedIndex,
        maxCommittedEntriesPerReady: this.applyEntriesPerTurn,
        rng: () => world.random(),
      },
      disk.log,
    );
  }

  /** Opens the data directory (bootstrapping a new cluster there if it is empty), then starts. */
  static async open(opts: ReplicaOptions): Promise<Replica> {
    const { config, world } = opts;
    const logger = world.logger;
    let started = world.clock.now();
    const disk = await DurableStorage.open(world.fs, config.dataDir, { ...config.storage, logger: logger.child({ component: "storage" }) });
    logger.info(
      { snapshot: disk.snapshot?.metadata.index ?? 0, firstIndex: disk.log.firstIndex(), lastIndex: disk.log.lastIndex(), ms: Math.round(world.clock.now() - started) },
      "recovered the data directory",
    );
    if (disk.isNew && !config.join) {
      const voters = [...config.initialCluster.keys()].sort();
      const members: Member[] = voters.map((id) => ({ id, peerUrl: config.initialCluster.get(id)!, clientUrl: config.clientUrls.get(id) ?? "" }));
      const sm = opts.createStateMachine().stateMachine;
      await disk.bootstrap(voters, encodeNodeSnapshot({ v: 1, members, sm: sm.snapshot() }));
      logger.info({ voters }, "bootstrapped a new cluster");
    } else if (disk.isNew) {
      logger.info("joining an existing cluster: waiting for a snapshot from the leader");
    }
    // The state in the snapshot on disk, read a chunk at a time and restored a run per turn as one from the leader is.
    // Recovery read and checked those bytes already (its time is in the line above): this is the restore alone.
    const data = await disk.readSnapshotData();
    started = world.clock.now();
    const restore = beginNodeSnapshotRestore(opts.createStateMachine, data);
    const turns = await runInTurns(world.clock, stepBytes(config), restore.job, () => undefined);
    logger.info(
      { index: disk.snapshot?.metadata.index ?? 0, bytes: restore.bytes, turns, ms: Math.round(world.clock.now() - started) },
      "restored the snapshot on disk",
    );
    const replica = new Replica(opts, disk, restore);
    replica.network = await world.network({
      onMessages: (batch) => replica.onPeerMessages(batch),
      onSnapshotStatus: (to, ok) => {
        if (replica.stopped) return;
        replica.raft.reportSnapshot(to, ok);
        replica.schedule();
      },
    });
    replica.syncPeers();
    replica.armTick();
    replica.log.info(
      { id: replica.id, term: replica.raft.term, applied: replica.appliedIndex, lastIndex: replica.raft.status().lastIndex },
      "node started",
    );
    replica.schedule();
    return replica;
  }

  // ---------------------------------------------------------------------------------------------------------
  // For the client service

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

  get term(): number {
    return this.raft.term;
  }

  get appliedTo(): number {
    return this.appliedIndex;
  }

  /** Proposals waiting for their entry to be applied. */
  get pendingProposals(): number {
    return this.proposals.size;
  }

  /** Applied entries plus reads and keep-alives served: moves while the member works (idle collection). */
  get progress(): number {
    return this.appliedIndex + this.readsAndKeepAlives;
  }

  get isRunning(): boolean {
    return !this.stopped && this.fatal === undefined;
  }

  /** The leader's client URL, if a leader is known. */
  leaderClientUrl(): string | null {
    const l = this.raft.leader;
    return l === null ? null : this.members.get(l)?.clientUrl || null;
  }

  /**
   * Propose a command on the leader; resolves with its outcome once applied here. A client's (`timed`) fails with
   * TIMEOUT if it was not applied within config.requestTimeoutMs (at the first tick after).
   */
  propose(command: Command, timed = false): Promise<Outcome> {
    this.assertProposing();
    if (command.op === "leaseGrant") (command as { grantedAt: number }).grantedAt = this.clock.wallNow();
    let index: number;
    try {
      index = this.raft.propose(encodeCommand(command));
    } catch (e) {
      throw this.refused(e);
    }
    const p = this.proposals.add(index, this.raft.term, timed ? this.clock.now() : undefined, command.op);
    this.observer.proposed?.();
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

  /**
   * A keep-alive on the leader (after a read barrier confirmed its leadership, see ops.ts): the TTL now
   * remaining, or undefined if the lease does not exist.
   */
  keepAlive(leaseId: number): number | undefined {
    this.assertRunning();
    if (!this.isLeader) throw new ProposalError("NOT_LEADER", "keep-alives are answered by the leader");
    if (!this.sm.leaseAlive(leaseId)) return undefined;
    return this.leases.keepAlive(leaseId, this.clock.now());
  }

  /** Remaining TTL of a lease as the leader sees it (undefined elsewhere). */
  leaseRemainingMs(leaseId: number): number | undefined {
    return this.isLeader ? this.leases.remainingMs(leaseId, this.clock.now()) : undefined;
  }

  transferLeadership(to: NodeId): void {
    try {
      this.raft.transferLeadership(to);
    } catch (e) {
      throw translateProposeError(e);
    }
    this.schedule();
  }

  /** Add a member as a learner (it catches up by snapshot), promote a learner, or remove a member. */
  async changeMembership(cc: ConfChange, member?: Member): Promise<ConfState> {
    this.assertProposing();
    const withContext: ConfChange = member ? { ...cc, context: JSON.stringify(member) } : cc;
    let index: number;
    try {
      index = this.raft.proposeConfChange(withContext);
    } catch (e) {
      throw this.refused(e);
    }
    const p = this.proposals.add(index, this.raft.term);
    this.schedule();
    await p;
    return this.confState;
  }

  /**
   * The state as of the last applied entry, in the member snapshot format (what `concord snapshot save` writes):
   * taken a run per turn, as the member's own snapshots are (maybeSnapshot). Fails with UNAVAILABLE when a snapshot
   * from the leader replaces the state meanwhile, and with SHUTTING_DOWN when the member stops.
   */
  async exportSnapshot(): Promise<{ index: number; term: number; data: Uint8Array; hash: string }> {
    const index = this.appliedIndex;
    const term = this.appliedTerm;
    const header = nodeSnapshotHeader({ v: 1, members: [...this.members.values()], index, term });
    const sm = this.sm;
    const out = new SnapshotPieces();
    const job = sm.beginSnapshot({ emit: out.emit, prefix: header });
    const abandoned = (): Error | undefined =>
      !this.isRunning
        ? new ProposalError("SHUTTING_DOWN", "the node is shutting down; retry on another member")
        : this.sm !== sm
          ? new ProposalError("UNAVAILABLE", "this member installed a snapshot from the leader while it was exporting one; retry")
          : undefined;
    await runInTurns(this.clock, stepBytes(this.config), job, abandoned);
    const data = out.bytes();
    // The hash is what sm.hash() would have returned at `index`.
    return { index, term, data, hash: contentHash(data.subarray(header.length)) };
  }

  status(): MemberStatus {
    const s = this.raft.status();
    return {
      ...s,
      revision: this.sm.revision,
      compactRevision: this.sm.compactRevision,
      ...(this.config.autoCompaction ? { autoCompaction: describeAutoCompaction(this.config.autoCompaction) } : {}),
      keys: this.sm.keyCount,
      stateBytes: this.sm.sizeBytes,
      quotaBytes: this.sm.quotaBytes,
      alarms: this.sm.alarms(),
      snapshotIndex: this.lastSnapshotIndex,
      members: [...this.members.values()].flatMap((m) => {
        const cs = this.confState;
        const role = cs.voters.includes(m.id) || cs.votersOutgoing.includes(m.id) ? "voter" : cs.learners.includes(m.id) || cs.learnersNext.includes(m.id) ? "learner" : null;
        return role === null ? [] : [{ ...m, role }];
      }),
      transport: this.network.stats(),
      storage: this.disk.stats,
      leases: this.isLeader ? this.leases.size : undefined,
      fatal: this.fatal?.message,
    };
  }

  /** Has a leader, and has applied what it knows to be committed (nearly). */
  readiness(): { ready: true } | { ready: false; reason: string } {
    if (this.fatal) return { ready: false, reason: `fatal: ${this.fatal.message}` };
    if (this.installing) return { ready: false, reason: `restoring a snapshot from the leader (index ${this.installing.metadata.index})` };
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
    if (opts.transfer !== false && this.isLeader && !this.fatal) {
      await this.handOffLeadership(opts.timeoutMs ?? this.config.tickMs * this.config.electionTicks * 2);
    }
    this.stopped = true;
    this.tickTimer?.cancel();
    this.abandonSnapshot();
    const err = new ProposalError("SHUTTING_DOWN", "the node is shutting down; retry on another member");
    this.proposals.failAll(err);
    this.reads.failAll(err);
    await this.network.stop();
    await this.disk.close().catch(() => undefined);
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
    const deadline = this.clock.now() + timeoutMs;
    while (this.isLeader && this.clock.now() < deadline) await new Promise<void>((r) => this.clock.setTimer(10, r));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Inputs: ticks and peer messages

  /** Asks Raft for a read index (ReadBarrier's flush and retries). */
  private readonly requestReadIndex = (ctx: string): void => {
    try {
      this.raft.readIndex(ctx);
    } catch (e) {
      throw translateProposeError(e); // no leader known (an election is under way): retryable
    }
  };

  private armTick(): void {
    this.tickTimer = this.clock.setTimer(this.config.tickMs, () => {
      if (!this.isRunning) return;
      this.raft.tick();
      this.reads.tick(this.requestReadIndex);
      this.proposals.expire(this.clock.now());
      if (this.isLeader) {
        this.maybeExpireLeases();
        this.maybeProposeQuota();
        this.maybeAutoCompact();
      }
      this.schedule();
      this.armTick();
    });
  }

  private onPeerMessages(batch: Message[]): void {
    if (!this.isRunning) return;
    for (const m of batch) this.raft.step(m);
    this.schedule();
  }

  /** Run the ready loop once this turn's work is done, so the turn's proposals and reads share one Ready. */
  schedule(): void {
    if (this.scheduled || !this.isRunning) return;
    this.scheduled = true;
    this.clock.defer(() => {
      this.scheduled = false;
      this.runReadyLoop();
    });
  }

  // ---------------------------------------------------------------------------------------------------------
  // The ready loop

  /**
   * Take every Ready there is, up to `readiesInFlight`; completed writes re-run this (finishReadies). A Ready with
   * as many committed entries as one may carry ends the turn's work: more are likely waiting (a member catching
   * up), and applying them all in one go would stop the loop for as long.
   */
  private runReadyLoop(): void {
    if (!this.isRunning || this.yielding) return;
    try {
      for (;;) {
        this.reads.flush(this.requestReadIndex);
        if (this.raft.inFlight >= this.config.readiesInFlight || this.snapshotWaitsForWrites() || this.installing) break;
        if (!this.raft.hasReady()) break;
        const rd = this.raft.ready();
        this.startReady(rd);
        if (rd.committed.length >= this.applyEntriesPerTurn) {
          this.yieldTurn();
          break;
        }
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** Runs the ready loop again in a later turn, after the I/O waiting now; until then it does nothing. */
  private yieldTurn(): void {
    this.yielding = true;
    this.clock.continueLater(() => {
      this.yielding = false;
      this.runReadyLoop();
    });
  }

  private startReady(rd: Ready): void {
    if (rd.softState) this.onSoftState(rd.softState);
    const termOrVoteChanged = rd.mustSync && rd.hardState !== undefined && rd.entries.length === 0 && !rd.snapshot;
    const writes = rd.mustSync || rd.snapshot !== undefined || rd.entries.length > 0;
    const item: InFlight = { rd, sentFirst: this.raft.role === "leader" && !termOrVoteChanged, writes, written: false };
    if (item.sentFirst) this.network.send(rd.messages);
    this.inFlight.push(item);
    if (writes) {
      const started = this.clock.now();
      this.disk.save(rd.hardState, rd.entries, rd.snapshot).then(
        () => {
          this.observer.fsync?.((this.clock.now() - started) / 1000);
          try {
            this.onWritten(item);
          } catch (e) {
            this.fail(e as Error);
          }
        },
        (e: Error) => this.fail(e),
      );
    } else {
      // Only the commit index moved (or nothing durable at all): no fsync needed; a lost commit is re-learned
      // from the leader after a crash.
      if (rd.hardState) this.disk.noteCommit(rd.hardState);
      item.written = true;
    }
    // Apply now, while this batch (and maybe earlier ones) is being persisted: committed entries are durable on a
    // quorum already (a leader counts itself only after its own fsync), so their results may be released — this
    // takes the leader's fsync out of every write's latency. A crash loses nothing: the state machine is rebuilt
    // from disk on restart.
    if (rd.snapshot) this.installSnapshot(rd.snapshot.metadata, rd.snapshot.data, rd.committed);
    else for (const e of rd.committed) this.applyEntry(e);
    if (item.written) this.finishReadies();
  }

  /** A Ready's write completed. Saves complete in the order they were issued (DurableStorage's queue). */
  private onWritten(item: InFlight): void {
    if (!this.isRunning) return;
    const i = this.inFlight.indexOf(item);
    assert(i >= 0, "a write completed for a Ready that is not in flight");
    for (let j = 0; j < i; j++) assert(this.inFlight[j].written, "Readies' writes completed out of order");
    item.written = true;
    this.finishReadies();
  }

  /**
   * Finish, oldest first, every Ready whose write and every earlier one's have completed; none while a snapshot
   * from the leader is being restored (its Ready is the last taken: the one that finishes it finishes them).
   */
  private finishReadies(): void {
    try {
      while (this.inFlight.length > 0 && this.inFlight[0].written && this.isRunning && !this.installing) this.finishReady(this.inFlight.shift()!);
    } catch (e) {
      this.fail(e as Error);
    }
    // advance may have made more work (the leader's own entries now count toward commit), and the loop may
    // have stopped at the in-flight limit.
    this.schedule();
  }

  private finishReady({ rd, sentFirst, writes }: InFlight): void {
    if (writes) this.observer.persisted?.(rd.entries, rd.hardState, rd.snapshot?.metadata);
    // Votes, acks and everything else a follower or candidate says must follow its fsync — and the fsyncs of
    // earlier Readies: an ack may cover entries an earlier, still in-flight write carries.
    if (!sentFirst) this.network.send(rd.messages);
    for (const rs of rd.readStates) this.reads.onReadState(rs, this.appliedIndex);
    this.raft.advance(rd);
    this.reads.onApplied(this.appliedIndex);
    this.maybeSnapshot();
  }

  private onSoftState(s: SoftState): void {
    this.log.info({ role: s.role, leader: s.leader, term: this.raft.term }, "role changed");
    if (s.role === "leader") {
      // A new leader restarts every lease deadline at now + TTL: no lease expires early because leadership moved.
      this.leases.restart(this.sm.leases(), this.clock.now());
      this.autoCompactor?.restart();
    } else {
      this.leases.clear();
    }
    if (s.role !== "leader") this.reads.failRequested(new ProposalError("NOT_LEADER", "leadership changed during a read; retry"));
    this.roleChanged.emit(s);
  }

  private applyEntry(e: Entry): void {
    // The applied index advances by one, except across a snapshot (installSnapshot moves it there).
    assert(e.index === this.appliedIndex + 1, () => `applying entry ${e.index} after ${this.appliedIndex}`);
    let output: ApplyOutput | undefined;
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      this.confState = this.raft.applyConfChange(cc);
      this.onMembershipApplied(cc);
      this.proposals.applied(e.index, e.term, undefined);
    } else if (e.data.byteLength > 0) {
      output = this.sm.apply(e.index, e.data);
      this.appliedBytesSinceSnapshot += e.data.byteLength;
      for (const ev of output.events) {
        if (ev.type === "leaseGranted" && this.isLeader) this.leases.granted(ev.id, ev.ttlMs, this.clock.now());
        else if (ev.type === "leaseEnded") this.leases.ended(ev.id);
        else if (ev.type === "alarm") this.logAlarm(e.index, ev);
      }
      this.proposals.applied(e.index, e.term, output.result);
    } else {
      this.proposals.applied(e.index, e.term, undefined);
    }
    this.appliedIndex = e.index;
    this.appliedTerm = e.term;
    this.observer.applied?.(e, output);
    if (output && output.events.length > 0) this.applied.emit({ index: e.index, events: output.events });
  }

  private logAlarm(index: number, ev: Extract<StateMachineEvent, { type: "alarm" }>): void {
    const fields = { alarm: ev.alarm, index, stateBytes: ev.stateBytes, quotaBytes: ev.quotaBytes };
    if (ev.raised) this.log.warn(fields, "alarm raised: the state reached the storage quota; writes that add data fail with NO_SPACE until it is disarmed (concord alarm disarm, once space is freed)");
    else this.log.info(fields, "alarm disarmed");
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
    this.membershipChanged.emit(this.confState);
  }

  /** Links to every other member at its current peer URL: new members added, removed ones dropped, moved ones (memberUpdate) re-pointed. */
  private syncPeers(): void {
    const wanted = new Map<NodeId, string>();
    for (const m of this.members.values()) if (m.id !== this.id && m.peerUrl) wanted.set(m.id, m.peerUrl);
    for (const [id, url] of wanted) if (this.knownPeers.get(id) !== url) this.network.addPeer(id, url);
    for (const id of this.knownPeers.keys()) if (!wanted.has(id)) this.network.removePeer(id);
    this.knownPeers = wanted;
  }

  /**
   * Replaces the state machine with the leader's snapshot, restored a run per turn into a new one (a million keys
   * take seconds: done at once, the loop would stop for as long, and this member with it). The one replaced keeps
   * serving reads meanwhile. `committed`, the entries committed after the snapshot in the same Ready, are applied
   * once it is in place; until then the ready loop takes no Ready and finishes none, so nothing is applied to
   * either state machine and nothing is acknowledged out of order.
   */
  private installSnapshot(metadata: SnapshotMetadata, data: Uint8Array, committed: readonly Entry[]): void {
    assert(metadata.index > this.appliedIndex, () => `installing a snapshot at ${metadata.index}, not after the applied index ${this.appliedIndex}`);
    assert(this.installing === undefined, "a second snapshot from the leader before the first is in place");
    this.abandonSnapshot(); // of the state machine being replaced
    const restore = beginNodeSnapshotRestore(this.createStateMachine, data);
    const install: SnapshotInstall = { metadata, restore, committed, started: this.clock.now() };
    this.installing = install;
    this.log.info({ index: metadata.index, bytes: restore.bytes }, "restoring a snapshot from the leader");
    runInTurns(this.clock, stepBytes(this.config), restore.job, () => (this.isRunning ? undefined : INSTALL_ABANDONED)).then(
      (turns) => {
        try {
          this.finishInstall(install, turns);
        } catch (e) {
          this.fail(e as Error);
        }
      },
      (e: Error) => {
        if (e !== INSTALL_ABANDONED) this.fail(e);
      },
    );
  }

  private finishInstall({ metadata, restore, committed, started }: SnapshotInstall, turns: number): void {
    const { index, term, confState } = metadata;
    this.installing = undefined;
    this.coord = restore.coord;
    for (const m of restore.members) this.members.set(m.id, m);
    this.confState = confState;
    this.appliedIndex = index;
    this.appliedTerm = term;
    this.lastSnapshotIndex = index;
    this.appliedBytesSinceSnapshot = 0;
    this.lastSnapshotBytes = restore.bytes;
    this.syncPeers();
    // No content hash here: hashing the bytes received held the loop for 0.7–1.2 s at a million keys, for a log
    // line. `concord snapshot save` reports the hash of a member's state when one is wanted.
    const ms = Math.round(this.clock.now() - started);
    this.log.info({ index, keys: this.sm.keyCount, bytes: restore.bytes, turns, ms }, "installed a snapshot from the leader");
    this.observer.snapshotInstalled?.(index, turns);
    this.snapshotInstalled.emit(index);
    for (const e of committed) this.applyEntry(e);
    this.finishReadies();
  }

  /**
   * Looks whether a snapshot is due (snapshot-policy.ts). A look that finds none moves `snapshotLookedAt` on, so
   * that a turn counts only indexes applied since; one that finds one due leaves it, so the look that starts the
   * snapshot (maybeSnapshot, after snapshotWaitsForWrites found it due) sees the same.
   */
  private lookForSnapshot(): boolean {
    const due =
      !this.snapshotting &&
      snapshotDue(
        {
          appliedIndex: this.appliedIndex,
          lastSnapshotIndex: this.lastSnapshotIndex,
          appliedBytes: this.appliedBytesSinceSnapshot,
          lastSnapshotBytes: this.lastSnapshotBytes,
          lookedAtIndex: this.snapshotLookedAt,
        },
        this.config,
        this.snapshotTurn(),
      );
    if (!due) this.snapshotLookedAt = this.appliedIndex;
    return due;
  }

  /** This member's turn to snapshot among the members of the configuration (snapshot-policy.ts). */
  private snapshotTurn(): SnapshotTurn {
    const cs = this.confState;
    if (this.turn?.of !== cs) {
      const ids = [...new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext])].sort();
      const rank = ids.indexOf(this.id);
      this.turn = { of: cs, turn: rank < 0 ? { rank: 0, members: 1 } : { rank, members: ids.length } };
    }
    return this.turn.turn;
  }

  /**
   * A snapshot is taken at the applied index, which must be in the durable log; entries applied from a Ready
   * whose write is in flight may not be yet. So when one is due, no new Ready is taken until the writes drain.
   */
  private snapshotWaitsForWrites(): boolean {
    return this.raft.inFlight > 0 && this.lookForSnapshot();
  }

  /**
   * Starts a snapshot at the applied index when one is due. It is taken a run per event-loop turn (the state
   * machine's SnapshotJob: a whole one at a million keys would stop the loop for a second or two, long enough to
   * miss heartbeats), then saved. Entries keep being applied meanwhile; the bytes are those of the state at the
   * start, with the membership and log position of that moment. A snapshot installed from the leader meanwhile,
   * or a stop, abandons it.
   */
  private maybeSnapshot(): void {
    if (this.raft.inFlight > 0 || !this.lookForSnapshot()) return;
    const index = this.appliedIndex;
    // Every Ready has been advanced, so everything applied is in the durable log.
    assert(index <= this.disk.durableLastIndex, () => `snapshot at ${index} is past the durable last index ${this.disk.durableLastIndex}`);
    const started = this.clock.now();
    const metadata = { index, term: this.appliedTerm, confState: this.confState };
    // Each piece goes to the file as the job makes it: the whole snapshot is never one buffer.
    let file: LocalSnapshotFile;
    try {
      file = this.disk.beginSnapshot(metadata);
    } catch (e) {
      this.fail(e as Error); // the storage failed earlier
      return;
    }
    const header = nodeSnapshotHeader({ v: 1, members: [...this.members.values()] });
    const backlog = new WriteBacklog(this.config.snapshotBacklogBytes ?? DEFAULT_SNAPSHOT_BACKLOG_BYTES);
    const job = this.sm.beginSnapshot({
      emit: (piece, release) => {
        backlog.add(piece.length);
        file.append(piece, () => {
          backlog.written(piece.length);
          release();
        });
      },
      prefix: header,
      pieceBytes: this.config.snapshotPieceBytes,
    });
    this.snapshotting = true;
    this.lastSnapshotIndex = index;
    this.appliedBytesSinceSnapshot = 0;
    const s: SnapshotInProgress = { job, file, backlog, metadata, started, turns: 0 };
    this.snapshotInProgress = s;
    this.log.info({ index, keys: this.sm.keyCount }, "snapshot started");
    const abandoned = () => (this.snapshotInProgress !== s || !this.isRunning ? SNAPSHOT_ABANDONED : undefined);
    runInTurns(this.clock, stepBytes(this.config), job, abandoned, () => backlog.whenUnder()).then(
      (turns) => {
        if (this.snapshotInProgress !== s) return; // abandoned since its last run
        this.snapshotInProgress = undefined;
        s.turns = turns;
        this.saveSnapshot(s);
      },
      (e: Error) => {
        void file.abort();
        if (e !== SNAPSHOT_ABANDONED) this.fail(e);
      },
    );
  }

  private saveSnapshot({ job, file, backlog, metadata, started, turns }: SnapshotInProgress): void {
    const bytes = job.bytes;
    const index = metadata.index;
    const encodeMs = this.clock.now() - started;
    this.observer.snapshotTaken?.(index, { turns, appliedMeanwhile: this.appliedIndex - index });
    this.lastSnapshotBytes = bytes;
    const saving = this.clock.now();
    file
      .finish()
      .then(() => {
        const ms = this.clock.now() - saving;
        const fields = { index, bytes, turns, diskWaits: backlog.waits, encodeMs: Math.round(encodeMs), ms: Math.round(ms) };
        // A snapshot installed from the leader while the file was written overtakes it: the storage drops it.
        if (this.lastSnapshotIndex > index) {
          this.log.info({ ...fields, installed: this.lastSnapshotIndex }, "snapshot superseded by one installed from the leader");
        } else {
          this.log.info(fields, "snapshot saved");
        }
        this.observer.snapshotSaved?.(index, ms / 1000);
      })
      .catch((e: Error) => this.fail(e))
      .finally(() => (this.snapshotting = false));
  }

  private abandonSnapshot(): void {
    const s = this.snapshotInProgress;
    if (s === undefined) return;
    this.snapshotInProgress = undefined;
    s.job.cancel();
    void s.file.abort();
    this.snapshotting = false;
    this.log.info({ index: s.metadata.index }, "snapshot abandoned");
    this.observer.snapshotAbandoned?.(s.metadata.index);
  }

  private maybeExpireLeases(): void {
    const ids = this.leases.takeExpired(this.clock.now());
    if (ids.length === 0) return;
    // Refused at once (a leadership transfer, no longer the leader) or lost later: propose again next tick.
    try {
      this.propose({ op: "leaseExpire", ids } as Command).catch(() => this.leases.retryExpiry(ids));
    } catch {
      this.leases.retryExpiry(ids);
    }
  }

  /** assertRunning for a proposal: a refusal counts as a failed proposal. */
  private assertProposing(): void {
    try {
      this.assertRunning();
    } catch (e) {
      throw this.refused(e);
    }
  }

  /** A proposal the core (or a stopped replica) refused: the error to throw, with the observer told. */
  private refused(e: unknown): Error {
    const err = translateProposeError(e);
    if (err instanceof ProposalError) this.observer.proposalFailed?.(err.code);
    return err;
  }

  /**
   * Leading: makes the cluster's storage quota (replicated state) this member's configured one. Checked every tick,
   * one proposal at a time; a leader that has not yet applied an earlier change proposes its value again, which
   * changes nothing.
   */
  private maybeProposeQuota(): void {
    const quotaBytes = this.config.quotaBytes;
    if (quotaBytes === undefined || this.quotaProposed || this.sm.quotaBytes === quotaBytes) return;
    const from = this.sm.quotaBytes;
    this.quotaProposed = true;
    const settled = () => (this.quotaProposed = false);
    try {
      this.propose({ op: "setQuota", quotaBytes } as Command).then(() => {
        this.log.info({ quotaBytes, from }, "storage quota set (this member's configured quota, as leader)");
        settled();
      }, settled);
    } catch {
      settled(); // not the leader any more, or stopping: the next tick decides again
    }
  }

  /** Leading with an auto-compaction policy: one `compact` proposal at a time, when the policy says so. */
  private maybeAutoCompact(): void {
    if (this.autoCompactor === undefined || this.compactionProposed) return;
    const revision = this.autoCompactor.due(this.clock.now(), this.sm.revision, this.sm.compactRevision);
    if (revision === undefined) return;
    this.compactionProposed = true;
    const settled = () => (this.compactionProposed = false);
    try {
      this.propose({ op: "compact", revision } as Command).then((outcome) => {
        if (outcome.ok) this.log.info({ revision, policy: describeAutoCompaction(this.autoCompactor!.policy) }, "auto-compaction: history compacted");
        settled(); // refused (already compacted further by hand): the next tick decides again
      }, settled);
    } catch {
      settled();
    }
  }

  private assertRunning(): void {
    if (this.stopped) throw new ProposalError("SHUTTING_DOWN", "the node is shutting down; retry on another member");
    if (this.fatal) throw new ProposalError("UNAVAILABLE", `the node stopped serving after a fatal error: ${this.fatal.message}`);
  }

  /**
   * Storage failures (and broken invariants) are fatal: after a failed fsync nothing can be acknowledged
   * safely, and retrying it could report durable what is not. The member stops serving; restarting it recovers
   * from what really is on disk.
   */
  private fail(e: Error): void {
    if (this.fatal || this.stopped) return;
    this.fatal = e;
    this.log.fatal({ err: e }, "fatal error: the node stops serving (restart it to recover from its data directory)");
    this.tickTimer?.cancel();
    const err = new ProposalError("UNAVAILABLE", `node failed: ${e.message}`);
    this.proposals.failAll(err);
    this.reads.failAll(err);
    this.failed.emit(e);
  }
}

/** Why runInTurns stopped a snapshot the replica no longer wants (abandonSnapshot): not a failure. */
const SNAPSHOT_ABANDONED = new Error("snapshot abandoned");
/** Why runInTurns stopped restoring a snapshot from the leader: the member stops. */
const INSTALL_ABANDONED = new Error("snapshot install abandoned");

/** A job done a run per turn: a snapshot being taken (SnapshotJob) or restored (RestoreJob). */
interface JobInTurns {
  /** Does about `budget` bytes' worth of work; true once done. */
  step(budget: number): boolean;
  cancel?(): void;
}

/**
 * Runs a job a run per turn (clock.continueLater) to its end; resolves with the number of runs. Before every
 * run, `abandoned()` may return an error: then the job is cancelled and the promise rejects with it; and
 * `mayRun()` may return a promise to wait for (a disk behind the job), after which the run is tried again in a
 * later turn. No job resolves at once with 0 runs.
 */
function runInTurns(
  clock: Clock,
  budget: number,
  job: JobInTurns | undefined,
  abandoned: () => Error | undefined,
  mayRun: () => Promise<void> | undefined = () => undefined,
): Promise<number> {
  if (job === undefined) return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    let turns = 0;
    const run = (): void => {
      const why = abandoned();
      if (why) {
        job.cancel?.();
        reject(why);
        return;
      }
      const wait = mayRun();
      if (wait !== undefined) {
        void wait.then(() => clock.continueLater(run));
        return;
      }
      turns++;
      try {
        if (!job.step(budget)) {
          clock.continueLater(run);
          return;
        }
      } catch (e) {
        reject(e as Error);
        return;
      }
      resolve(turns);
    };
    clock.continueLater(run);
  });
}

function stepBytes(config: HostConfig): number {
  return config.snapshotStepBytes ?? DEFAULT_SNAPSHOT_STEP_BYTES;
}

/** A member snapshot (node-snapshot.ts) being restored into a new state machine: empty when there is none. */
interface RestoredNodeSnapshot {
  coord: Coordination;
  /** Fills `coord`; undefined when there is nothing to restore. */
  job: RestoreJob | undefined;
  /** The members the snapshot names, with their URLs. */
  members: Member[];
  bytes: number;
}

function beginNodeSnapshotRestore(createStateMachine: () => Coordination, data: Uint8Array | undefined): RestoredNodeSnapshot {
  const coord = createStateMachine();
  if (!data || data.byteLength === 0) return { coord, job: undefined, members: [], bytes: 0 };
  const snap = decodeNodeSnapshot(data);
  return { coord, job: coord.stateMachine.beginRestore(snap.sm), members: snap.members, bytes: data.byteLength };
}

interface SnapshotInstall {
  /** Where the snapshot stands in the log. */
  metadata: SnapshotMetadata;
  restore: RestoredNodeSnapshot;
  /** The entries committed after it in the same Ready: applied once it is in place. */
  committed: readonly Entry[];
  started: number;
}

interface SnapshotInProgress {
  job: SnapshotJob;
  /** Where the job's pieces go as it makes them. */
  file: LocalSnapshotFile;
  /** The pieces handed to the file and not yet written; the job waits while they are over snapshotBacklogBytes. */
  backlog: WriteBacklog;
  /** Where the snapshot stands in the log: the applied index, its term and the configuration at the start. */
  metadata: SnapshotMetadata;
  started: number;
  turns: number;
}

function translateProposeError(e: unknown): Error {
  if (e instanceof NotLeaderError) {
    return new ProposalError(e.leaderId === null ? "UNAVAILABLE" : "NOT_LEADER", e.leaderId === null ? "no leader is known yet; retry shortly" : `not the leader; the leader is ${e.leaderId}`);
  }
  if (e instanceof ProposalDroppedError) return new ProposalError("UNAVAILABLE", e.message);
  return e as Error;
}
