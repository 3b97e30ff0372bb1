// Fencing-token locks and counting semaphores, as a state machine CommandHandler plus its FenceChecker.
//
// Invariants (asserted):
//  - every waiter's and holder's lease is alive: onLeaseEnded removes a lease from every lock it touches;
//  - a lock with waiters is full (holders.size === limit): a free slot is granted at once to the queue head;
//  - holders.size <= limit;
//  - tokens of one lock never decrease, and strictly increase for a plain lock (limit 1): a token is the index
//    of the granting entry, and an entry grants at most once per plain lock (grants wait for onApplyEnd);
//  - a lock with no holder and no waiter does not exist (its name, limit and queue are forgotten; the next
//    token is still larger, being a later index);
//  - leaseNames maps each lease to exactly the names where it holds or waits.
// Grants caused by a lease ending wait until endApply(), after every lease of the entry has ended, so a waiter
// whose lease ends in the same entry is never granted (and never takes a token that another holder gets too).

import { assert } from "../assert.js";
import { failed, ok, type ExtensionCommand, type Fence, type Outcome } from "../statemachine/commands.js";
import { commandError, invalidArgument, type CommandError } from "../statemachine/errors.js";
import type { LeaseEndReason } from "../statemachine/leases.js";
import type { ApplyContext, CommandHandler } from "../statemachine/state-machine.js";
import { ENTRY_OVERHEAD, NAMED_OVERHEAD } from "../statemachine/space.js";
import { utf8Length } from "../statemachine/limits.js";
import {
  lockValidators,
  type AcquireResult,
  type CoordinationEvent,
  type LockAcquireCommand,
  type LockHolder,
  type LockReleaseCommand,
  type LockStatus,
  type LockStatusCommand,
  type ReleaseResult,
} from "./commands.js";
import { checkSnapshot, leaseNotFound, lockError } from "./errors.js";
import type { CoordinationLimits } from "./limits.js";
import { SortedNames, compareNames } from "./sorted-names.js";

interface LockState {
  readonly name: string;
  readonly limit: number;
  /** lease → token, in grant order. */
  readonly holders: Map<number, number>;
  /** Leases in FIFO order. */
  readonly waiters: Set<number>;
  /** The largest token granted since the lock was created. */
  lastToken: number;
  /**
   * Tokens granted to more than one hold of this semaphore (one entry that freed several slots): such a token
   * names no single hold, so a fenced write or a release with it must give the lease too. A token stays here
   * while any holder has it, even once only one does: the other hold's late writes carry the same token.
   */
  readonly sharedTokens: Set<number>;
}

/**
 * Snapshot section: [name, limit, [lease, token][] in grant order, waiter leases in FIFO order, lastToken], and
 * the shared tokens as a sixth element only when there are any (so the common record reads as it always did).
 */
type LockRecord =
  | [string, number, [number, number][], number[], number]
  | [string, number, [number, number][], number[], number, number[]];

export class LockHandler implements CommandHandler {
  readonly section = "locks";
  readonly ops;
  /** Releases and reads: a full store must still let holders go. */
  readonly opsAllowedWhenFull: ReadonlySet<string> = new Set(["lockRelease", "lockStatus"]);
  private readonly locks = new Map<string, LockState>();
  private readonly leaseNames = new Map<number, Set<string>>();
  /** Space the locks take (space.ts): each lock, and each of its holders and waiters. */
  private bytes = 0;
  // Per-apply scratch state, empty between applies: locks that lost holders or waiters to a lease end, and
  // the events of those losses (emitted by endApply under this handler's section).
  private readonly dirty = new SortedNames();
  private deferred: CoordinationEvent[] = [];

  constructor(private readonly limits: CoordinationLimits) {
    this.ops = lockValidators(limits);
  }

  apply(command: ExtensionCommand, ctx: ApplyContext): Outcome {
    switch (command.op) {
      case "lockAcquire":
        return this.acquire(command as LockAcquireCommand, ctx);
      case "lockRelease":
        return this.release(command as LockReleaseCommand, ctx);
      case "lockStatus":
        return ok(this.status((command as LockStatusCommand).name));
      default:
        assert(false, () => `lock handler got op ${command.op}`);
    }
  }

