// The simulated hosts: each runs a real RaftNode over a MemoryStorage, with a simulated disk, the real
// coordination state machine (src/locks: KV, leases, locks, elections) and a clock, and follows the Ready
// contract of src/raft/types.ts to the letter:
//   1. persist hardState/snapshot/entries (an fsync that a slow disk delays; meanwhile no new Ready),
//   2. send messages — a leader's "app"/"heartbeat"/"snap" go out BEFORE its fsync, everything else after,
//   3. apply the snapshot, then the committed entries (conf changes through applyConfChange),
//   4. advance.
// A crash drops the node and whatever its disk had not fsynced (or keeps a torn prefix of that batch); a
// restart rebuilds everything from the disk. Invariants are checked as each of these steps happens.
// A leader host also keeps lease deadlines on its own clock and proposes leaseExpire, as the server does.

import { decodeConfChange } from "../src/raft/confchange.js";
import type { RaftLog } from "../src/raft/log.js";
import { RaftNode, type RaftConfig } from "../src/raft/node.js";
import { MemoryStorage } from "../src/raft/storage.js";
import {
  EntryType,
  emptyConfState,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
} from "../src/raft/types.js";
import { NotLeaderError, ProposalDroppedError } from "../src/raft/errors.js";
import { encodeCommand, type ApplyOutput } from "../src/statemachine/index.js";
import type { CoordinationChecker } from "./coordination-checker.js";
import { Disk, recordCount, type WriteBatch } from "./disk.js";
import type { EventQueue } from "./event-queue.js";
import { InvariantViolation, type InvariantChecker } from "./invariants.js";
import { LeaderLeases } from "./leader-leases.js";
import type { Network } from "./network.js";
import type { Prng } from "./prng.js";
import { Replica, realMachine, type MachineFactory } from "./replica.js";

/** Virtual time units per nominal tick. */
export const TICK = 100;

export interface ClusterHooks {
  /** `host` applied a committed command (not a no-op or conf change) with `output`. */
  onApplied(host: Host, e: Entry, output: ApplyOutput): void;
  /** Index `index` was applied for the first time anywhere: the committed stream, in index order. */
  onCommitted(index: number, output: ApplyOutput): void;
  /** `host` received the answer to a readIndex request. */
  onReadState(host: Host, index: number, ctx: string): void;
  /** `host`'s state machine advanced (pending reads may now complete). */
  onAppliedUpTo(host: Host): void;
}

export interface SimStats {
  steps: number;
  elections: number;
  faults: Map<string, number>;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  tornWrites: number;
  leaseExpiriesProposed: number;
}

export interface SimContext {
  readonly queue: EventQueue<() => void>;
  now: number;
  readonly rng: Prng;
  readonly network: Network;
  readonly checker: InvariantChecker;
  readonly coordination: CoordinationChecker;
  readonly stats: SimStats;
  /** Record a line of the narrative/trace; `line` is only called when someone listens. */
  log(line: () => string): void;
  fault(kind: string): void;
  /** Called when a node becomes leader (the nemesis may strike at once). */
  onNewLeader(host: Host): void;
}

interface PendingWrite {
  rd: Ready;
  batch: WriteBatch;
  /** Messages that may only leave after the fsync. */
  after: Message[];
}

export interface DiskProfile {
  /** fsync latency range in time units; 0..0 means the fsync completes within the step. */
  minLatency: number;
  maxLatency: number;
  /** Probability that a crash during a pending fsync keeps a torn prefix of the batch rather than nothing. */
  tornRate: number;
}

export const fastDisk: DiskProfile = { minLatency: 0, maxLatency: 0, tornRate: 0.5 };

export class Host {
  node: RaftNode | null = null;
  storage: MemoryStorage;
  sm: Replica;
  /** Lease deadlines, kept while this host leads. */
  readonly leases = new LeaderLeases();
  /** Ticks since this incarnation started: the host's monotonic clock is localTicks * TICK. */
  localTicks = 0;
  confState: ConfState = emptyConfState();
  up = false;
  /** Removed from the cluster and shut down for good. */
  retired = false;
  /** Bumped on every crash: events scheduled for an earlier incarnation are ignored. */
  incarnation = 0;
  /** Virtual time units between this node's ticks (clocks run at different rates). */
  tickPeriod = TICK;
  disk: DiskProfile = fastDisk;
  /** Writes in flight, oldest first; they complete in order. */
  pending: PendingWrite[] = [];
  /** How many Readies this host takes before the oldest one's write completes (1: one at a time). */
  pipeline = 1;
  /** Virtual time the newest write in flight completes (a later one never completes before it). */
  lastWriteDoneAt = 0;
  private lastCommit = 0;
  /** Reads answered by the core, waiting for the state machine to reach their index. */
  readonly waitingReads: { index: number; ctx: string }[] = [];

