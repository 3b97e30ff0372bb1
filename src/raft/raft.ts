import {
  applyConfChangeTo,
  confStateFromConfig,
  configFromConfState,
  encodeConfChange,
  isJoint,
  type MembershipConfig,
} from "./confchange.js";
import { CompactedError, NotLeaderError, ProposalDroppedError } from "./errors.js";
import { assert } from "../assert.js";
import { RaftLog } from "./log.js";
import { Progress } from "./progress.js";
import { jointCommitted, jointVoteResult, jointVoterIds, type VoteResult } from "./quorum.js";
import { ReadOnly } from "./read-only.js";
import type { Storage } from "./storage.js";
import {
  EntryType,
  entrySize,
  isEmptySnapshot,
  type AppendMessage,
  type AppendResponseMessage,
  type ConfChange,
  type ConfState,
  type Entry,
  type HeartbeatMessage,
  type HeartbeatResponseMessage,
  type Message,
  type NodeId,
  type ReadIndexMessage,
  type ReadState,
  type Role,
  type Snapshot,
  type VoteMessage,
  type VoteResponseMessage,
} from "./types.js";

export interface RaftConfig {
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [n, 2n). Default 10. */
  electionTicks?: number;
  /** Ticks between a leader's heartbeats. Default 1. */
  heartbeatTicks?: number;
  /** Pre-vote (thesis §9.6): a partitioned node cannot disrupt the cluster when it rejoins. Default true. */
  preVote?: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. Default true. */
  checkQuorum?: boolean;
  /** "safe": ReadIndex confirms leadership with a heartbeat round. "lease": trusts the leader lease. */
  readOnly?: "safe" | "lease";
  /** Append messages in flight per follower. Default 256. */
  maxInflight?: number;
  /** Bytes in flight per follower (0 = unlimited). Default 0. */
  maxInflightBytes?: number;
  /** Bytes of entries per append message. Default 1 MiB. */
  maxBatchBytes?: number;
  /** Entries per append message. Default 1024. */
  maxBatchEntries?: number;
  /**
   * Committed entries per Ready (etcd's MaxCommittedSizePerReady, counted in entries); the rest come in the next
   * Readies. Default unlimited.
   */
  maxCommittedEntriesPerReady?: number;
  /** On restart: the last index the host's state machine has applied. */
  applied?: number;
  /** Seeded PRNG returning values in [0, 1): the core's only source of randomness. */
  rng: () => number;
}

type CampaignKind = "pre-election" | "election" | "transfer";