  private acquire(c: LockAcquireCommand, ctx: ApplyContext): Outcome<AcquireResult> {
    if (!ctx.leaseAlive(c.lease)) return failed(leaseNotFound(c.lease));
    let lock = this.locks.get(c.name);
    if (lock !== undefined && lock.limit !== c.limit) {
      return failed(
        lockError(
          "LOCK_LIMIT_MISMATCH",
          `lock "${c.name}" has limit ${lock.limit} while it has holders or waiters; acquire it with limit ${lock.limit} (got ${c.limit})`,
        ),
      );
    }
    if (lock !== undefined) {
      // One hold or wait per (name, lease): a repeated acquire answers the existing state (safe to retry).
      const token = lock.holders.get(c.lease);
      if (token !== undefined) return ok({ granted: true, token });
      if (lock.waiters.has(c.lease)) return ok({ granted: false, queued: positionOf(lock.waiters, c.lease) });
    } else {
      lock = {
        name: c.name,
        limit: c.limit,
        holders: new Map(),
        waiters: new Set(),
        lastToken: 0,
        sharedTokens: new Set(),
      };
      this.locks.set(c.name, lock);
      this.bytes += lockBytes(c.name);
    }
    if (lock.holders.size < lock.limit) {
      assert(lock.waiters.size === 0, () => `lock "${lock.name}" has a free slot and waiters`);
      const token = this.grant(lock, c.lease, ctx.index, (e) => ctx.emit(e));
      return ok({ granted: true, token });
    }
    if (!c.wait) {
      const [holder, token] = lock.holders.entries().next().value!;
      return ok({ granted: false, held: true, holder, token });
    }
    if (lock.waiters.size >= this.limits.maxQueueLength) {
      return failed(
        lockError(
          "QUEUE_FULL",
          `lock "${c.name}" has ${lock.waiters.size} waiters, the limit is ${this.limits.maxQueueLength}`,
        ),
      );
    }
    lock.waiters.add(c.lease);
    this.bytes += ENTRY_OVERHEAD;
    this.index(c.lease, c.name);
    return ok({ granted: false, queued: lock.waiters.size });
  }

  private release(c: LockReleaseCommand, ctx: ApplyContext): Outcome<ReleaseResult> {
    const lock = this.locks.get(c.name);
    const current = lock === undefined ? [] : [...lock.holders].filter(([, token]) => token === c.token);
    const matching = c.lease === undefined ? current : current.filter(([lease]) => lease === c.lease);
    if (matching.length === 0) {
      const holders = lock === undefined ? "nobody holds it" : `current tokens: ${describeHolders(lock)}`;
      const who = c.lease === undefined ? "" : ` for lease ${c.lease}`;
      return failed(
        lockError(
          "LOCK_NOT_HELD",
          `lock "${c.name}": token ${c.token}${who} is not held (${holders}); nothing changed`,
        ),
      );
    }
    if (c.lease === undefined && lock!.sharedTokens.has(c.token))
      return failed(sharedTokenNeedsLease(lock!, c.token, "lease"));
    const [lease, token] = matching[0];
    dropHolder(lock!, lease);
    this.bytes -= ENTRY_OVERHEAD;
    this.unindex(lease, c.name);
    ctx.emit({ kind: "lockReleased", name: c.name, lease, token, reason: "released" } satisfies CoordinationEvent);
    const granted: LockHolder[] = [];
    this.fill(lock!, ctx.index, ctx.leaseAlive, (e) => {
      ctx.emit(e);
      if (e.kind === "lockGranted") granted.push({ lease: e.lease, token: e.token });
    });
    return ok({ granted });
  }

  onLeaseEnded(leaseId: number, _reason: LeaseEndReason, _ctx: ApplyContext): void {
    const names = this.leaseNames.get(leaseId);
    if (names === undefined) return;
    this.leaseNames.delete(leaseId);
    for (const name of [...names].sort(compareNames)) {
      const lock = this.locks.get(name);
      assert(lock !== undefined, () => `lease ${leaseId} indexed on missing lock "${name}"`);
      const token = lock.holders.get(leaseId);
      this.bytes -= ENTRY_OVERHEAD;
      if (token !== undefined) {
        dropHolder(lock, leaseId);
        this.deferred.push({ kind: "lockReleased", name, lease: leaseId, token, reason: "leaseEnded" });
      } else {
        assert(
          lock.waiters.delete(leaseId),
          () => `lease ${leaseId} indexed on lock "${name}" it neither holds nor waits for`,
        );
      }
      this.dirty.add(name);
    }
  }

  /** The state machine's end-of-apply hook: deferred grants and hand-offs, after every lease of the entry ended. */
  onApplyEnd(ctx: ApplyContext): void {
    // Most entries touch no lock: then there is nothing to do, and nothing is allocated.
    if (this.deferred.length === 0 && this.dirty.size === 0) return;
    for (const ev of this.endApply(ctx.index, ctx.leaseAlive)) ctx.emit(ev);
  }

