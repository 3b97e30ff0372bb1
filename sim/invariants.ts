// Raft's safety properties, checked incrementally after every simulation step (each check is O(1) or
// O(entries just written)). A violation throws InvariantViolation, which stops the seed.
//
// - election safety: at most one leader per term;
// - log matching: two logs holding an entry with the same (index, term) hold the same data there, and (checked
//   link by link: the term at index-1 of every copy of (index, term) is the same) the same prefix before it;
// - every leader holds granted votes from a majority of each half of its configuration (the inductive form of
//   election safety: counted from the grants the network carried, with the checker's own quorum arithmetic);
// - leader completeness: a new leader's log holds the latest entry committed in an earlier term; and,
//   checked as a state invariant the moment an entry is first applied anywhere (not waited for): no running
//   member that lacks the entry could win an election — judged from every running member's log and
//   configuration with the vote rule, so an entry committed unsafely (by counting replicas of an older term, or
//   with one half of a joint configuration) is caught even if the member that could overwrite it never runs;
// - committed entries never change: every node's commit point and every applied entry agree with one global
//   record of what is committed at each index;
// - state-machine safety: each node applies indexes in order with exactly the committed entries, so every
//   node's applied sequence is a prefix of the others';
// - a node's commit index never goes below what its disk durably recorded, across restarts.

import type { Entry, NodeId } from "../src/raft/types.js";
import { dataKey } from "./entry-data.js";

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = "InvariantViolation";
  }
}

/** What identifies an entry's content: its term, type and data. */
export function entryKey(e: Entry): string {
  return `${e.term}/${e.type}/${dataKey(e.data)}`;
}

/** A log as the checker compares logs in elections. */
export interface LogView {
  lastIndex: number;
  lastTerm: number;
  /** Term of its entry at i: -1 when compacted (covered by a snapshot, which holds only committed state), undefined past its end. */
  termAt(i: number): number | undefined;
}

/** What the checker reads of a member to judge whether it could win an election, or help another win one. */
export interface Elector {
  id: NodeId;
  /** Its core's configuration (outgoing is empty outside joint consensus); null while the member is down. */
  config: { incoming: ReadonlySet<NodeId>; outgoing: ReadonlySet<NodeId> } | null;
  /**
   * Whether `config` is the one it would campaign with — running (no membership change in its log between its
   * applied and its commit index: a member applies those before it may campaign) and after a restart (none between
   * its applied index and the commit its disk holds). When not, it is not judged as a candidate in that state.
   */
  campaignsWith: { running: boolean; onDisk: boolean };
  /** Its core's log (written or not); null while the member is down. */
  memory: LogView | null;
  /** Its log as its disk holds it: what it would campaign and vote with after a crash. */
  durable: LogView;
}

/** A majority of each non-empty half of (incoming, outgoing) is in `ids`. */
function quorumOf(incoming: ReadonlySet<NodeId>, outgoing: ReadonlySet<NodeId>, ids: ReadonlySet<NodeId>): boolean {
  const majority = (voters: ReadonlySet<NodeId>): boolean => {
    if (voters.size === 0) return true;
    let n = 0;
    for (const v of voters) if (ids.has(v)) n++;
    return n > voters.size / 2;
  };
  return majority(incoming) && majority(outgoing);
}

/** Raft's vote rule: a voter grants a candidate whose log is at least as up to date as its own. */
function upToDate(candidate: LogView, voter: LogView): boolean {
  return candidate.lastTerm > voter.lastTerm || (candidate.lastTerm === voter.lastTerm && candidate.lastIndex >= voter.lastIndex);
}

interface LoggedEntry {
  key: string;
  /** Term at index-1 in the log that first held this entry, or -1 if unknown (compacted there). */
  prevTerm: number;
  firstHolder: NodeId;
}

