// Leader elections, as a state machine CommandHandler: per name a FIFO of candidates; the head is the leader.
//
// Invariants (asserted):
//  - every candidate's lease is alive (onLeaseEnded removes the lease from every election);
//  - the leader is the queue head, and leaderToken is the index at which it became leader; leadership tokens
//    of one election strictly increase (an entry changes an election's leader at most once: lease-end
//    hand-offs wait for endApply, after every lease of the entry has ended);
//  - the history of an election holds every change with index > compactedThrough, in strictly increasing
//    index order; observe(name, from) answers COMPACTED rather than return an incomplete stream;
//  - an election without candidates is "idle"; idle elections keep their history until more than
//    maxIdleElections are idle, then the longest-idle is forgotten and forgottenThrough (a bound on the index
//    of anything forgotten) rises, so a resume into a forgotten stretch answers COMPACTED too.

import { assert } from "../assert.js";
import { failed, ok, type ExtensionCommand, type Outcome } from "../statemachine/commands.js";
import { commandError, type CommandError } from "../statemachine/errors.js";
import type { LeaseEndReason } from "../statemachine/leases.js";
import type { ApplyContext, CommandHandler } from "../statemachine/state-machine.js";
import { ENTRY_OVERHEAD, NAMED_OVERHEAD } from "../statemachine/space.js";
import { utf8Length } from "../statemachine/limits.js";
import {
  electionValidators,
  type CampaignResult,
  type CoordinationEvent,
  type ElectionCampaignCommand,
  type ElectionLeaderCommand,
  type ElectionProclaimCommand,
  type ElectionResignCommand,
  type Leader,
  type LeadershipCause,
  type LeadershipChange,
} from "./commands.js";
import { checkSnapshot, leaseNotFound, lockError } from "./errors.js";
import type { CoordinationLimits } from "./limits.js";
import { SortedNames, compareNames } from "./sorted-names.js";

interface ElectionState {
  readonly name: string;
  /** lease → value, FIFO; the first entry is the leader. */
  readonly candidates: Map<number, Uint8Array>;
  /** Index at which the current leader became leader; 0 when there is no leader. */
  leaderToken: number;
  /** The largest leadership token ever given in this election (tokens strictly increase). */
  lastToken: number;
  /** Changes with index > compactedThrough, oldest first. */
  history: LeadershipChange[];
  compactedThrough: number;
}

/** Snapshot: [name, [lease, value][] FIFO, leaderToken, lastToken, compactedThrough, history]. */
type ElectionRecord = [
  string,
  [number, Uint8Array][],
  number,
  number,
  number,
  [number, number, Uint8Array | null, number, LeadershipCause][],
];
interface ElectionsSection {
  forgottenThrough: number;
  elections: ElectionRecord[];
  /** Idle election names, longest idle first. */
  idle: string[];
}

export class ElectionHandler implements CommandHandler {
  readonly section = "elections";
  readonly ops;
  /** Resignations and reads: a full store must still let leaders go. */
  readonly opsAllowedWhenFull: ReadonlySet<string> = new Set(["electionResign", "electionLeader"]);
  private readonly elections = new Map<string, ElectionState>();
  /** Space the elections take (space.ts): each election, its candidates' values and its recorded changes. */
  private bytes = 0;
  private readonly leaseNames = new Map<number, Set<string>>();
  /** Idle elections in the order they became idle. */
  private readonly idle = new Set<string>();
  private forgottenThrough = 0;
  // Per-apply scratch state (empty between applies): elections that lost candidates to a lease end, which of
  // them lost their leader, and the leadershipLost events.
  private readonly dirty = new SortedNames();
  private readonly leaderLost = new Set<string>();
  private deferred: CoordinationEvent[] = [];

  constructor(private readonly limits: CoordinationLimits) {
    this.ops = electionValidators(limits);
  }

  apply(command: ExtensionCommand, ctx: ApplyContext): Outcome {
    switch (command.op) {
      case "electionCampaign":
        return this.campaign(command as ElectionCampaignCommand, ctx);
      case "electionProclaim":
        return this.proclaim(command as ElectionProclaimCommand, ctx);
      case "electionResign":
        return this.resign(command as ElectionResignCommand, ctx);
      case "electionLeader":
        return ok({ leader: this.leader((command as ElectionLeaderCommand).name) });
      default:
        assert(false, () => `election handler got op ${command.op}`);
    }
  }