/**
 * The Raft state machine of one node: roles, elections, replication, commitment, reads, transfers and
 * membership. Pure: messages out are queued in `msgs`, time enters through `tick()`.
 * Durability contract: see Ready in types.ts. The leader counts its own log toward commit only up to what the
 * host has persisted (`stableTo`), so it may send appends before its own fsync.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = null;
  role: Role = "follower";
  leader: NodeId | null = null;
  readonly log: RaftLog;

  config: MembershipConfig;
  progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();

  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private randomizedElectionTimeout = 0;
  /** Ticks since the last election timeout reset (followers: since hearing from the leader). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;

  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: "safe" | "lease";
  private readonly maxInflight: number;
  private readonly maxInflightBytes: number;
  private readonly maxBatchBytes: number;
  private readonly maxBatchEntries: number;
  private readonly rng: () => number;

  /** The target of a leadership transfer in progress; proposals are refused meanwhile. */
  leadTransferee: NodeId | null = null;
  /** Index of the latest conf change proposed; a new one waits until it is applied. */
  pendingConfIndex = 0;
  private readonly readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  private pendingReads: ReadIndexMessage[] = [];
  /** Entries were appended by proposals: broadcast once when the host next collects a Ready. */
  private appendsPending = false;

  constructor(config: RaftConfig, storage: Storage) {
    this.id = config.id;
    this.electionTimeout = config.electionTicks ?? 10;
    this.heartbeatTimeout = config.heartbeatTicks ?? 1;
    assert(this.heartbeatTimeout > 0 && this.electionTimeout > this.heartbeatTimeout, "election ticks must exceed heartbeat ticks");
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.readOnlyOption = config.readOnly ?? "safe";
    assert(this.readOnlyOption === "safe" || this.checkQuorum, "lease reads require checkQuorum");
    this.maxInflight = config.maxInflight ?? 256;
    this.maxInflightBytes = config.maxInflightBytes ?? 0;
    this.maxBatchBytes = config.maxBatchBytes ?? 1 << 20;
    this.maxBatchEntries = config.maxBatchEntries ?? 1024;
    this.rng = config.rng;

    this.log = new RaftLog(storage);
    const { hardState, confState } = storage.initialState();
    this.config = configFromConfState(confState);
    this.resetProgress();
    if (hardState.term > 0 || hardState.vote !== null || hardState.commit > 0) {
      // The durable commit may lag the snapshot: a host need not fsync a change of commit alone, yet may snapshot
      // what it applied. The snapshot proves its entries committed, so commit is at least its index.
      assert(
        hardState.commit <= this.log.lastIndex(),
        () => `hard state commit ${hardState.commit} is past the last index ${this.log.lastIndex()}`,
      );
      this.term = hardState.term;
      this.vote = hardState.vote;
      this.log.commitTo(Math.max(hardState.commit, this.log.committed));
    }
    if (this.log.lastTerm() > this.term) {
      // A torn write kept a batch's entries but not its hard state record (entries are written first). The lost
      // record had term = the entries' term; its vote was null — a vote in that term would have been made
      // durable by an earlier, fully synced batch (so the durable term would not be behind), and a vote cast in
      // the torn batch was never sent (votes go out only after the fsync).
      this.term = this.log.lastTerm();
      this.vote = null;
    }
    assert(this.term >= this.log.lastTerm(), () => `term ${this.term} is behind the last log term ${this.log.lastTerm()}`);
    if (config.applied && config.applied > this.log.applied) this.log.appliedTo(Math.min(config.applied, this.log.committed));
    this.becomeFollower(this.term, null);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Roles

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.votes = new Map();
    this.resetProgress();
    this.readOnly.reset();
    this.pendingReads = [];
    this.appendsPending = false;
  }

  private resetProgress(): void {
    const last = this.log.lastIndex();
    const prs = new Map<NodeId, Progress>();
    const add = (id: NodeId, learner: boolean) => {
      const pr = new Progress(last + 1, this.maxInflight, this.maxInflightBytes, learner);
      if (id === this.id) pr.match = this.lastStableIndex();
      prs.set(id, pr);
    };
    for (const id of jointVoterIds(this.config.voters)) add(id, false);
    for (const id of this.config.learners) add(id, true);
    for (const id of this.config.learnersNext) if (!prs.has(id)) add(id, true);
    this.progress = prs;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.rng() * this.electionTimeout);
  }

  becomeFollower(term: number, leader: NodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "a leader cannot become a pre-candidate");
    // A pre-candidate changes neither term nor vote: a failed pre-election leaves no trace.
    this.role = "pre-candidate";
    this.votes = new Map();
    this.leader = null;
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "a leader cannot become a candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", () => `only a candidate becomes leader (was ${this.role})`);
    this.reset(this.term);
    this.role = "leader";
    this.leader = this.id;
    this.progress.get(this.id)?.becomeReplicate();
    // Conservatively, a conf change may sit uncommitted in the log; allow no new one until it is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op of the new term: committing it commits every earlier entry (Figure 8) and enables reads.
    this.appendEntries([{ term: this.term, index: 0, type: EntryType.Normal, data: new Uint8Array() }]);
    this.bcastAppend();
  }

  /** Whether this node may become leader: a voter that is not waiting on a snapshot. */
  promotable(): boolean {
    const pr = this.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.log.unstable.snapshot === undefined;
  }

  private lastStableIndex(): number {
    const u = this.log.unstable;
    return u.entries.length > 0 || u.snapshot ? u.offset - 1 : this.log.lastIndex();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Time

  tick(): void {
    if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup("pre-election");
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      // A snapshot whose outcome we never heard of, to a follower silent for this whole election timeout, is
      // retried from a probe (sent once it is heard from again). Read before the CheckQuorum round clears
      // recentActive: read after it, every follower receiving a snapshot looked silent, and the snapshot still
      // streaming was sent again every round.
      const silent = [...this.progress.values()].filter((pr) => pr.state === "snapshot" && !pr.recentActive);
      if (this.checkQuorum && !this.maybeStayLeader()) return;
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = null;
      for (const pr of silent) pr.becomeProbe();
    }
    if (this.role !== "leader") return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      // The newest read still waiting rides on every heartbeat (etcd does the same): acks of a round that were
      // lost (or a round's heartbeats) would otherwise leave its reads waiting until another read came.
      this.bcastHeartbeat(this.readOnly.newestPending());
    }
  }

  /** CheckQuorum: step down unless a quorum was heard from during the last election timeout. */
  private maybeStayLeader(): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (id === this.id || pr.recentActive) active.set(id, true);
      pr.recentActive = false;
    }
    if (jointVoteResult(this.config.voters, active) === "won") return true;
    this.becomeFollower(this.term, null);
    return false;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Elections

  /** Start an election, unless this node cannot lead or a committed conf change is not yet applied. */
  hup(kind: CampaignKind): void {
    if (this.role === "leader" || !this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(kind === "pre-election" && !this.preVote ? "election" : kind);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    try {
      for (const e of this.log.slice(this.log.applied + 1, this.log.committed + 1)) {
        if (e.type === EntryType.ConfChange) return true;
      }
    } catch (e) {
      if (!(e instanceof CompactedError)) throw e;
    }
    return false;
  }

  private campaign(kind: CampaignKind): void {
    let term: number;
    let type: "vote" | "preVote";
    if (kind === "pre-election") {
      this.becomePreCandidate();
      type = "preVote";
      term = this.term + 1; // the term we would campaign in; our own term stays
    } else {
      this.becomeCandidate();
      type = "vote";
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      // A single-voter cluster wins at once.
      if (kind === "pre-election") this.campaign("election");
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of jointVoterIds(this.config.voters)) {
      if (id === this.id) continue;
      this.send<VoteMessage>({ type, from: this.id, to: id, term, logTerm, index: lastIndex, transfer: kind === "transfer" });
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return jointVoteResult(this.config.voters, this.votes);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Messages in

  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        // Leader lease (thesis §4.2.3): while we hear from a leader, ignore elections that would depose it,
        // unless it is a transfer the leader itself asked for.
        const inLease = this.checkQuorum && this.leader !== null && this.electionElapsed < this.electionTimeout;
        if (inLease && !m.transfer) return;
      }
      if (m.type === "preVote") {
        // Never change term for a pre-vote.
      } else if (m.type === "preVoteResp" && !m.reject) {
        // A granted pre-vote carries the term we would campaign in; the term changes only if we win.
      } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === "heartbeat" || m.type === "app")) {
        // A stale leader (e.g. just healed from a partition) learns our term from this and steps down;
        // without it, pre-vote and check-quorum could leave it partitioned from the cluster forever.
        this.send<AppendResponseMessage>({
          type: "appResp", from: this.id, to: m.from, term: this.term, index: 0, reject: false, hintIndex: 0, hintTerm: 0,
        });
      } else if (m.type === "preVote") {
        this.send<VoteResponseMessage>({ type: "preVoteResp", from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        break;
      case "candidate":
      case "pre-candidate":
        this.stepCandidate(m);
        break;
      case "follower":
        this.stepFollower(m);
        break;
    }
  }

  private handleVoteRequest(m: VoteMessage): void {
    const respType = m.type === "vote" ? "voteResp" : "preVoteResp";
    // We can vote for m.from if we already did, if we have not voted and know no leader in this term, or if
    // it is a pre-vote for a future term.
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leader === null) ||
      (m.type === "preVote" && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A granted vote answers with the candidate's term so it can count it (for a pre-vote, our term is lower).
      this.send<VoteResponseMessage>({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send<VoteResponseMessage>({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "appResp":
        this.handleAppendResponse(m);
        break;
      case "heartbeatResp":
        this.handleHeartbeatResponse(m);
        break;
      case "readIndex":
        this.handleReadIndex(m);
        break;
      default:
        // app/heartbeat/snap cannot come from another leader of our term; votes and the rest are stale.
        break;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "app":
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case "snap":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m.from, m.snapshot);
        break;
      case "voteResp":
      case "preVoteResp": {
        if ((m.type === "voteResp") !== (this.role === "candidate")) break; // a response from the other phase
        const result = this.poll(m.from, !m.reject);
        if (result === "won") {
          if (this.role === "pre-candidate") this.campaign("election");
          else this.becomeLeader();
        } else if (result === "lost") {
          this.becomeFollower(this.term, null);
        }
        break;
      }
      default:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        break;
      case "heartbeat":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        break;
      case "snap":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m.from, m.snapshot);
        break;
      case "timeoutNow":
        // The leader asks us to take over: campaign at once, with the transfer flag that overrides leases.
        this.hup("transfer");
        break;
      case "readIndexResp":
        if (!m.reject) this.readStates.push({ index: m.index, ctx: m.ctx });
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Replication: follower side

  private handleAppend(m: AppendMessage): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index already matches the leader's log.
      this.sendAppendResponse(m.from, this.log.committed);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew >= 0) {
      if (!m.commitOnly) this.sendAppendResponse(m.from, lastNew);
      return;
    }
    // Consistency check failed. Hint the largest index whose term is <= the leader's term at m.index:
    // the leader then skips a whole term of mismatching entries per round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send<AppendResponseMessage>({
      type: "appResp", from: this.id, to: m.from, term: this.term, index: m.index, reject: true,
      hintIndex: hint.index, hintTerm: hint.term,
    });
  }

  private sendAppendResponse(to: NodeId, index: number): void {
    this.send<AppendResponseMessage>({ type: "appResp", from: this.id, to, term: this.term, index, reject: false, hintIndex: 0, hintTerm: 0 });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // The leader never sends a commit beyond what it knows we have, so this cannot pass our last index.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send<HeartbeatResponseMessage>({ type: "heartbeatResp", from: this.id, to: m.from, term: this.term, ctx: m.ctx });
  }

  private handleSnapshot(from: NodeId, s: Snapshot): void {
    if (this.restore(s)) this.sendAppendResponse(from, this.log.lastIndex());
    else this.sendAppendResponse(from, this.log.committed);
  }

  /** Install a snapshot from the leader; false when it brings nothing new. */
  private restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.log.committed) return false;
    assert(this.role === "follower", "only a follower installs a snapshot");
    if (this.log.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the entry at the snapshot's index: just commit up to it and keep the log.
      this.log.commitTo(s.metadata.index);
      return false;
    }
    this.log.restore(s);
    this.config = configFromConfState(s.metadata.confState);
    this.resetProgress();
    return true;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Replication: leader side

  private handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (m.reject) {
      let next = m.hintIndex;
      if (m.hintTerm > 0) next = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      if (pr.maybeDecreaseTo(m.index, next)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) {
      this.releasePendingReads();
      this.bcastCommit();
    } else if (wasPaused) {
      this.maybeSendAppend(m.from, true);
    }
    // Fill the window: pipelining keeps a follower that keeps up streaming without waiting on acks.
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    pr.probeSent = false;
    // Lost appends would otherwise pin a full window forever: free one slot so the next append can find out.
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirst();
    if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true);

    if (m.ctx === "" || this.readOnlyOption !== "safe") return;
    const acks = this.readOnly.recvAck(m.from, m.ctx);
    if (!acks || jointVoteResult(this.config.voters, acks) !== "won") return;
    for (const req of this.readOnly.release(m.ctx)) this.answerRead(req.from, req.ctx, req.index);
  }

  /**
   * Send an append to `to` if it is not paused; with `sendIfEmpty` false, only when there are entries. With
   * `forCommit`, an append with no entries to a follower in replicate state is marked commitOnly (no success reply).
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean, forCommit = false): boolean {
    const pr = this.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let entries: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      entries = this.log.entriesFrom(pr.next, this.maxBatchBytes, this.maxBatchEntries);
    } catch (e) {
      if (!(e instanceof CompactedError)) throw e;
      return this.maybeSendSnapshot(to, pr);
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of entries) bytes += entrySize(e);
    const m: AppendMessage = {
      type: "app", from: this.id, to, term: this.term, logTerm: prevTerm, index: prevIndex, entries,
      commit: this.log.committed,
    };
    // In replicate state every entry up to prevIndex was sent in order on the same link: the follower's acks of
    // them, not a reply to this, move its progress (a probe, by contrast, needs its reply).
    if (forCommit && entries.length === 0 && pr.state === "replicate") m.commitOnly = true;
    this.send(m);
    pr.sentEntries(prevIndex + entries.length, entries.length, bytes);
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // Only to a follower we recently heard from: a snapshot is expensive to send into the void.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    if (isEmptySnapshot(snapshot)) return false;
    this.send({ type: "snap", from: this.id, to, term: this.term, snapshot });
    pr.becomeSnapshot(snapshot.metadata.index);
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  /** The commit index moved: tell every follower, with entries where it lacks some, else commitOnly. */
  private bcastCommit(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, true, true);
  }

  private bcastHeartbeat(ctx: string): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold: its log might still differ there.
      const commit = Math.min(pr.match, this.log.committed);
      this.send<HeartbeatMessage>({ type: "heartbeat", from: this.id, to: id, term: this.term, commit, ctx });
    }
  }

  /** Advance commit to what a (joint) majority holds, if it is an entry of this term. */
  private maybeCommit(): boolean {
    // The leader counts its own entries only once the host has persisted them (stableTo).
    const self = this.progress.get(this.id);
    assert(self === undefined || self.match <= this.lastStableIndex(), () => `the leader counts itself at ${self!.match}, past its durable log (${this.lastStableIndex()})`);
    const index = jointCommitted(this.config.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (index === Infinity) return false;
    return this.log.maybeCommit(index, this.term);
  }

  /** Snapshot state outcome reported by the host's transport. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.progress.get(to);
    if (this.role !== "leader" || !pr || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    // Either way, wait for the follower's append response (or a heartbeat) before sending more.
    pr.becomeProbe();
    pr.probeSent = true;
  }

  /** The transport could not reach `to`: stop streaming optimistically and probe instead. */
  reportUnreachable(to: NodeId): void {
    const pr = this.progress.get(to);
    if (this.role === "leader" && pr?.state === "replicate") pr.becomeProbe();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Proposals

  /** Append entries on the leader. Returns the index of the last one. */
  propose(datas: Uint8Array[]): number {
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
    if (this.leadTransferee !== null) throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
    const entries: Entry[] = new Array(datas.length);
    for (let i = 0; i < datas.length; i++) entries[i] = { term: this.term, index: 0, type: EntryType.Normal, data: datas[i] };
    return this.appendEntries(entries);
  }

  proposeConfChange(cc: ConfChange): number {
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
    if (this.leadTransferee !== null) throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
    if (this.pendingConfIndex > this.log.applied) {
      throw new ProposalDroppedError(`a membership change at index ${this.pendingConfIndex} is not yet applied`);
    }
    // Validate against the current configuration; throws ConfChangeError when it does not apply.
    applyConfChangeTo(this.config, cc);
    const index = this.appendEntries([{ term: this.term, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }]);
    this.pendingConfIndex = index;
    return index;
  }

  private appendEntries(entries: Entry[]): number {
    let index = this.log.lastIndex();
    for (const e of entries) {
      e.term = this.term;
      e.index = ++index;
    }
    this.log.append(entries);
    this.appendsPending = true;
    return index;
  }

  /** Send the appends for entries proposed since the last call: once per Ready, not once per proposal. */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.role === "leader") this.bcastAppend();
  }

  hasPendingAppends(): boolean {
    return this.appendsPending;
  }

  /** The host persisted entries up to (index, term). The leader now counts itself as holding them. */
  stableTo(index: number, term: number): void {
    this.log.stableTo(index, term);
    if (this.role !== "leader") return;
    const self = this.progress.get(this.id);
    if (self && self.maybeUpdate(this.lastStableIndex()) && this.maybeCommit()) {
      this.releasePendingReads();
      this.bcastCommit();
    }
  }

  /** The host applied up to `index`. A leader in an auto-leave joint config now proposes leaving it. */
  appliedTo(index: number): void {
    this.log.appliedTo(index);
    if (
      this.role === "leader" && this.config.autoLeave && isJoint(this.config) &&
      this.pendingConfIndex <= this.log.applied && this.leadTransferee === null
    ) {
      const cc: ConfChange = { changes: [] };
      const i = this.appendEntries([{ term: this.term, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }]);
      this.pendingConfIndex = i;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Membership

  /** Apply a committed conf change (called by the host, in log order). Invalid ones are ignored everywhere. */
  applyConfChange(cc: ConfChange): ConfState {
    let next: MembershipConfig;
    try {
      next = applyConfChangeTo(this.config, cc);
    } catch {
      return confStateFromConfig(this.config); // deterministic on every node: the same entry fails everywhere
    }
    this.config = next;
    const last = this.log.lastIndex();
    const wanted = new Set<NodeId>([...jointVoterIds(next.voters), ...next.learners, ...next.learnersNext]);
    for (const id of [...this.progress.keys()]) if (!wanted.has(id)) this.progress.delete(id);
    for (const id of wanted) {
      const learner = !next.voters.incoming.has(id) && !next.voters.outgoing.has(id);
      const pr = this.progress.get(id);
      if (!pr) {
        const fresh = new Progress(last + 1, this.maxInflight, this.maxInflightBytes, learner);
        fresh.recentActive = true; // give a new member an election timeout to respond before CheckQuorum counts it
        if (id === this.id) fresh.match = this.lastStableIndex();
        this.progress.set(id, fresh);
      } else if (pr.isLearner !== learner) {
        const moved = new Progress(pr.next, this.maxInflight, this.maxInflightBytes, learner);
        moved.match = pr.match;
        moved.recentActive = true;
        moved.state = pr.state;
        moved.pendingSnapshot = pr.pendingSnapshot;
        this.progress.set(id, moved);
        if (pr.state === "replicate") moved.becomeReplicate();
      }
    }
    if (this.role === "leader") {
      if (!this.progress.has(this.id) || this.progress.get(this.id)!.isLearner) {
        this.stepDownAfterRemoval();
      } else {
        if (this.leadTransferee !== null && !this.progress.has(this.leadTransferee)) this.leadTransferee = null;
        // The quorum changed: commit may advance, and new members need appends.
        if (this.maybeCommit()) this.releasePendingReads();
        this.bcastAppend();
      }
    }
    return confStateFromConfig(this.config);
  }

  /** A leader removed from the voters hands over to the most caught-up voter, then steps down. */
  private stepDownAfterRemoval(): void {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of jointVoterIds(this.config.voters)) {
      const pr = this.progress.get(id);
      if (id !== this.id && pr && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best !== null && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    this.becomeFollower(this.term, null);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Leadership transfer (thesis §3.10)

  transferLeadership(to: NodeId): void {
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
    if (to === this.id) return;
    const pr = this.progress.get(to);
    if (!pr || pr.isLearner) throw new ProposalDroppedError(`cannot transfer leadership to ${to}: not a voter`);
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    // The transfer must finish within an election timeout, or it is abandoned (see tickHeartbeat).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.maybeSendAppend(to, true);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: "timeoutNow", from: this.id, to, term: this.term });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Linearizable reads (thesis §6.4)

  /** Ask for a read index; the answer arrives in `readStates` (here or, for a follower, via the leader). */
  readIndex(ctx: string): void {
    if (this.role === "leader") {
      this.handleReadIndex({ type: "readIndex", from: this.id, to: this.id, term: this.term, ctx });
    } else if (this.leader !== null) {
      this.send<ReadIndexMessage>({ type: "readIndex", from: this.id, to: this.leader, term: this.term, ctx });
    } else {
      throw new NotLeaderError(null);
    }
  }

  private handleReadIndex(m: ReadIndexMessage): void {
    if (!this.committedInCurrentTerm()) {
      // The commit index of a new leader may be behind the cluster's until its no-op commits.
      this.pendingReads.push(m);
      return;
    }
    const index = this.log.committed;
    const voters = this.config.voters;
    if (this.readOnlyOption === "lease" || (voters.incoming.size === 1 && voters.outgoing.size === 0 && voters.incoming.has(this.id))) {
      this.answerRead(m.from, m.ctx, index);
      return;
    }
    const acks = this.readOnly.add(m.ctx, index, m.from);
    if (acks) acks.acks.set(this.id, true);
  }

  private answerRead(from: NodeId, ctx: string, index: number): void {
    if (from === this.id) this.readStates.push({ index, ctx });
    else this.send({ type: "readIndexResp", from: this.id, to: from, term: this.term, ctx, index, reject: false });
  }

  private committedInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  private releasePendingReads(): void {
    if (this.pendingReads.length === 0 || !this.committedInCurrentTerm()) return;
    const reads = this.pendingReads;
    this.pendingReads = [];
    for (const m of reads) this.handleReadIndex(m);
  }

  /** Start one heartbeat round covering every read that arrived since the last round. */
  flushReadRound(): void {
    const ctx = this.readOnly.takeRound();
    if (ctx !== null && this.role === "leader") this.bcastHeartbeat(ctx);
  }

  hasReadRoundPending(): boolean {
    return this.readOnly.hasUnsentRound();
  }

  // ---------------------------------------------------------------------------------------------------------

  private send<M extends Message>(m: M): void {
    this.msgs.push(m);
  }
}
