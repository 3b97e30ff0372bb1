// Safety invariants of locks and elections, checked after every applied index from the events alone (a model
// rebuilt from lockGranted / lockReleased / leadership events) and against the handler's reads. Reusable by the
// cluster simulator: feed it each applied (index, output) of one replica, and each fenced write attempt.
//
//  - at most `limit` holders per lock at any index, and the model equals lockStatus();
//  - a grant's token is the granting index; per lock tokens never decrease, and strictly increase for limit 1;
//  - a grant reaches only a lease that is alive (not ended at or before that index);
//  - the store accepts a fenced write only from a current holder with its own token, and refuses (FENCED) any
//    token no current holder has, and, for a fence naming its lease, any lease not holding with that token; a
//    token granted to several holds by one entry (a semaphore's) is accepted only with the lease named;
//  - a fenced external resource (`token >= highest seen`, told of every new grant) never accepts a write from a
//    deposed holder once a newer hold exists;
//  - at most one leader per election at any index; leadership tokens strictly increase; the model equals
//    electionLeader();
//  - observe never skips or reorders: the leaderChanged events of an election are exactly its history.

import type { ApplyOutput, Outcome } from "../src/statemachine/index.js";
import type { Coordination, CoordinationEvent, Leader, LeadershipChange } from "../src/locks/index.js";

export class CoordinationInvariantViolation extends Error {
  constructor(invariant: string, detail: string) {
    super(`${invariant}: ${detail}`);
    this.name = "CoordinationInvariantViolation";
  }
}

function check(cond: boolean, invariant: string, detail: () => string): void {
  if (!cond) throw new CoordinationInvariantViolation(invariant, detail());
}

interface LockModel {
  /** lease → token */
  holders: Map<number, number>;
  lastToken: number;
  /** The latest grant, for the external resource: who may still write once the lock is free. */
  lastGrant: { lease: number; token: number } | null;
  /** The external fenced resource's highest token seen. */
  resourceHighest: number;
  /** The limit lockStatus last reported (0: never seen existing). */
  limit: number;
  /** Tokens one entry granted to several holds, while a holder has them. */
  sharedTokens: Set<number>;
}

interface ElectionModel {
  leader: Leader | null;
  lastToken: number;
  /** leaderChanged events seen, in order. */
  changes: LeadershipChange[];
}

export class CoordinationInvariants {
  private readonly locks = new Map<string, LockModel>();
  private readonly elections = new Map<string, ElectionModel>();
  private readonly endedLeases = new Set<number>();
  private lastIndex = 0;
  /** Counters, so a test can show its workload exercised the rules. */
  readonly seen = {
    grants: 0,
    releases: 0,
    leaseEndReleases: 0,
    leaderChanges: 0,
    fencedAccepted: 0,
    fencedRefused: 0,
    sharedNeedsLease: 0,
    resourceRefused: 0,
  };

  constructor(private readonly reads: Pick<Coordination, "lockStatus" | "electionLeader" | "electionHistory">) {}