  private campaign(c: ElectionCampaignCommand, ctx: ApplyContext): Outcome<CampaignResult> {
    if (!ctx.leaseAlive(c.lease)) return failed(leaseNotFound(c.lease));
    let e = this.elections.get(c.name);
    if (e !== undefined && e.candidates.has(c.lease)) {
      // One candidacy per (name, lease): a repeated campaign answers the existing state (safe to retry).
      return ok(this.standing(e, c.lease));
    }
    if (e !== undefined && e.candidates.size >= this.limits.maxQueueLength) {
      return failed(
        lockError(
          "QUEUE_FULL",
          `election "${c.name}" has ${e.candidates.size} candidates, the limit is ${this.limits.maxQueueLength}`,
        ),
      );
    }
    if (e === undefined) {
      // A forgotten earlier election of this name may have had changes up to forgottenThrough.
      e = {
        name: c.name,
        candidates: new Map(),
        leaderToken: 0,
        lastToken: 0,
        history: [],
        compactedThrough: this.forgottenThrough,
      };
      this.elections.set(c.name, e);
      this.bytes += NAMED_OVERHEAD + utf8Length(c.name);
    }
    this.idle.delete(c.name);
    e.candidates.set(c.lease, c.value);
    this.bytes += candidateBytes(c.value);
    this.index(c.lease, c.name);
    if (e.candidates.size === 1) {
      this.elect(e, ctx.index, (ev) => ctx.emit(ev));
      return ok({ leader: true, token: ctx.index });
    }
    return ok({ leader: false, position: e.candidates.size - 1 }); // O(1): a new candidate is last
  }

  private standing(e: ElectionState, lease: number): CampaignResult {
    let ahead = 0;
    for (const candidate of e.candidates.keys()) {
      if (candidate === lease) break;
      ahead++;
    }
    return ahead === 0 ? { leader: true, token: e.leaderToken } : { leader: false, position: ahead };
  }

  private proclaim(c: ElectionProclaimCommand, ctx: ApplyContext): Outcome<{ token: number }> {
    const e = this.elections.get(c.name);
    const bad = this.checkToken(e, c.name, c.token, "proclaim");
    if (bad) return failed(bad);
    const lease = headOf(e!);
    this.bytes += candidateBytes(c.value) - candidateBytes(e!.candidates.get(lease)!);
    e!.candidates.set(lease, c.value); // same key: keeps its place at the head
    this.record(e!, ctx.index, "proclaimed", (ev) => ctx.emit(ev));
    return ok({ token: c.token });
  }

  private resign(c: ElectionResignCommand, ctx: ApplyContext): Outcome<{ leader: Leader | null }> {
    const e = this.elections.get(c.name);
    const bad = this.checkToken(e, c.name, c.token, "resign");
    if (bad) return failed(bad);
    const lease = headOf(e!);
    this.bytes -= candidateBytes(e!.candidates.get(lease)!);
    e!.candidates.delete(lease);
    this.unindex(lease, c.name);
    ctx.emit({
      kind: "leadershipLost",
      election: c.name,
      lease,
      token: c.token,
      reason: "resigned",
    } satisfies CoordinationEvent);
    this.handOff(e!, ctx.index, "resigned", (ev) => ctx.emit(ev));
    return ok({ leader: this.leader(c.name) });
  }

  private checkToken(e: ElectionState | undefined, name: string, token: number, what: string): CommandError | null {
    if (e !== undefined && e.leaderToken !== 0 && e.leaderToken === token) return null;
    const current =
      e === undefined || e.leaderToken === 0 ? "the election has no leader" : `the current token is ${e.leaderToken}`;
    return lockError(
      "NOT_ELECTION_LEADER",
      `${what} on election "${name}" refused: token ${token} is not the leader's (${current}); nothing changed`,
    );
  }

  onLeaseEnded(leaseId: number, _reason: LeaseEndReason, _ctx: ApplyContext): void {
    const names = this.leaseNames.get(leaseId);
    if (names === undefined) return;
    this.leaseNames.delete(leaseId);
    for (const name of [...names].sort(compareNames)) {
      const e = this.elections.get(name);
      assert(
        e !== undefined && e.candidates.has(leaseId),
        () => `lease ${leaseId} indexed on election "${name}" it is not in`,
      );
      if (headOf(e) === leaseId && !this.leaderLost.has(name)) {
        this.deferred.push({
          kind: "leadershipLost",
          election: name,
          lease: leaseId,
          token: e.leaderToken,
          reason: "leaseEnded",
        });
        this.leaderLost.add(name);
      }
      this.bytes -= candidateBytes(e.candidates.get(leaseId)!);
      e.candidates.delete(leaseId);
      this.dirty.add(name);
    }
  }

