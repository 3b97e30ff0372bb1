import { Raft, type RaftConfig } from "./raft.js";
import { assert } from "../assert.js";
import type { Storage } from "./storage.js";
import { confStateFromConfig } from "./confchange.js";
import type { ConfChange, ConfState, HardState, NodeId, Ready, Role, SoftState } from "./types.js";

export type { RaftConfig } from "./raft.js";

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  commit: number;
  applied: number;
  lastIndex: number;
  role: Role;
  leader: NodeId | null;
  confState: ConfState;
  /** The leader's view of each member; empty on other nodes. */
  progress: Record<NodeId, { match: number; next: number; state: string }>;
  leadTransferee: NodeId | null;
}

/**
 * The host's handle on the Raft core (etcd's RawNode): feed it ticks, messages and proposals; collect a Ready;
 * persist, send, apply; advance. See Ready in types.ts for the contract.
 * A host may take further Readies before advancing earlier ones (several writes in flight, as etcd's async
 * storage writes): each Ready carries only entries, a snapshot and committed entries not handed out before.
 * Readies must then be persisted, their messages sent and `advance` called strictly in the order taken.
 */
export class RaftNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** Readies handed out and not yet advanced, oldest first. */
  private readonly outstanding: Ready[] = [];
  private readonly maxCommittedPerReady: number;

  constructor(config: RaftConfig, storage: Storage) {
    this.raft = new Raft(config, storage);
    this.maxCommittedPerReady = config.maxCommittedEntriesPerReady ?? Infinity;
    assert(this.maxCommittedPerReady >= 1, () => `maxCommittedEntriesPerReady ${this.maxCommittedPerReady} is not at least 1`);
    this.prevSoft = this.softState();
    this.prevHard = this.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }
  get role(): Role {
    return this.raft.role;
  }
  get leader(): NodeId | null {
    return this.raft.leader;
  }
  get term(): number {
    return this.raft.term;
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Parameters<Raft["step"]>[0]): void {
    this.raft.step(message);
  }

  /** Append one entry (leader only); returns its index. Throws NotLeaderError on a follower. */
  propose(data: Uint8Array): number {
    return this.raft.propose([data]);
  }

  /** Append several entries at once (leader only); returns the index of the last. */
  proposeMany(datas: Uint8Array[]): number {
    return this.raft.propose(datas);
  }

  proposeConfChange(cc: ConfChange): number {
    return this.raft.proposeConfChange(cc);
  }

  /** Call when a committed ConfChange entry is applied; returns the new membership to persist. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  readIndex(ctx: string): void {
    this.raft.readIndex(ctx);
  }

  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  /** Campaign now (pre-vote first when enabled). */
  campaign(): void {
    this.raft.hup("pre-election");
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  private softState(): SoftState {
    return { leader: this.raft.leader, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  /** Readies taken and not yet advanced. */
  get inFlight(): number {
    return this.outstanding.length;
  }

  hasReady(): boolean {
    const r = this.raft;
    const soft = this.prevSoft;
    const hard = this.prevHard;
    return (
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.hasPendingAppends() ||
      r.hasReadRoundPending() ||
      r.log.unstable.hasEntriesToPersist() ||
      r.log.unstable.snapshotToPersist() !== undefined ||
      r.log.hasNextCommittedEntries() ||
      soft.leader !== r.leader ||
      soft.role !== r.role ||
      hard.term !== r.term ||
      hard.vote !== r.vote ||
      hard.commit !== r.log.committed
    );
  }

  ready(): Ready {
    const r = this.raft;
    // Batching per Ready: the appends for every proposal since the last Ready, and one heartbeat round for
    // every read, go out now.
    r.flushAppends();
    r.flushReadRound();
    const soft = this.softState();
    const hard = this.hardState();
    const termOrVoteChanged = hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote;
    const hardChanged = termOrVoteChanged || hard.commit !== this.prevHard.commit;
    const softChanged = soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role;
    const entries = r.log.unstable.entriesToPersist();
    const rd: Ready = {
      entries,
      committed: r.log.nextCommittedEntries(this.maxCommittedPerReady),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: termOrVoteChanged || entries.length > 0,
    };
    if (softChanged) rd.softState = soft;
    if (hardChanged) rd.hardState = hard;
    const snap = r.log.unstable.snapshotToPersist();
    if (snap) {
      rd.snapshot = snap;
      rd.mustSync = true;
    }
    r.log.unstable.acceptInProgress();
    if (snap) r.log.acceptApplying(snap.metadata.index);
    if (rd.committed.length > 0) r.log.acceptApplying(rd.committed[rd.committed.length - 1].index);
    r.msgs = [];
    r.readStates = [];
    this.prevSoft = soft;
    if (rd.hardState) this.prevHard = rd.hardState;
    this.outstanding.push(rd);
    return rd;
  }

  advance(rd: Ready): void {
    assert(this.outstanding[0] === rd, "advance() with a Ready that is not the oldest one taken");
    this.outstanding.shift();
    const r = this.raft;
    if (rd.snapshot) r.log.stableSnapTo(rd.snapshot.metadata.index);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      r.stableTo(last.index, last.term);
    }
    let applied = rd.snapshot ? rd.snapshot.metadata.index : 0;
    if (rd.committed.length > 0) applied = rd.committed[rd.committed.length - 1].index;
    if (applied > r.log.applied) r.appliedTo(applied);
  }

  status(): RaftStatus {
    const r = this.raft;
    const progress: RaftStatus["progress"] = {};
    if (r.role === "leader") {
      for (const [id, pr] of r.progress) progress[id] = { match: pr.match, next: pr.next, state: pr.state };
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      role: r.role,
      leader: r.leader,
      confState: confStateFromConfig(r.config),
      progress,
      leadTransferee: r.leadTransferee,
    };
  }
}