  constructor(
    readonly id: NodeId,
    readonly durable: Disk,
    readonly rng: Prng,
    machine: MachineFactory,
  ) {
    this.storage = durable.recover();
    this.sm = new Replica(machine);
  }

  /** The host's own monotonic clock (virtual ms): runs at this host's tick rate, restarts at 0 on restart. */
  clock(): number {
    return this.localTicks * TICK;
  }

  /** The core's log, for the invariant checker (white-box: the simulator reads the node's private state). */
  coreLog(): RaftLog {
    return (this.node as unknown as { raft: { log: RaftLog } }).raft.log;
  }

  /** Term of entry i in the node's log: -1 when compacted, undefined past the end. */
  termAt(i: number): number | undefined {
    const log = this.coreLog();
    if (i > log.lastIndex()) return undefined;
    if (i < log.firstIndex() - 1) return -1;
    return log.term(i);
  }

  resetCommitTracking(commit: number): void {
    this.lastCommit = commit;
  }

  /** Whether the node's commit advanced since we last told the checker; returns the new commit or 0. */
  commitAdvanced(commit: number): number {
    if (commit <= this.lastCommit) return 0;
    this.lastCommit = commit;
    return commit;
  }
}

export class Cluster {
  readonly hosts = new Map<NodeId, Host>();

  constructor(
    private readonly ctx: SimContext,
    private readonly hooks: ClusterHooks,
    private readonly raftOptions: Omit<RaftConfig, "id" | "rng" | "applied">,
    private readonly snapshotEvery: number,
    private readonly snapshotTail: number,
    /** Test hook: sees every RaftNode the cluster creates (mutation tests break the core on purpose). */
    private readonly onNodeCreated?: (host: Host) => void,
    /** How hosts build their state machine (tests substitute one that breaks a rule on purpose). */
    private readonly machine: MachineFactory = realMachine,
  ) {}

  /** Create a founding member (bootstrapped storage) or a later one (empty storage) and start it. */
  addHost(id: NodeId, bootstrapVoters: NodeId[] | null, tickPeriod: number): Host {
    if (this.hosts.has(id)) throw new Error(`cluster: host ${id} already exists`);
    const disk = bootstrapVoters ? Disk.bootstrapped(MemoryStorage.bootstrap(bootstrapVoters)) : new Disk();
    const host = new Host(id, disk, this.ctx.rng.fork(), this.machine);
    host.tickPeriod = tickPeriod;
    // Half the hosts persist one Ready at a time, the others keep up to 2-4 writes in flight, as the server does.
    host.pipeline = host.rng.chance(0.5) ? 1 : host.rng.int(2, 4);
    this.hosts.set(id, host);
    this.start(host);
    return host;
  }

  get(id: NodeId): Host | undefined {
    return this.hosts.get(id);
  }

  liveHosts(): Host[] {
    return [...this.hosts.values()].filter((h) => h.up);
  }