  /** The state machine's end-of-apply hook: deferred grants and hand-offs, after every lease of the entry ended. */
  onApplyEnd(ctx: ApplyContext): void {
    // Most entries touch no election: then there is nothing to do, and nothing is allocated.
    if (this.deferred.length === 0 && this.dirty.size === 0) return;
    for (const ev of this.endApply(ctx.index, ctx.leaseAlive)) ctx.emit(ev);
  }

  endApply(index: number, leaseAlive: (id: number) => boolean): CoordinationEvent[] {
    const events = this.deferred;
    this.deferred = [];
    const emit = (ev: CoordinationEvent) => events.push(ev);
    for (const name of this.dirty.drain()) {
      const e = this.elections.get(name);
      assert(e !== undefined, () => `dirty election "${name}" is missing`);
      for (const lease of e.candidates.keys())
        assert(leaseAlive(lease), () => `election "${name}" keeps dead lease ${lease}`);
      if (this.leaderLost.delete(name)) this.handOff(e, index, "leaseEnded", emit);
    }
    assert(this.leaderLost.size === 0, "leaderLost names outside the dirty set");
    return events;
  }

  /** The leader left: the next candidate leads, or the election goes idle. */
  private handOff(
    e: ElectionState,
    index: number,
    cause: LeadershipCause,
    emit: (ev: CoordinationEvent) => void,
  ): void {
    if (e.candidates.size > 0) {
      this.elect(e, index, emit);
      return;
    }
    e.leaderToken = 0;
    this.record(e, index, cause, emit);
    this.idle.add(e.name);
    while (this.idle.size > this.limits.maxIdleElections) this.forget(this.idle.values().next().value!);
  }

  private elect(e: ElectionState, index: number, emit: (ev: CoordinationEvent) => void): void {
    assert(index > e.lastToken, () => `election "${e.name}": leadership token ${index} after ${e.lastToken}`);
    e.leaderToken = index;
    e.lastToken = index;
    emit({ kind: "leadershipGained", election: e.name, lease: headOf(e), token: index });
    this.record(e, index, "elected", emit);
  }

  private record(e: ElectionState, index: number, cause: LeadershipCause, emit: (ev: CoordinationEvent) => void): void {
    const last = e.history.length > 0 ? e.history[e.history.length - 1].index : e.compactedThrough;
    assert(index > last, () => `election "${e.name}": change at ${index} after ${last}`);
    const leader = this.leader(e.name);
    const change: LeadershipChange = { index, leader, cause };
    e.history.push(change);
    this.bytes += changeBytes(change);
    if (e.history.length > this.limits.electionHistory) {
      // Amortized O(1): drop the oldest half-limit at once instead of shifting every time.
      const drop = e.history.length - Math.ceil(this.limits.electionHistory / 2);
      for (let i = 0; i < drop; i++) this.bytes -= changeBytes(e.history[i]);
      e.compactedThrough = e.history[drop - 1].index;
      e.history = e.history.slice(drop);
    }
    emit({ kind: "leaderChanged", election: e.name, leader, index, cause });
  }

  private forget(name: string): void {
    const e = this.elections.get(name);
    assert(e !== undefined && e.candidates.size === 0, () => `forgetting election "${name}" that is not idle`);
    const last = e.history.length > 0 ? e.history[e.history.length - 1].index : e.compactedThrough;
    this.forgottenThrough = Math.max(this.forgottenThrough, last);
    this.bytes -= electionBytes(e);
    this.elections.delete(name);
    this.idle.delete(name);
  }

  private index(lease: number, name: string): void {
    let names = this.leaseNames.get(lease);
    if (names === undefined) this.leaseNames.set(lease, (names = new Set()));
    names.add(name);
  }

  private unindex(lease: number, name: string): void {
    const names = this.leaseNames.get(lease);
    assert(names !== undefined && names.delete(name), () => `lease ${lease} was not indexed on election "${name}"`);
    if (names.size === 0) this.leaseNames.delete(lease);
  }

  // ----------------------------------------------------------------------------------------------------------
  // Reads

  leader(name: string): Leader | null {
    const e = this.elections.get(name);
    if (e === undefined || e.candidates.size === 0) return null;
    const [lease, value] = e.candidates.entries().next().value!;
    return { lease, value, token: e.leaderToken };
  }

  /** Candidates over every election, leaders included (for metrics; O(elections)). */
  totals(): { candidates: number } {
    let candidates = 0;
    for (const e of this.elections.values()) candidates += e.candidates.size;
    return { candidates };
  }

