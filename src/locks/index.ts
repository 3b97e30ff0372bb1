// Locks, semaphores and leader elections on top of the replicated state machine (pure and deterministic).
//
// The server builds its state machine with createCoordinationStateMachine() (or, from snapshot bytes, with
// restoreCoordinationStateMachine()) and reads lock and election state between applies through the returned
// Coordination object. Decisions:
//
// Locks
//  - Identity: a holder or waiter is (name, lease). One lease holds or waits at most once per name; a repeated
//    lockAcquire answers the existing state ({ granted: true, token } or { granted: false, queued }) so a
//    client may retry freely. Acquire with a lease that is not alive answers LEASE_NOT_FOUND.
//  - Results: { granted: true, token } | { granted: false, queued: position (1 = next) } and, for wait: false
//    on a full lock, { granted: false, held: true, holder, token } naming the oldest current holder.
//  - Fencing token = the log index of the entry that granted the hold: unique and strictly increasing per
//    name, across holder crashes and even after the lock is forgotten (a later grant is a later index).
//  - Semaphores (limit > 1): each holder gets its own token, the granting index. "Current" for a fenced write
//    means any current holder's token. One entry that ends several leases can free several slots at once;
//    the waiters granted by that entry share its index as token (tokens never decrease; for plain locks they
//    strictly increase). Such a token stays shared while any holder has it, so lockRelease and a fence with
//    it must name the `lease` too (INVALID_ARGUMENT without): a sharer whose hold ended must not write or
//    release with the token the other sharer still holds.
//  - A lock's limit is fixed by the acquire that creates it and holds while it has holders or waiters;
//    another limit answers LOCK_LIMIT_MISMATCH. An empty lock is forgotten (nothing to remember: tokens are
//    indexes).
//  - Release by a token that is not current answers LOCK_NOT_HELD and changes nothing. Revoking or expiring
//    a lease releases its holds (event lockReleased reason "leaseEnded", which the server pushes to the
//    holder as "lock lost") and removes it from every queue; the freed slots go to the next waiters in the
//    same entry, after every lease that entry ends has ended (the state machine's onApplyEnd hook), so a grant only ever
//    reaches a lease alive at that index.
//  - Fenced writes: put/delete/txn with fence { lock, token, lease? } pass only with a current token, held by
//    `lease` when it is given (FENCED else).
//
// Elections
//  - Candidates queue FIFO per name, one candidacy per (name, lease) (repeat = current standing). The head
//    leads; its leadership token is the index at which it became leader, strictly increasing per election.
//  - proclaim(name, token, value) / resign(name, token) need the current token, else NOT_ELECTION_LEADER
//    and nothing changes. A resign or the leader's lease end hands leadership to the next candidate in the
//    same entry. A proclaim is a leadership change too (same token, new value), so observers see values.
//  - observe: each election keeps its last `electionHistory` changes, each with the (strictly increasing)
//    log index of the change; history(name, fromIndex) replays them or answers COMPACTED with the index to
//    resume after. Elections without candidates stay (with history) until maxIdleElections are idle; then
//    the longest-idle one is forgotten, and resumes into the forgotten range answer COMPACTED (conservative:
//    a name never used before may answer COMPACTED for an old fromIndex).
//
// Events (StateMachineEvent { type: "extension", section: "locks" | "elections", event }): lockGranted,
// lockReleased, leadershipGained, leadershipLost, leaderChanged (see commands.ts).
//
// Snapshot sections "locks" and "elections": names sorted, queues in FIFO order, fixed field order.

import { StateMachine, type StateMachineOptions } from "../statemachine/state-machine.js";
import type { CommandError } from "../statemachine/errors.js";
import type { Leader, LeadershipChange, LockStatus } from "./commands.js";
import { ElectionHandler } from "./elections.js";
import { resolveCoordinationLimits, type CoordinationLimits } from "./limits.js";
import { LockHandler } from "./locks.js";
import { AuthHandler } from "../statemachine/auth.js";

export * from "./commands.js";
export { DEFAULT_COORDINATION_LIMITS, type CoordinationLimits } from "./limits.js";
export type { LockErrorCode } from "./errors.js";

export interface CoordinationOptions extends Omit<StateMachineOptions, "fenceChecker" | "authorizer"> {
  coordinationLimits?: Partial<CoordinationLimits>;
}

/** A state machine with locks, elections and runtime auth installed, plus their reads between applies. */
export interface Coordination {
  readonly stateMachine: StateMachine;
  /** Users, roles and whether auth is enabled (src/statemachine/auth.ts): read between applies, never changed. */
  readonly auth: Omit<AuthHandler, "apply" | "restore">;
  lockStatus(name: string): LockStatus;
  /** Names of the locks with a holder or a waiter, sorted. */
  lockNames(): string[];
  /** Holds and queued waiters over every lock. */
  lockTotals(): { holders: number; waiters: number };
  electionLeader(name: string): Leader | null;
  /** Names of the elections remembered (with candidates, or idle with history), sorted. */
  electionNames(): string[];
  electionCandidates(name: string): number[];
  /** Candidates over every election, leaders included. */
  electionTotals(): { candidates: number };
  /** Leadership changes of `name` with index >= fromIndex, or COMPACTED / INVALID_ARGUMENT. */
  electionHistory(name: string, fromIndex: number): LeadershipChange[] | CommandError;
}

function build(options: CoordinationOptions, make: (smOptions: StateMachineOptions) => StateMachine): Coordination {
  const limits = resolveCoordinationLimits(options.coordinationLimits);
  if ("code" in limits) throw new TypeError(limits.message);
  const locks = new LockHandler(limits);
  const elections = new ElectionHandler(limits);
  const auth = new AuthHandler();
  const stateMachine = make({
    limits: options.limits,
    handlers: [...(options.handlers ?? []), locks, elections, auth],
    fenceChecker: locks.fenceChecker,
    authorizer: auth.authorize,
  });
  return coordinationOf(stateMachine, locks, elections, auth);
}

/** The reads of a state machine built with these lock, election and auth handlers (installed by the caller). */
export function coordinationOf(stateMachine: StateMachine, locks: LockHandler, elections: ElectionHandler, auth: AuthHandler): Coordination {
  return {
    stateMachine,
    auth,
    lockStatus: (name) => locks.status(name),
    lockNames: () => locks.names(),
    lockTotals: () => locks.totals(),
    electionLeader: (name) => elections.leader(name),
    electionNames: () => elections.names(),
    electionCandidates: (name) => elections.candidates(name),
    electionTotals: () => elections.totals(),
    electionHistory: (name, fromIndex) => elections.history(name, fromIndex),
  };
}

export function createCoordinationStateMachine(options: CoordinationOptions = {}): Coordination {
  return build(options, (smOptions) => new StateMachine(smOptions));
}

/** Rebuilds from StateMachine.snapshot() bytes; options must match the snapshotting node's. */
export function restoreCoordinationStateMachine(bytes: Uint8Array, options: CoordinationOptions = {}): Coordination {
  return build(options, (smOptions) => StateMachine.restore(bytes, smOptions));
}