  /** The live node that believes it leads, with the highest term. */
  leader(): Host | undefined {
    let best: Host | undefined;
    for (const h of this.hosts.values()) {
      if (h.up && h.node!.role === "leader" && (!best || h.node!.term > best.node!.term)) best = h;
    }
    return best;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Lifecycle

  private start(host: Host): void {
    const storage = host.durable.recover();
    const snap = storage.snapshot();
    let node: RaftNode;
    try {
      node = new RaftNode(
        { ...this.raftOptions, id: host.id, rng: host.rng.asFunction(), applied: snap.metadata.index },
        storage,
      );
    } catch (e) {
      throw new InvariantViolation("restart", `${host.id} cannot start from its disk: ${(e as Error).message}`);
    }
    host.storage = storage;
    host.node = node;
    this.onNodeCreated?.(host);
    host.up = true;
    host.pending = [];
    host.waitingReads.length = 0;
    host.localTicks = 0;
    host.leases.steppedDown();
    host.sm = new Replica(this.machine);
    if (snap.metadata.index > 0) host.sm.restore(snap.metadata.index, snap.data);
    host.confState = snap.metadata.confState;
    const status = node.status();
    host.resetCommitTracking(status.commit);
    this.ctx.checker.restartedAt(host.id, snap.metadata.index);
    this.ctx.checker.restartCommit(host.id, status.commit, host.durable.maxDurableCommit);
    this.checkCommit(host, status.commit);
    this.scheduleTick(host);
    this.afterInput(host);
  }

  crash(host: Host): void {
    if (!host.up) return;
    // The oldest write in flight may be torn; later ones are lost (a torn prefix is a prefix of the writes).
    const p = host.pending[0];
    if (p) {
      const records = recordCount(p.batch);
      if (records > 1 && this.ctx.rng.chance(host.disk.tornRate)) {
        const kept = this.ctx.rng.int(1, records - 1);
        host.durable.write(p.batch, kept);
        this.ctx.stats.tornWrites++;
        this.ctx.log(() => `${host.id} crashes mid-fsync: ${kept} of ${records} records survive (torn tail)`);
      } else {
        this.ctx.log(() => `${host.id} crashes and loses an unsynced batch of ${records} records`);
      }
    } else {
      this.ctx.log(() => `${host.id} crashes`);
    }
    host.up = false;
    host.node = null;
    host.pending = [];
    host.leases.steppedDown();
    host.incarnation++;
  }

  restart(host: Host): void {
    if (host.up || host.retired) return;
    this.ctx.log(
      () =>
        `${host.id} restarts from its disk (snapshot ${host.durable.snapshot?.metadata.index ?? 0}, ` +
        `${host.durable.entries.length} entries, commit ${host.durable.hardState.commit})`,
    );
    this.start(host);
  }

  /** A member removed from the configuration shuts down for good. */
  retire(host: Host): void {
    if (host.retired) return;
    this.ctx.log(() => `${host.id} is no longer a member and shuts down`);
    this.crash(host);
    host.retired = true;
  }

  private scheduleTick(host: Host): void {
    const inc = host.incarnation;
    this.ctx.queue.push(this.ctx.now + host.tickPeriod, () => {
      if (!host.up || host.incarnation !== inc) return;
      this.ctx.stats.steps++;
      host.localTicks++;
      host.node!.tick();
      this.expireLeases(host);
      this.afterInput(host);
      this.scheduleTick(host);
    });
  }

  /** A leader proposes leaseExpire for the deadlines its clock has passed (at most one entry per tick). */
  private expireLeases(host: Host): void {
    const ids = host.leases.takeExpired(host.clock());
    if (ids.length === 0) return;
    try {
      host.node!.propose(encodeCommand({ op: "leaseExpire", ids }));
      this.ctx.stats.leaseExpiriesProposed++;
      this.ctx.log(() => `${host.id} proposes leaseExpire [${ids.join(",")}]`);
    } catch (e) {
      if (!(e instanceof NotLeaderError || e instanceof ProposalDroppedError)) throw e;
      host.leases.retryExpiry(ids);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Messages

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      const delays = this.ctx.network.delays(m);
      if (m.type === "snap") {
        this.sendSnapshot(m, delays);
        continue;
      }
      for (const delay of delays) {
        // Each delivery gets its own shallow copy: a receiver can never alter what another copy carries.
        const copy = { ...m } as Message;
        this.ctx.queue.push(this.ctx.now + delay, () => this.deliver(copy));
      }
    }
  }

  /**
   * A snapshot goes over a stream whose outcome the transport learns, as a real one does (the connection fails
   * or the transfer completes): the sender's host reports it with reportSnapshot, as etcd's transport does.
   */
  private sendSnapshot(m: Message, delays: number[]): void {
    const sender = this.hosts.get(m.from);
    const inc = sender?.incarnation;
    const report = (ok: boolean): void => {
      if (!sender || !sender.up || sender.incarnation !== inc) return;
      sender.node!.reportSnapshot(m.to, ok);
      this.afterInput(sender);
    };
    if (delays.length === 0) {
      this.ctx.queue.push(this.ctx.now + TICK, () => report(false));
      return;
    }
    for (const delay of delays) {
      const copy = { ...m } as Message;
      this.ctx.queue.push(this.ctx.now + delay, () => report(this.deliver(copy)));
    }
  }

  /** Returns whether the message reached a running node. */
  private deliver(m: Message): boolean {
    const host = this.hosts.get(m.to);
    if (!host || !host.up || this.ctx.network.isCut(m.from, m.to)) return false;
    this.ctx.stats.steps++;
    host.node!.step(m);
    this.afterInput(host);
    return true;
  }

  /** After any input to a node: check what can be checked, then run its Ready loop. */
  afterInput(host: Host): void {
    const node = host.node!;
    if (node.role === "leader") this.ctx.checker.leader(host.id, node.term);
    this.processReady(host);
  }

  // ---------------------------------------------------------------------------------------------------------
  // The Ready loop

  private processReady(host: Host): void {
    // inFlight, not pending.length: a Ready being completed synchronously (below) is in flight too, and hooks
    // it runs can re-enter here; a Ready taken then must wait behind it.
    while (host.up && host.node!.inFlight < host.pipeline && host.node!.hasReady()) {
      const node = host.node!;
      const rd = node.ready();
      if (rd.softState !== undefined && rd.softState.role !== "leader") host.leases.steppedDown();
      if (rd.softState?.role === "leader") {
        host.leases.becameLeader(host.sm.coordination.stateMachine.leases(), host.clock());
        this.ctx.stats.elections++;
        this.ctx.checker.leader(host.id, node.term);
        this.ctx.checker.newLeaderLog(host.id, node.term, (i) => host.termAt(i));
        this.ctx.log(() => `${host.id} becomes leader of term ${node.term} (log ends at ${node.status().lastIndex})`);
        this.ctx.onNewLeader(host);
      }
      const early: Message[] = [];
      const after: Message[] = [];
      for (const m of rd.messages) {
        if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") early.push(m);
        else after.push(m);
      }
      this.send(early);
      const batch: WriteBatch = { hardState: rd.hardState, snapshot: rd.snapshot, entries: rd.entries };
      const latency = rd.mustSync ? this.ctx.rng.int(host.disk.minLatency, host.disk.maxLatency) : 0;
      if (latency > 0 || node.inFlight > 1) {
        // Writes complete in order: never before the one ahead of it.
        const doneAt = Math.max(this.ctx.now + latency, host.lastWriteDoneAt);
        host.lastWriteDoneAt = doneAt;
        const p: PendingWrite = { rd, batch, after };
        host.pending.push(p);
        const inc = host.incarnation;
        this.ctx.queue.push(doneAt, () => {
          if (!host.up || host.incarnation !== inc || host.pending[0] !== p) return;
          this.ctx.stats.steps++;
          host.pending.shift();
          this.complete(host, p.rd, p.batch, p.after);
          this.afterInput(host);
        });
        continue;
      }
      this.complete(host, rd, batch, after);
    }
  }

  /** The fsync of `batch` completed: update storage, send, apply, advance. */
  private complete(host: Host, rd: Ready, batch: WriteBatch, after: Message[]): void {
    const node = host.node!;
    // 1. Persist: the disk, then the in-memory storage the core reads. As the real server does, a Ready that
    //    only moves commit (mustSync false) is not written durably: a crash forgets it (commit is re-learned).
    const commitOnly = !rd.mustSync && !rd.snapshot && rd.entries.length === 0;
    if (!commitOnly) host.durable.write(batch);
    if (rd.snapshot) host.storage.applySnapshot(rd.snapshot);
    if (rd.hardState) host.storage.setHardState(rd.hardState);
    host.storage.append(rd.entries);
    if (rd.entries.length > 0) {
      this.ctx.checker.persisted(host.id, rd.entries, (i) => this.storageTerm(host, i));
    }
    if (rd.hardState) {
      const c = host.commitAdvanced(rd.hardState.commit);
      if (c > 0) this.checkCommit(host, c);
    }
    // 2. Send what had to wait for the fsync.
    this.send(after);
    // 3. Apply.
    if (rd.snapshot) {
      const meta = rd.snapshot.metadata;
      host.sm.restore(meta.index, rd.snapshot.data);
      host.confState = meta.confState;
      this.ctx.checker.restartedAt(host.id, meta.index);
      this.ctx.stats.snapshotsInstalled++;
      this.ctx.log(() => `${host.id} installs a snapshot at index ${meta.index}`);
    }
    let removedSelf = false;
    for (const e of rd.committed) {
      if (e.index <= host.sm.appliedIndex) continue; // covered by a snapshot installed in this Ready
      this.ctx.checker.applied(host.id, e);
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        host.confState = node.applyConfChange(cc);
        host.sm.apply(e.index, null);
        this.ctx.log(
          () =>
            `${host.id} applies conf change at ${e.index}: ${describeConfChange(cc.changes)} → voters ` +
            `[${host.confState.voters.join(",")}]${host.confState.votersOutgoing.length ? ` joint with [${host.confState.votersOutgoing.join(",")}]` : ""}` +
            `${host.confState.learners.length ? ` learners [${host.confState.learners.join(",")}]` : ""}`,
        );
        if (!isMember(host.confState, host.id)) removedSelf = true;
        const votes = host.confState.voters.includes(host.id) || host.confState.votersOutgoing.includes(host.id);
        if (!votes && node.role === "leader") {
          throw new InvariantViolation(
            "removed leader steps down",
            `${host.id} still leads term ${node.term} after applying its removal at ${e.index}`,
          );
        }
      } else if (e.data.byteLength === 0) {
        host.sm.apply(e.index, null);
      } else {
        const output = host.sm.apply(e.index, e.data)!;
        host.leases.applied(output.events, host.clock());
        const first = this.ctx.coordination.applied(host.id, e.index, e.data, output, host.sm.coordination);
        this.hooks.onApplied(host, e, output);
        if (first) this.hooks.onCommitted(e.index, output);
      }
    }
    for (const rs of rd.readStates) this.hooks.onReadState(host, rs.index, rs.ctx);
    // 4. Advance.
    node.advance(rd);
    if (rd.committed.length > 0 || rd.snapshot) {
      this.hooks.onAppliedUpTo(host);
      this.maybeSnapshot(host);
    }
    if (removedSelf) {
      // Shut down once the removal is known here; let the Ready loop hand over leadership first.
      const inc = host.incarnation;
      this.ctx.queue.push(this.ctx.now + 3 * TICK, () => {
        if (host.incarnation === inc && host.up && !isMember(host.confState, host.id)) this.retire(host);
      });
    }
  }