  endApply(index: number, leaseAlive: (id: number) => boolean): CoordinationEvent[] {
    const events = this.deferred;
    this.deferred = [];
    for (const name of this.dirty.drain()) {
      const lock = this.locks.get(name);
      assert(lock !== undefined, () => `dirty lock "${name}" is missing`);
      this.fill(lock, index, leaseAlive, (e) => events.push(e));
    }
    return events;
  }

  /** Grants free slots to the queue head(s), then forgets the lock if it is empty. */
  private fill(
    lock: LockState,
    index: number,
    leaseAlive: (id: number) => boolean,
    emit: (e: CoordinationEvent) => void,
  ): void {
    while (lock.holders.size < lock.limit && lock.waiters.size > 0) {
      const lease: number = lock.waiters.values().next().value!;
      lock.waiters.delete(lease);
      this.bytes -= ENTRY_OVERHEAD;
      this.grant(lock, lease, index, emit, leaseAlive);
    }
    if (lock.holders.size === 0 && lock.waiters.size === 0) {
      this.locks.delete(lock.name);
      this.bytes -= lockBytes(lock.name);
    }
  }

  private grant(
    lock: LockState,
    lease: number,
    index: number,
    emit: (e: CoordinationEvent) => void,
    leaseAlive?: (id: number) => boolean,
  ): number {
    assert(leaseAlive === undefined || leaseAlive(lease), () => `granting lock "${lock.name}" to dead lease ${lease}`);
    assert(
      lock.limit === 1 ? index > lock.lastToken : index >= lock.lastToken,
      () => `lock "${lock.name}": token ${index} after ${lock.lastToken}`,
    );
    assert(lock.holders.size < lock.limit, () => `lock "${lock.name}" is full`);
    // The entry already granted this lock (several slots freed at once): the token is not one hold's alone.
    if (lock.lastToken === index) lock.sharedTokens.add(index);
    lock.holders.set(lease, index);
    this.bytes += ENTRY_OVERHEAD;
    lock.lastToken = index;
    this.index(lease, lock.name);
    emit({ kind: "lockGranted", name: lock.name, lease, token: index });
    return index;
  }

  private index(lease: number, name: string): void {
    let names = this.leaseNames.get(lease);
    if (names === undefined) this.leaseNames.set(lease, (names = new Set()));
    names.add(name);
  }

  private unindex(lease: number, name: string): void {
    const names = this.leaseNames.get(lease);
    assert(names !== undefined && names.delete(name), () => `lease ${lease} was not indexed on lock "${name}"`);
    if (names.size === 0) this.leaseNames.delete(lease);
  }

  // ----------------------------------------------------------------------------------------------------------
  // Fencing and reads

  /**
   * A fenced write passes only with a current holder's token, and, when the fence names a lease, only if that
   * lease holds with that token. For a semaphore any current holder's token is current: the store then accepts
   * writes from every holder, but never from a released or expired one. A shared token (sharedTokens) names no
   * single hold, so its fence must name the lease.
   */
  readonly fenceChecker = (fence: Fence): CommandError | null => {
    const lock = this.locks.get(fence.lock);
    if (lock === undefined) {
      return commandError(
        "FENCED",
        `fence on lock "${fence.lock}" refused: token ${fence.token} is not current (nobody holds the lock)`,
      );
    }
    if (fence.lease !== undefined) {
      if (lock.holders.get(fence.lease) === fence.token) return null;
      return commandError(
        "FENCED",
        `fence on lock "${fence.lock}" refused: lease ${fence.lease} does not hold it with token ${fence.token} (current: ${describeHolders(lock)})`,
      );
    }
    for (const token of lock.holders.values()) {
      if (token !== fence.token) continue;
      return lock.sharedTokens.has(token) ? sharedTokenNeedsLease(lock, token, "fence.lease") : null;
    }
    return commandError(
      "FENCED",
      `fence on lock "${fence.lock}" refused: token ${fence.token} is not current (current: ${describeHolders(lock)})`,
    );
  };

  /** Holds and queued waiters over every lock (for metrics; O(locks)). */
  totals(): { holders: number; waiters: number } {
    let holders = 0;
    let waiters = 0;
    for (const l of this.locks.values()) {
      holders += l.holders.size;
      waiters += l.waiters.size;
    }
    return { holders, waiters };
  }

  status(name: string): LockStatus {
    const lock = this.locks.get(name);
    if (lock === undefined) return { name, limit: 0, holders: [], waiters: [] };
    return {
      name,
      limit: lock.limit,
      holders: [...lock.holders].map(([lease, token]) => ({ lease, token })),
      waiters: [...lock.waiters],
    };
  }