  /** Feed every applied index of one replica, in order. */
  afterApply(index: number, output: ApplyOutput): void {
    check(index > this.lastIndex, "apply order", () => `index ${index} after ${this.lastIndex}`);
    this.lastIndex = index;
    const touchedLocks = new Set<string>();
    const touchedElections = new Set<string>();
    for (const wrapped of output.events) {
      if (wrapped.type === "leaseEnded") {
        this.endedLeases.add(wrapped.id);
        continue;
      }
      if (wrapped.type !== "extension") continue;
      const e = wrapped.event as CoordinationEvent;
      switch (e.kind) {
        case "lockGranted": {
          const lock = this.lock(e.name);
          check(
            e.token === index,
            "token is the granting index",
            () => `lock ${e.name} token ${e.token} granted at ${index}`,
          );
          check(
            e.token >= lock.lastToken,
            "tokens never decrease",
            () => `lock ${e.name}: ${e.token} after ${lock.lastToken}`,
          );
          check(
            !this.endedLeases.has(e.lease),
            "grant only to a live lease",
            () => `lock ${e.name} granted to ended lease ${e.lease} at ${index}`,
          );
          check(
            !lock.holders.has(e.lease),
            "one hold per lease",
            () => `lock ${e.name}: lease ${e.lease} granted twice`,
          );
          if (lock.lastGrant?.token === e.token) lock.sharedTokens.add(e.token);
          lock.holders.set(e.lease, e.token);
          lock.lastToken = e.token;
          lock.lastGrant = { lease: e.lease, token: e.token };
          // The new holder's first act: tell the resource its token (the usual fencing protocol).
          lock.resourceHighest = Math.max(lock.resourceHighest, e.token);
          touchedLocks.add(e.name);
          this.seen.grants++;
          break;
        }
        case "lockReleased": {
          const lock = this.lock(e.name);
          check(
            lock.holders.get(e.lease) === e.token,
            "release of a real hold",
            () => `lock ${e.name}: lease ${e.lease} token ${e.token} was not held`,
          );
          lock.holders.delete(e.lease);
          if (![...lock.holders.values()].includes(e.token)) lock.sharedTokens.delete(e.token);
          touchedLocks.add(e.name);
          if (e.reason === "leaseEnded") this.seen.leaseEndReleases++;
          else this.seen.releases++;
          break;
        }
        case "leadershipGained": {
          const el = this.election(e.election);
          check(
            el.leader === null,
            "one leader per election",
            () => `${e.election}: lease ${e.lease} gained while ${el.leader?.lease} leads`,
          );
          check(
            e.token > el.lastToken,
            "leadership tokens strictly increase",
            () => `${e.election}: ${e.token} after ${el.lastToken}`,
          );
          check(
            e.token === index,
            "leadership token is the index",
            () => `${e.election}: token ${e.token} at ${index}`,
          );
          check(
            !this.endedLeases.has(e.lease),
            "leadership only to a live lease",
            () => `${e.election}: ended lease ${e.lease}`,
          );
          el.leader = { lease: e.lease, value: new Uint8Array(), token: e.token };
          el.lastToken = e.token;
          touchedElections.add(e.election);
          break;
        }
        case "leadershipLost": {
          const el = this.election(e.election);
          check(
            el.leader?.lease === e.lease && el.leader.token === e.token,
            "lost leadership was held",
            () => `${e.election}: lease ${e.lease} token ${e.token}`,
          );
          el.leader = null;
          touchedElections.add(e.election);
          break;
        }
        case "leaderChanged": {
          const el = this.election(e.election);
          const last = el.changes.at(-1);
          check(
            last === undefined || e.index > last.index,
            "observe order",
            () => `${e.election}: change ${e.index} after ${last?.index}`,
          );
          check(e.index === index, "change at its index", () => `${e.election}: change ${e.index} at ${index}`);
          check(
            (e.leader === null) === (el.leader === null) &&
              (e.leader === null || (e.leader.lease === el.leader!.lease && e.leader.token === el.leader!.token)),
            "leaderChanged agrees with gained/lost",
            () => `${e.election}: ${JSON.stringify(e.leader)} vs ${JSON.stringify(el.leader)}`,
          );
          if (e.leader !== null) el.leader = e.leader;
          el.changes.push({ index: e.index, leader: e.leader, cause: e.cause });
          touchedElections.add(e.election);
          this.seen.leaderChanges++;
          break;
        }
      }
    }
    for (const name of touchedLocks) this.checkLock(name);
    for (const name of touchedElections) this.checkElection(name, index);
  }

  private checkLock(name: string): void {
    const lock = this.lock(name);
    const status = this.reads.lockStatus(name);
    if (status.limit > 0) lock.limit = status.limit;
    check(
      lock.holders.size <= Math.max(status.limit, 1),
      "at most limit holders",
      () => `lock ${name}: ${lock.holders.size} holders, limit ${status.limit}`,
    );
    const model = [...lock.holders].map(([lease, token]) => `${lease}:${token}`).sort();
    const real = status.holders.map((h) => `${h.lease}:${h.token}`).sort();
    check(
      model.join() === real.join(),
      "events agree with lockStatus",
      () => `lock ${name}: events say ${model}, status says ${real}`,
    );
    if (status.limit === 1) {
      const tokens = status.holders.map((h) => h.token);
      check(tokens.length <= 1, "plain lock has one holder", () => `lock ${name}: ${tokens}`);
    }
  }