  private checkCommit(host: Host, commit: number): void {
    const term = host.termAt(commit);
    // Past the log's end would be a core bug (it asserts against it); compacted (-1) means a snapshot covers it.
    if (term === undefined)
      throw new InvariantViolation("commit within log", `${host.id} has commit ${commit} past its last index`);
    if (term >= 0) this.ctx.checker.commit(host.id, commit, term);
  }

  private storageTerm(host: Host, i: number): number {
    if (i < host.storage.firstIndex() - 1) return -1;
    return host.storage.term(i);
  }

  /** Now and then the host snapshots its state machine and compacts the log, keeping a short tail. */
  private maybeSnapshot(host: Host): void {
    const applied = host.sm.appliedIndex;
    const snapIndex = host.storage.snapshot().metadata.index;
    if (applied - snapIndex < this.snapshotEvery || applied > host.storage.lastIndex()) return;
    const data = host.sm.snapshotData();
    this.ctx.coordination.snapshotTaken(host.id, applied, data);
    const snap = host.storage.createSnapshot(applied, host.confState, data);
    const compactTo = applied - this.snapshotTail;
    if (compactTo >= host.storage.firstIndex()) host.storage.compact(compactTo);
    host.durable.saveHostSnapshot(snap, compactTo + 1);
    this.ctx.stats.snapshotsTaken++;
  }
}

export function isMember(cs: ConfState, id: NodeId): boolean {
  return (
    cs.voters.includes(id) || cs.learners.includes(id) || cs.votersOutgoing.includes(id) || cs.learnersNext.includes(id)
  );
}

function describeConfChange(changes: { kind: string; nodeId: NodeId }[]): string {
  if (changes.length === 0) return "leave joint";
  return changes.map((c) => `${c.kind} ${c.nodeId}`).join(" + ");
}