  /** Names of the elections remembered (with candidates, or idle with history), sorted (for the dashboard). */
  names(): string[] {
    return [...this.elections.keys()].sort(compareNames);
  }

  /** Candidate leases in FIFO order (the first is the leader). */
  candidates(name: string): number[] {
    return [...(this.elections.get(name)?.candidates.keys() ?? [])];
  }

  /**
   * Every leadership change of `name` with index >= fromIndex, oldest first; COMPACTED (with the index to
   * resume after, once the current leader is re-read) when some of them are no longer held.
   */
  history(name: string, fromIndex: number): LeadershipChange[] | CommandError {
    if (!Number.isSafeInteger(fromIndex) || fromIndex < 1) {
      return commandError("INVALID_ARGUMENT", `fromIndex: expected an integer >= 1, got ${String(fromIndex)}`, {
        field: "fromIndex",
      });
    }
    const e = this.elections.get(name);
    const compactedThrough = e === undefined ? this.forgottenThrough : e.compactedThrough;
    if (fromIndex <= compactedThrough) {
      return commandError(
        "COMPACTED",
        `election "${name}": changes at or below index ${compactedThrough} are no longer held; read the leader and resume from ${compactedThrough + 1}`,
        { compactRevision: compactedThrough },
      );
    }
    if (e === undefined) return [];
    let lo = 0;
    let hi = e.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (e.history[mid].index < fromIndex) lo = mid + 1;
      else hi = mid;
    }
    return e.history.slice(lo);
  }

  sizeBytes(): number {
    return this.bytes;
  }

  // ----------------------------------------------------------------------------------------------------------
  // Snapshot

  snapshot(): ElectionsSection {
    assert(this.deferred.length === 0 && this.dirty.size === 0, "election snapshot taken inside an apply");
    return {
      forgottenThrough: this.forgottenThrough,
      elections: [...this.elections.values()]
        .sort((a, b) => compareNames(a.name, b.name))
        .map((e): ElectionRecord => [
          e.name,
          [...e.candidates],
          e.leaderToken,
          e.lastToken,
          e.compactedThrough,
          e.history.map((h) => [h.index, h.leader?.lease ?? 0, h.leader?.value ?? null, h.leader?.token ?? 0, h.cause]),
        ]),
      idle: [...this.idle],
    };
  }

  restore(data: unknown): void {
    const section = data as ElectionsSection;
    checkSnapshot(
      typeof section === "object" &&
        section !== null &&
        Array.isArray(section.elections) &&
        Array.isArray(section.idle),
      "election snapshot section is not { forgottenThrough, elections, idle }",
    );
    this.forgottenThrough = section.forgottenThrough;
    for (const record of section.elections) {
      checkSnapshot(Array.isArray(record) && record.length === 6, "election snapshot record has the wrong shape");
      const [name, candidates, leaderToken, lastToken, compactedThrough, history] = record;
      checkSnapshot(!this.elections.has(name), () => `election snapshot: repeated name "${name}"`);
      checkSnapshot(
        candidates.length > 0 === leaderToken > 0,
        () => `election snapshot: "${name}" leader token ${leaderToken} with ${candidates.length} candidates`,
      );
      const e: ElectionState = {
        name,
        candidates: new Map(candidates),
        leaderToken,
        lastToken,
        compactedThrough,
        history: history.map(([index, lease, value, token, cause]) => ({
          index,
          leader: lease === 0 ? null : { lease, value: value!, token },
          cause,
        })),
      };
      this.elections.set(name, e);
      this.bytes += electionBytes(e);
      for (const [lease] of candidates) this.index(lease, name);
    }
    for (const name of section.idle) {
      checkSnapshot(
        this.elections.get(name)?.candidates.size === 0,
        () => `election snapshot: idle "${name}" has candidates`,
      );
      this.idle.add(name);
    }
  }
}

function headOf(e: ElectionState): number {
  assert(e.candidates.size > 0, () => `election "${e.name}" has no leader`);
  return e.candidates.keys().next().value!;
}

function candidateBytes(value: Uint8Array): number {
  return ENTRY_OVERHEAD + value.length;
}

function changeBytes(change: LeadershipChange): number {
  return ENTRY_OVERHEAD + (change.leader === null ? 0 : change.leader.value.length);
}

/** Everything one election holds (what forgetting it frees, what restoring it adds). */
function electionBytes(e: ElectionState): number {
  let n = NAMED_OVERHEAD + utf8Length(e.name);
  for (const value of e.candidates.values()) n += candidateBytes(value);
  for (const change of e.history) n += changeBytes(change);
  return n;
}