export class InvariantChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Every (index, term) ever persisted by any node: "index/term" -> content. */
  private readonly logged = new Map<string, LoggedEntry>();
  /** The committed entry at each index: its key, as first seen committed or applied. */
  private readonly committed = new Map<number, { key: string | null; term: number; by: NodeId }>();
  /** The highest index known committed, with its term. */
  maxCommitted = { index: 0, term: 0 };
  /** Per node: the last index applied to its state machine (reset on restart and snapshot restore). */
  private readonly lastApplied = new Map<NodeId, number>();
  /** Per leader term: the highest index a leader of that term applied. */
  private readonly committedByLeaderOf = new Map<number, number>();
  /** Granted votes the network carried: "term/candidate" -> voters. */
  private readonly grants = new Map<string, Set<NodeId>>();
  checks = 0;

  /** The running members, for the leader-completeness state check (the cluster sets it). */
  electorate: () => Iterable<Elector> = () => [];

  /** `voter` sent `candidate` a granted vote for `term` (pre-votes do not count). */
  voteGranted(voter: NodeId, candidate: NodeId, term: number): void {
    const key = `${term}/${candidate}`;
    let set = this.grants.get(key);
    if (!set) this.grants.set(key, (set = new Set()));
    set.add(voter);
  }

  /** `id` became leader of `term` with this configuration: the grants sent to it must form a quorum of it. */
  leaderVotes(id: NodeId, term: number, incoming: ReadonlySet<NodeId>, outgoing: ReadonlySet<NodeId>): void {
    this.checks++;
    const votes = new Set(this.grants.get(`${term}/${id}`) ?? []);
    votes.add(id);
    if (!quorumOf(incoming, outgoing, votes)) {
      const half = (s: ReadonlySet<NodeId>) => `{${[...s].join(",")}}`;
      throw new InvariantViolation(
        "election safety",
        `${id} became leader of term ${term} with votes from {${[...votes].join(",")}}, not a majority of ` +
          (outgoing.size > 0 ? `both ${half(incoming)} and ${half(outgoing)}` : half(incoming)),
      );
    }
  }

  /** A node is leader in `term`. */
  leader(id: NodeId, term: number): void {
    this.checks++;
    const prior = this.leaderOfTerm.get(term);
    if (prior === undefined) this.leaderOfTerm.set(term, id);
    else if (prior !== id)
      throw new InvariantViolation("election safety", `two leaders in term ${term}: ${prior} and ${id}`);
  }

  /**
   * A node made `entries` durable; `termAt(i)` is the term at index i in its log after the write, or -1 when
   * index i is compacted.
   */
  persisted(id: NodeId, entries: readonly Entry[], termAt: (i: number) => number): void {
    for (const e of entries) {
      this.checks++;
      const key = entryKey(e);
      const prevTerm = termAt(e.index - 1);
      const at = `${e.index}/${e.term}`;
      const seen = this.logged.get(at);
      if (seen === undefined) {
        this.logged.set(at, { key, prevTerm, firstHolder: id });
        continue;
      }
      if (seen.key !== key) {
        throw new InvariantViolation(
          "log matching",
          `${id} holds ${describe(key)} at (index ${e.index}, term ${e.term}) but ${seen.firstHolder} held ${describe(seen.key)}`,
        );
      }
      if (seen.prevTerm >= 0 && prevTerm >= 0 && seen.prevTerm !== prevTerm) {
        throw new InvariantViolation(
          "log matching",
          `${id} and ${seen.firstHolder} both hold (index ${e.index}, term ${e.term}) but differ at index ${e.index - 1}: ` +
            `term ${prevTerm} vs ${seen.prevTerm}`,
        );
      }
      if (seen.prevTerm < 0 && prevTerm >= 0) seen.prevTerm = prevTerm;
    }
  }

  /** A node's commit index reached `index`, where its log holds an entry of term `term`. */
  commit(id: NodeId, index: number, term: number): void {
    this.checks++;
    if (index <= 0) return;
    const known = this.committed.get(index);
    if (known === undefined) this.committed.set(index, { key: null, term, by: id });
    else if (known.term !== term) {
      throw new InvariantViolation(
        "committed entry changed",
        `${id} committed index ${index} with term ${term}, but ${known.by} committed term ${known.term} there`,
      );
    }
    if (index > this.maxCommitted.index) this.maxCommitted = { index, term };
  }

  /** A node applied the committed entry `e` to its state machine. */
  applied(id: NodeId, e: Entry, leaderTerm?: number): void {
    this.checks++;
    // A leader of term U applies only what was committed in a term <= U: U bounds the entry's commit term.
    if (leaderTerm !== undefined && e.index > (this.committedByLeaderOf.get(leaderTerm) ?? 0)) this.committedByLeaderOf.set(leaderTerm, e.index);
    const last = this.lastApplied.get(id) ?? 0;
    if (e.index !== last + 1) {
      throw new InvariantViolation("state-machine safety", `${id} applied index ${e.index} right after ${last}`);
    }
    this.lastApplied.set(id, e.index);
    const key = entryKey(e);
    const known = this.committed.get(e.index);
    if (known === undefined || (known.key === null && known.term === e.term)) {
      this.committed.set(e.index, { key, term: e.term, by: id });
      if (e.index > this.maxCommitted.index) this.maxCommitted = { index: e.index, term: e.term };
      if (known === undefined) this.committedSurvives(e.index, e.term, id);
    } else if (known.key === null) {
      throw new InvariantViolation(
        "state-machine safety",
        `${id} applied ${describe(key)} at index ${e.index}, but ${known.by} committed term ${known.term} there`,
      );
    } else if (known.key !== key) {
      throw new InvariantViolation(
        "state-machine safety",
        `${id} applied ${describe(key)} at index ${e.index}, but ${known.by} applied ${describe(known.key)}`,
      );
    }
  }

  /**
   * Entry (index, term) was just applied for the first time (by `by`): no member lacking it — in its log as it
   * runs, or as its disk holds it (after a crash) — may be able to collect, under its configuration, votes from
   * members whose logs as their disks hold them are no more up to date (a voter may crash and come back with just
   * that; a correct leader counted only durable copies, so a majority of every later electorate refuses). Members
   * that are down vote with their disk's log and are not judged as candidates: that can only hide a danger.
   */
  private committedSurvives(index: number, term: number, by: NodeId): void {
    const all = [...this.electorate()];
    for (const m of all) {
      if (m.config === null || (!m.config.incoming.has(m.id) && !m.config.outgoing.has(m.id))) continue;
      for (const [state, log, settled] of [["running", m.memory, m.campaignsWith.running], ["on disk", m.durable, m.campaignsWith.onDisk]] as const) {
        if (log === null || !settled) continue;
        const t = log.termAt(index);
        if (t === term || t === -1) continue;
        this.checks++;
        const votes = new Set<NodeId>([m.id]);
        for (const v of all) if (v !== m && upToDate(log, v.durable)) votes.add(v.id);
        if (quorumOf(m.config.incoming, m.config.outgoing, votes)) {
          throw new InvariantViolation(
            "leader completeness",
            `${by} applied index ${index} (term ${term}), but ${m.id}'s log ${state} has ${t === undefined ? "no entry" : `term ${t}`} ` +
              `there and could be elected (it ends at ${log.lastIndex}/term ${log.lastTerm}) by {${[...votes].join(",")}}`,
          );
        }
      }
    }
  }

  /** A node's state machine now starts after `index` (a restart from a snapshot, or a snapshot install). */
  restartedAt(id: NodeId, index: number): void {
    this.lastApplied.set(id, index);
  }

  /**
   * A new leader's log (`termAt(i)`: its term at i, -1 when compacted, undefined past its last index) holds every
   * entry committed in an earlier term — judged by the highest index a leader of an earlier term applied (a
   * leader may learn of its election late, paused between its win and its next Ready: entries committed since
   * by later terms are not owed).
   */
  newLeaderLog(id: NodeId, term: number, termAt: (i: number) => number | undefined): void {
    this.checks++;
    let index = 0;
    for (const [t, i] of this.committedByLeaderOf) if (t < term && i > index) index = i;
    if (index === 0) return;
    const committedTerm = this.committed.get(index)!.term;
    const t = termAt(index);
    if (t === -1) return; // compacted into the leader's snapshot, which holds only committed state
    if (t !== committedTerm) {
      throw new InvariantViolation(
        "leader completeness",
        `${id} became leader of term ${term} but its log has ${t === undefined ? "no entry" : `term ${t}`} at committed ` +
          `index ${index} (committed term ${committedTerm})`,
      );
    }
  }

  /** After a restart: the node's commit index must cover what its disk recorded. */
  restartCommit(id: NodeId, commit: number, durableCommit: number): void {
    this.checks++;
    if (commit < durableCommit) {
      throw new InvariantViolation(
        "commit never decreases",
        `${id} restarted with commit ${commit} below its durable commit ${durableCommit}`,
      );
    }
  }

  committedCount(): number {
    return this.maxCommitted.index;
  }
}

function describe(key: string): string {
  const [term, type, ...rest] = key.split("/");
  const data = rest.join("/");
  const kind =
    type === "1"
      ? "conf change"
      : data === ""
        ? "no-op"
        : JSON.stringify(data.length > 40 ? data.slice(0, 40) + "…" : data);
  return `${kind} of term ${term}`;
}