  /** Names of the existing locks (with a holder or a waiter), sorted (for the dashboard; O(locks log locks)). */
  names(): string[] {
    return [...this.locks.keys()].sort(compareNames);
  }

  /** Number of existing locks (with a holder or a waiter). */
  get size(): number {
    return this.locks.size;
  }

  sizeBytes(): number {
    return this.bytes;
  }

  // ----------------------------------------------------------------------------------------------------------
  // Snapshot

  snapshot(): LockRecord[] {
    assert(this.deferred.length === 0 && this.dirty.size === 0, "lock snapshot taken inside an apply");
    return [...this.locks.values()]
      .sort((a, b) => compareNames(a.name, b.name))
      .map((l): LockRecord => {
        const record: LockRecord = [l.name, l.limit, [...l.holders], [...l.waiters], l.lastToken];
        return l.sharedTokens.size === 0 ? record : [...record, [...l.sharedTokens]];
      });
  }

  restore(data: unknown): void {
    checkSnapshot(Array.isArray(data), "lock snapshot section is not an array");
    for (const record of data as LockRecord[]) {
      checkSnapshot(
        Array.isArray(record) && (record.length === 5 || record.length === 6),
        "lock snapshot record is not [name, limit, holders, waiters, lastToken, sharedTokens?]",
      );
      const [name, limit, holders, waiters, lastToken] = record;
      checkSnapshot(
        typeof name === "string" && !this.locks.has(name),
        () => `lock snapshot: bad or repeated name ${String(name)}`,
      );
      checkSnapshot(Number.isSafeInteger(limit) && limit >= 1, () => `lock snapshot: "${name}" has limit ${limit}`);
      checkSnapshot(
        holders.length <= limit && (waiters.length === 0 || holders.length === limit),
        () => `lock snapshot: "${name}" is inconsistent`,
      );
      // A record without the sixth element comes from a member that did not keep shared tokens: the tokens two
      // of its holders have are shared (one whose other hold has gone since cannot be told apart any more).
      const shared = record.length === 6 ? record[5] : repeatedTokens(holders);
      checkSnapshot(
        Array.isArray(shared) && shared.every((t) => holders.some(([, token]) => token === t)),
        () => `lock snapshot: "${name}" has shared tokens no holder has`,
      );
      const lock: LockState = {
        name,
        limit,
        holders: new Map(holders),
        waiters: new Set(waiters),
        lastToken,
        sharedTokens: new Set(shared),
      };
      checkSnapshot(lock.holders.size + lock.waiters.size > 0, () => `lock snapshot: "${name}" is empty`);
      this.locks.set(name, lock);
      this.bytes += lockBytes(name) + ENTRY_OVERHEAD * (lock.holders.size + lock.waiters.size);
      for (const [lease] of holders) this.index(lease, name);
      for (const lease of waiters) this.index(lease, name);
    }
  }
}

function positionOf(waiters: Set<number>, lease: number): number {
  let position = 1;
  for (const w of waiters) {
    if (w === lease) return position;
    position++;
  }
  assert(false, () => `lease ${lease} is not waiting`);
}

function repeatedTokens(holders: [number, number][]): number[] {
  const seen = new Set<number>();
  const repeated = new Set<number>();
  for (const [, token] of holders) (seen.has(token) ? repeated : seen).add(token);
  return [...repeated];
}

/** Removes a holder, and its token from sharedTokens once no other holder has it. */
function dropHolder(lock: LockState, lease: number): void {
  const token = lock.holders.get(lease);
  assert(token !== undefined, () => `lease ${lease} does not hold lock "${lock.name}"`);
  lock.holders.delete(lease);
  if (!lock.sharedTokens.has(token)) return;
  for (const t of lock.holders.values()) if (t === token) return;
  lock.sharedTokens.delete(token);
}

function sharedTokenNeedsLease(lock: LockState, token: number, field: string): CommandError {
  const sharers = [...lock.holders].filter(([, t]) => t === token).map(([l]) => l);
  return invalidArgument(
    field,
    `the holder's lease: token ${token} of semaphore "${lock.name}" was granted to several holds in one entry (current: lease ${sharers.join(", ")})`,
    undefined,
  );
}

function describeHolders(lock: LockState): string {
  const tokens = [...lock.holders.values()];
  const shown = tokens.slice(0, 8).join(", ");
  return tokens.length > 8 ? `${shown}, … (${tokens.length} holders)` : shown;
}

function lockBytes(name: string): number {
  return NAMED_OVERHEAD + utf8Length(name);
}