  private checkElection(name: string, index: number): void {
    const el = this.election(name);
    const real = this.reads.electionLeader(name);
    check(
      (real === null && el.leader === null) ||
        (real !== null && el.leader !== null && real.lease === el.leader.lease && real.token === el.leader.token),
      "events agree with electionLeader",
      () => `${name}: events say ${JSON.stringify(el.leader)}, leader() says ${JSON.stringify(real)}`,
    );
    // observe(name, from) must replay exactly the changes the events announced (every one still held).
    const first = el.changes[0]?.index ?? index;
    const history = this.reads.electionHistory(name, first);
    if (Array.isArray(history)) {
      const expected = el.changes.filter((c) => c.index >= first);
      check(
        history.length === expected.length &&
          history.every((h, i) => h.index === expected[i].index && h.leader?.token === expected[i].leader?.token),
        "observe never skips a change",
        () => `${name}: history ${history.map((h) => h.index)} vs events ${expected.map((c) => c.index)}`,
      );
    } else {
      check(history.code === "COMPACTED", "history answers changes or COMPACTED", () => `${name}: ${history.code}`);
      // Only the tail is comparable once compacted: it must be the newest events, in order.
      const tail = this.reads.electionHistory(name, history.compactRevision! + 1);
      check(Array.isArray(tail), "resume after COMPACTED works", () => `${name}: ${JSON.stringify(tail)}`);
      const got = tail as LeadershipChange[];
      const expected = el.changes.slice(el.changes.length - got.length);
      check(
        got.every((h, i) => h.index === expected[i].index),
        "observe tail is the newest changes",
        () => `${name}: ${got.map((h) => h.index)} vs ${expected.map((c) => c.index)}`,
      );
    }
  }

  /**
   * A fenced write by `lease` with `token` on `lock` (`named`: the fence names the lease too), applied at the
   * current index with `outcome` from the store, and offered to the external resource model as well.
   */
  fencedWrite(lockName: string, lease: number, token: number, outcome: Outcome, named = false): void {
    const lock = this.lock(lockName);
    const current = lock.holders.get(lease) === token;
    const anyCurrent = [...lock.holders.values()].includes(token);
    const shared = lock.sharedTokens.has(token);
    if (outcome.ok) {
      this.seen.fencedAccepted++;
      check(
        current,
        "store accepts only a current holder",
        () => `lock ${lockName}: lease ${lease} token ${token} accepted; holders ${[...lock.holders]}`,
      );
      check(
        named || !shared,
        "store accepts a shared token only with its lease",
        () => `lock ${lockName}: shared token ${token} accepted without a lease`,
      );
    } else if (outcome.error.code === "FENCED") {
      this.seen.fencedRefused++;
      check(
        named ? !current : !anyCurrent,
        "store refuses only non-current tokens",
        () => `lock ${lockName}: current token ${token} refused${named ? ` for lease ${lease}` : ""}`,
      );
    } else if (outcome.error.code === "INVALID_ARGUMENT" && outcome.error.field === "fence.lease") {
      this.seen.sharedNeedsLease++;
      check(
        !named && shared && anyCurrent,
        "store asks for the lease only of a current shared token",
        () =>
          `lock ${lockName}: token ${token} (lease ${named ? "named" : "not named"}) refused: ${outcome.error.message}`,
      );
    }
    // External resource, for plain locks (a semaphore's concurrent holders cannot share a `>= highest` check):
    // accepts token >= highest seen.
    if (lock.limit !== 1) return;
    if (token >= lock.resourceHighest) {
      lock.resourceHighest = token;
      const lastHolder = lock.lastGrant?.lease === lease && lock.lastGrant.token === token;
      check(
        current || (lock.holders.size === 0 && lastHolder),
        "fenced resource refuses deposed holders",
        () => `lock ${lockName}: resource accepted lease ${lease} token ${token}; holders ${[...lock.holders]}`,
      );
    } else {
      this.seen.resourceRefused++;
    }
  }

  private lock(name: string): LockModel {
    let lock = this.locks.get(name);
    if (lock === undefined)
      this.locks.set(
        name,
        (lock = {
          holders: new Map(),
          lastToken: 0,
          lastGrant: null,
          resourceHighest: 0,
          limit: 0,
          sharedTokens: new Set(),
        }),
      );
    return lock;
  }

  private election(name: string): ElectionModel {
    let el = this.elections.get(name);
    if (el === undefined) this.elections.set(name, (el = { leader: null, lastToken: 0, changes: [] }));
    return el;
  }
}
