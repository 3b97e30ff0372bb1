// The replicated state machine: the server calls apply(index, bytes) for each committed Normal entry, in log
// order, on every replica; the same log gives the same results, events, state and snapshot bytes everywhere.
//
// EXTENSION POINTS (used by src/locks for locks and elections):
//  1. Commands: pass `handlers: CommandHandler[]`. Each handler owns some op names (with a validator per op,
//     run at decode time), applies them with an ApplyContext, and owns one snapshot section (plain msgpack data,
//     deterministic: sorted, stable field order). Extension ops are writes: they may carry a session tag.
//  2. Lease end: `onLeaseEnded(leaseId, reason, ctx)` is called synchronously inside the apply that revokes or
//     expires the lease, after its keys are deleted and its sessions closed (ctx.leaseAlive(id) is already
//     false), in handler order — so a lock bound to the lease can be released and the next waiter granted at
//     the same index. ctx.index is that index (a natural fencing token).
//  3. Fenced writes: put, delete and txn accept `fence: { lock, token }`, checked by the `fenceChecker` option
//     before the write; without one, a fenced write is refused with FENCED ("no such lock").
//  4. Lease liveness: ctx.leaseAlive(id) during apply, and leaseAlive(id) between applies.
//  5. End of apply: `onApplyEnd(ctx)` runs once after the command and every lease it ended, so a handler can
//     act on an entry's net effect (one leaseExpire may end several leases: grant waiters only once, after all).
//     Events a handler emits (from apply, onLeaseEnded or onApplyEnd) carry that handler's own section.
//  6. Space: a handler reports the bytes its state takes (`sizeBytes()`, kept up to date as it changes, counted
//     as space.ts counts the core state) and names the ops that never add to it (`opsAllowedWhenFull`).
//
// The storage quota is replicated state: limits.quotaBytes at first, then set by setQuota commands (a member's
// configuration reaches it only through the log, so replicas never judge one entry against different quotas,
// not even one replaying its log after a restart with other flags). Every replica counts the state's size the
// same way (space.ts). Once the size reaches the quota, the NO_SPACE alarm is raised — in the replicated state,
// at the entry that crossed — and from then on every command that could add to the state (put, a txn whose
// taken branch puts, leaseGrant, registerClient, extension ops outside opsAllowedWhenFull) fails with NO_SPACE,
// while reads, deletes, compaction, lease revocation and expiry, releases and resignations still apply. The
// alarm stays raised until alarmDisarm, which is refused while the state still holds the quota or more. A
// command is admitted when the state is below the quota before it, so the state exceeds the quota by at most
// one command (plus the watch events and session records of the commands that free space).
//
// Time: commands carry the leader's timestamps (leaseGrant.grantedAt); nothing here reads a clock.

import { assert } from "../assert.js";
import {
  CORE_OPS,
  type Alarm,
  decodeCommand,
  failed,
  isCommandError,
  ok,
  READ_ONLY_OPS,
  validateCommand,
  type Command,
  type CompactCommand,
  type Compare,
  type DeleteOp,
  type ExtensionCommand,
  type ExtensionValidator,
  type Fence,
  type KeyValue,
  type LeaseInfo,
  type Outcome,
  type PutOp,
  type PutResult,
  type DeleteResult,
  type RangeOp,
  type RangeResult,
  type TxnCommand,
  type TxnOp,
  type TxnOpResult,
} from "./commands.js";
import { commandError, invalidArgument, type CommandError } from "./errors.js";
import { rangeAt } from "./past-reads.js";
import { KvStore } from "./kv.js";
import { LeaseTable, type LeaseEndReason } from "./leases.js";
import { resolveLimits, utf8Length, type Limits } from "./limits.js";
import { SessionTable } from "./sessions.js";
import { RestoreJob, type RestoredState } from "./restore-job.js";
import { SnapshotMetaPacker, SnapshotParser, SnapshotPieces, type SnapshotMeta } from "./snapshot.js";
import { SnapshotJob, type SnapshotJobOutput } from "./snapshot-job.js";
import { contentHash } from "./hash.js";
import { evaluateCompare } from "./txn.js";
import { WatchHistory, type WatchEvent, type WatchFilter } from "./watch-history.js";
import { LEASE_OVERHEAD } from "./space.js";

export type StateMachineEvent =
  | WatchEvent
  | { type: "leaseGranted"; id: number; ttlMs: number }
  | { type: "leaseEnded"; id: number; reason: LeaseEndReason }
  | { type: "extension"; section: string; event: unknown }
  /** An alarm was raised or disarmed; `stateBytes` is the state's size at that entry. */
  | { type: "alarm"; alarm: Alarm["alarm"]; raised: boolean; stateBytes: number; quotaBytes: number };

export interface ApplyOutput {
  result: Outcome;
  events: readonly StateMachineEvent[];
}

/** What a handler sees of the entry being applied; valid only during the call it is passed to (one object per handler, reused for every entry). */
export interface ApplyContext {
  /** The log index being applied. */
  readonly index: number;
  /** The store revision before this command's own writes. */
  readonly revision: number;
  leaseAlive(id: number): boolean;
  emit(event: unknown): void;
}

type MutableApplyContext = { -readonly [K in keyof ApplyContext]: ApplyContext[K] };

/** A command handler with its apply context (made once, moved to each entry; its events carry the handler's section). */
interface BoundHandler {
  readonly handler: CommandHandler;
  readonly ctx: MutableApplyContext;
}

/** The events of an entry that emitted none, shared. */
const NO_EVENTS: readonly StateMachineEvent[] = Object.freeze([]);

export interface CommandHandler {
  /** Snapshot section name, unique among handlers. */
  readonly section: string;
  /** The ops this handler owns, each with its structural validator. */
  readonly ops: Readonly<Record<string, ExtensionValidator>>;
  apply(command: ExtensionCommand, ctx: ApplyContext): Outcome;
  onLeaseEnded?(leaseId: number, reason: LeaseEndReason, ctx: ApplyContext): void;
  /** Called once at the end of every apply, after the command and every onLeaseEnded of that entry. */
  onApplyEnd?(ctx: ApplyContext): void;
  snapshot(): unknown;
  restore(data: unknown): void;
  /** Bytes this handler's state takes (see space.ts); a function of that state alone, restored ones included. */
  sizeBytes(): number;
  /** Ops that never add to the state (reads, releases): applied while NO_SPACE is raised. The others are refused. */
  readonly opsAllowedWhenFull?: ReadonlySet<string>;
  /** A section added after snapshots existed: restore(undefined) when a snapshot lacks it. */
  readonly sectionOptional?: boolean;
}

/** Returns null to accept a fenced write, or the error (normally FENCED) to refuse it. */
export type FenceChecker = (fence: Fence, ctx: ApplyContext) => CommandError | null;

/** Returns null to apply a command, or the error (PERMISSION_DENIED) to refuse it unapplied (auth.ts). */
export type Authorizer = (command: Command) => CommandError | null;

export interface StateMachineOptions {
  limits?: Partial<Limits>;
  handlers?: CommandHandler[];
  fenceChecker?: FenceChecker;
  authorizer?: Authorizer;
}

export class StateMachine {
  readonly limits: Limits;
  private kv = new KvStore();
  private readonly leaseTable = new LeaseTable();
  private readonly sessions: SessionTable;
  private history: WatchHistory;
  private currentRevision = 0;
  private applied = 0;
  /** The storage quota in force and the NO_SPACE alarm while raised (see the header): replicated state. */
  private quota: number;
  private noSpace: Alarm | null = null;
  /** The command handlers, each with its apply context, in the order given (the order they act in). */
  private readonly handlers: BoundHandler[];
  private readonly handlerByOp = new Map<string, BoundHandler>();
  private readonly validators = new Map<string, ExtensionValidator>();
  private readonly fenceChecker: FenceChecker | undefined;
  private readonly authorizer: Authorizer | undefined;

  // Per-apply scratch state. `writeRevision` is 0 until the command's first change, then current + 1:
  // all changes of one command share one revision, and a command that changes nothing bumps nothing.
  private writeRevision = 0;
  /** The entry's events; null until its first (many entries emit none). */
  private events: StateMachineEvent[] | null = null;
  /** The command being applied (null between applies), and the apply contexts: made once, moved to each entry. */
  private command: Command | null = null;
  private readonly coreCtx: MutableApplyContext;

  constructor(options: StateMachineOptions = {}) {
    const limits = resolveLimits(options.limits);
    if ("code" in limits) throw new TypeError(limits.message);
    this.limits = limits;
    this.quota = limits.quotaBytes;
    this.sessions = new SessionTable(limits.maxSessionResponses);
    this.history = new WatchHistory(limits.historyRevisions, limits.historyMaxEvents);
    this.fenceChecker = options.fenceChecker;
    this.authorizer = options.authorizer;
    const leaseAlive = (id: number): boolean => this.leaseTable.isAlive(id);
    // The fence checker's events carry the section of the command being applied; a handler's, its own.
    this.coreCtx = {
      index: 0,
      revision: 0,
      leaseAlive,
      emit: (event) => this.pushEvent({ type: "extension", section: this.sectionOf(this.command!.op), event }),
    };
    this.handlers = (options.handlers ?? []).map((handler) => ({
      handler,
      ctx: {
        index: 0,
        revision: 0,
        leaseAlive,
        emit: (event: unknown) => this.pushEvent({ type: "extension", section: handler.section, event }),
      },
    }));
    const sections = new Set<string>();
    for (const bound of this.handlers) {
      const handler = bound.handler;
      if (sections.has(handler.section)) throw new TypeError(`two handlers own snapshot section "${handler.section}"`);
      sections.add(handler.section);
      for (const [op, validate] of Object.entries(handler.ops)) {
        if (CORE_OPS.has(op) || this.handlerByOp.has(op)) {
          throw new TypeError(`op "${op}" of handler "${handler.section}" is already taken`);
        }
        this.handlerByOp.set(op, bound);
        this.validators.set(op, validate);
      }
    }
  }

  // ----------------------------------------------------------------------------------------------------------
  // Apply

  /** Decodes and applies one committed entry. Never throws on bad input; throws only on a broken invariant. */
  apply(index: number, bytes: Uint8Array): ApplyOutput {
    const command = decodeCommand(bytes, this.validators);
    if (isCommandError(command)) {
      this.advanceIndex(index);
      return { result: failed(command), events: NO_EVENTS };
    }
    return this.execute(index, command);
  }

  /** Applies an in-process command object (validated the same way as decoded bytes). */
  applyCommand(index: number, command: Command): ApplyOutput {
    const valid = validateCommand(command, this.validators);
    if (isCommandError(valid)) {
      this.advanceIndex(index);
      return { result: failed(valid), events: NO_EVENTS };
    }
    return this.execute(index, valid);
  }

  private advanceIndex(index: number): void {
    assert(Number.isSafeInteger(index) && index > this.applied, () => `apply index ${index} after ${this.applied}`);
    this.applied = index;
  }

  private execute(index: number, command: Command): ApplyOutput {
    this.advanceIndex(index);
    this.writeRevision = 0;
    const revisionBefore = this.currentRevision;
    this.command = command;
    this.coreCtx.index = index;
    this.coreCtx.revision = revisionBefore;
    for (const { ctx } of this.handlers) {
      ctx.index = index;
      ctx.revision = revisionBefore;
    }
    let result: Outcome;
    const tag = command.session;
    if (tag === undefined || READ_ONLY_OPS.has(command.op)) {
      result = this.authorizedDispatch(command);
    } else {
      const decision = this.sessions.admit(tag);
      if (decision.kind === "replay") result = decision.outcome;
      else if (decision.kind === "reject") result = failed(decision.error);
      else {
        result = this.authorizedDispatch(command);
        this.sessions.record(decision.session, tag.seq, result);
      }
    }
    // After the command and every lease it ended: handlers act once on the entry's net effect (e.g. grant a
    // lock only after all leases this entry ends are gone, so two waiters never get the same index as token).
    for (const { handler, ctx } of this.handlers) handler.onApplyEnd?.(ctx);
    if (this.noSpace === null && this.sizeBytes >= this.quota) this.raiseNoSpace();
    if (this.writeRevision !== 0) {
      assert(this.writeRevision === revisionBefore + 1, "a command wrote at more than one revision");
      this.currentRevision = this.writeRevision;
      this.history.trim(this.currentRevision);
    }
    const events = this.events ?? NO_EVENTS;
    this.events = null;
    this.command = null;
    return { result, events };
  }

  private pushEvent(event: StateMachineEvent): void {
    assert(this.command !== null, "an event outside an apply");
    (this.events ??= []).push(event);
  }

  /** The extension ops' validators, so a gateway can validate a request before proposing it. */
  extensionValidators(): ReadonlyMap<string, ExtensionValidator> {
    return this.validators;
  }

  /** Whether an installed handler owns `op`. */
  handlesOp(op: string): boolean {
    return this.handlerByOp.has(op);
  }

  private sectionOf(op: string): string {
    return this.handlerByOp.get(op)?.handler.section ?? "core";
  }

  /** A command its sender may not make is refused unapplied (recorded in its session like any result). */
  private authorizedDispatch(command: Command): Outcome {
    const denied = this.authorizer?.(command);
    return denied ? failed(denied) : this.dispatch(command);
  }

  private dispatch(command: Command): Outcome {
    switch (command.op) {
      case "put":
      case "delete": {
        const c = command as (PutOp | DeleteOp) & { fence?: Fence };
        const bad =
          this.checkOp(c, "") ??
          this.checkFence(c.fence) ??
          (c.op === "put" ? (this.checkPut(c) ?? this.checkSpace()) : null);
        if (bad) return failed(bad);
        return ok(c.op === "put" ? this.put(c) : this.deleteOp(c));
      }
      case "range": {
        const c = command as RangeOp;
        const bad = this.checkOp(c, "");
        return bad ? failed(bad) : ok(this.rangeNow(c));
      }
      case "txn":
        return this.txn(command as TxnCommand);
      case "compact":
        return this.compact(command as CompactCommand);
      case "leaseGrant": {
        const { ttlMs, grantedAt } = command as { ttlMs: number; grantedAt: number };
        if (ttlMs < this.limits.minLeaseTtlMs || ttlMs > this.limits.maxLeaseTtlMs) {
          return failed(
            invalidArgument("ttlMs", `between ${this.limits.minLeaseTtlMs} and ${this.limits.maxLeaseTtlMs}`, ttlMs),
          );
        }
        const full = this.checkSpace();
        if (full) return failed(full);
        const id = this.applied;
        this.leaseTable.grant(id, ttlMs, grantedAt);
        this.pushEvent({ type: "leaseGranted", id, ttlMs });
        return ok({ id, ttlMs });
      }
      case "leaseRevoke": {
        const { id } = command as { id: number };
        if (!this.leaseTable.isAlive(id)) return failed(leaseNotFound(id));
        const deleted = this.endLease(id, "revoked");
        return ok({ revision: this.revisionAfter(), deleted });
      }
      case "leaseExpire": {
        const expired: number[] = [];
        for (const id of (command as { ids: number[] }).ids) {
          if (!this.leaseTable.isAlive(id)) continue;
          this.endLease(id, "expired");
          expired.push(id);
        }
        return ok({ revision: this.revisionAfter(), expired });
      }
      case "leaseTimeToLive":
        return ok({ lease: this.leaseTable.info((command as { id: number }).id) });
      case "leaseList":
        return ok({ leases: this.leaseTable.list().map((l) => ({ id: l.id, ttlMs: l.ttlMs })) });
      case "registerClient": {
        const lease = this.leaseTable.get((command as { lease: number }).lease);
        if (lease === undefined) return failed(leaseNotFound((command as { lease: number }).lease));
        const full = this.checkSpace();
        if (full) return failed(full);
        const clientId = this.applied;
        this.sessions.open(clientId, lease.id);
        lease.clients.add(clientId);
        return ok({ clientId });
      }
      case "alarmDisarm":
        return this.disarm();
      case "setQuota":
        // Never refused for space (raising the quota frees it); a lower one raises NO_SPACE at the end of the apply.
        this.quota = (command as { quotaBytes: number }).quotaBytes;
        return ok({ quotaBytes: this.quota });
      default: {
        const bound = this.handlerByOp.get(command.op);
        assert(bound !== undefined, () => `no handler for validated op ${command.op}`);
        const full = bound.handler.opsAllowedWhenFull?.has(command.op) ? null : this.checkSpace();
        if (full) return failed(full);
        return bound.handler.apply(command as ExtensionCommand, bound.ctx);
      }
    }
  }

  private revisionAfter(): number {
    return this.writeRevision === 0 ? this.currentRevision : this.writeRevision;
  }

  private nextRevision(): number {
    if (this.writeRevision === 0) this.writeRevision = this.currentRevision + 1;
    return this.writeRevision;
  }

  // ----------------------------------------------------------------------------------------------------------
  // Checks (all run before the first change, so a refused command changes nothing)

  private checkKey(key: string, field: string): CommandError | null {
    const bytes = utf8Length(key);
    if (bytes < 0) return invalidArgument(field, "a string without lone surrogates (valid UTF-16)", key);
    if (bytes > this.limits.maxKeyBytes) {
      return commandError("KEY_TOO_LARGE", `${field}: key is ${bytes} bytes, the limit is ${this.limits.maxKeyBytes}`, {
        field,
      });
    }
    return null;
  }

  private checkOp(op: TxnOp, path: string): CommandError | null {
    const bad = this.checkKey(op.key, `${path}key`);
    if (bad) return bad;
    if (op.op === "put" && op.value.length > this.limits.maxValueBytes) {
      return commandError(
        "VALUE_TOO_LARGE",
        `${path}value: value is ${op.value.length} bytes, the limit is ${this.limits.maxValueBytes}`,
        { field: `${path}value` },
      );
    }
    if (op.op === "range" && op.after !== undefined && utf8Length(op.after) < 0) {
      return invalidArgument(`${path}after`, "a string without lone surrogates (valid UTF-16)", op.after);
    }
    if (op.op === "range" && op.revision !== undefined) return this.checkReadRevision(op.revision, `${path}revision`);
    return null;
  }

  /** A past revision is readable from the compaction revision (its records are rebuilt from the history) to now. */
  private checkReadRevision(revision: number, field: string): CommandError | null {
    if (revision > this.currentRevision) {
      return commandError(
        "FUTURE_REVISION",
        `${field}: revision ${revision} is beyond the current revision ${this.currentRevision}`,
        { field },
      );
    }
    if (revision < this.history.compactRevision) {
      return commandError(
        "COMPACTED",
        `${field}: revision ${revision} is compacted; the oldest revision still readable is ${this.history.compactRevision} (the history keeps revisions ${this.history.compactRevision}..${this.currentRevision})`,
        { compactRevision: this.history.compactRevision },
      );
    }
    return null;
  }

  private checkFence(fence: Fence | undefined): CommandError | null {
    if (fence === undefined) return null;
    if (this.fenceChecker === undefined) {
      return commandError("FENCED", `fence on lock "${fence.lock}" refused: no such lock (no lock support installed)`);
    }
    return this.fenceChecker(fence, this.coreCtx);
  }

  /**
   * Lease existence for puts, and the key-count limit. The count is bounded from above: keys a put would
   * create, ignoring deletes earlier in the same txn (documented, conservative, the same on every replica).
   */
  private checkWrites(ops: readonly TxnOp[]): CommandError | null {
    const created = new Set<string>();
    for (const op of ops) {
      if (op.op !== "put") continue;
      const dead = this.checkLease(op);
      if (dead !== null) return dead;
      if (!this.kv.has(op.key)) created.add(op.key);
    }
    return this.checkKeyCount(created.size);
  }

  /** checkWrites of one put, without the set. */
  private checkPut(op: PutOp): CommandError | null {
    return this.checkLease(op) ?? (this.kv.has(op.key) ? null : this.checkKeyCount(1));
  }

  /** A put may attach only to a live lease. */
  private checkLease(op: PutOp): CommandError | null {
    return op.lease !== undefined && !this.leaseTable.isAlive(op.lease) ? leaseNotFound(op.lease) : null;
  }

  private checkKeyCount(created: number): CommandError | null {
    if (this.kv.size + created <= this.limits.maxKeys) return null;
    return commandError(
      "TOO_MANY_KEYS",
      `the store holds ${this.kv.size} keys and this write would create ${created}; the limit is ${this.limits.maxKeys}`,
    );
  }

  // ----------------------------------------------------------------------------------------------------------
  // The storage quota (see the header)

  /** Null when a command that adds to the state may apply; NO_SPACE (raising the alarm if needed) when not. */
  private checkSpace(): CommandError | null {
    if (this.noSpace === null) {
      if (this.sizeBytes < this.quota) return null;
      this.raiseNoSpace();
    }
    return commandError(
      "NO_SPACE",
      `the NO_SPACE alarm is raised (since index ${this.noSpace!.raisedAt}): the state holds ${this.sizeBytes} bytes and the quota is ${this.quota} bytes; writes that add data are refused, reads, deletes, compaction and lease revocation still work — free space, then disarm the alarm (concord alarm disarm)`,
    );
  }

  private raiseNoSpace(): void {
    assert(this.noSpace === null, "NO_SPACE raised twice");
    this.noSpace = { alarm: "NO_SPACE", raisedAt: this.applied };
    this.pushEvent(this.alarmEvent(true));
  }

  private disarm(): Outcome {
    if (this.noSpace === null) return ok({ disarmed: [] });
    const size = this.sizeBytes;
    if (size >= this.quota) {
      return failed(
        commandError(
          "NO_SPACE",
          `cannot disarm NO_SPACE: the state still holds ${size} bytes and the quota is ${this.quota} bytes; free at least ${size - this.quota + 1} bytes first (delete keys, then compact the history: deleted values stay in it until compacted; revoke leases)`,
        ),
      );
    }
    const disarmed = [this.noSpace];
    this.noSpace = null;
    this.pushEvent(this.alarmEvent(false));
    return ok({ disarmed });
  }

  private alarmEvent(raised: boolean): StateMachineEvent {
    return { type: "alarm", alarm: "NO_SPACE", raised, stateBytes: this.sizeBytes, quotaBytes: this.quota };
  }

  // ----------------------------------------------------------------------------------------------------------
  // Writes

  private put(op: PutOp): PutResult {
    const revision = this.nextRevision();
    const prev = this.kv.get(op.key);
    const lease = op.lease ?? 0;
    // The store keeps a copy (kv.ts): the caller's bytes (a decoded command's) are never aliased.
    const kv = this.kv.set({
      key: op.key,
      value: op.value,
      createRevision: prev === undefined ? revision : prev.createRevision,
      modRevision: revision,
      version: prev === undefined ? 1 : prev.version + 1,
      lease,
    });
    if (prev !== undefined && prev.lease !== 0 && prev.lease !== lease) this.leaseTable.detachKey(prev.lease, op.key);
    if (lease !== 0) this.leaseTable.attachKey(lease, op.key);
    const event: WatchEvent =
      prev === undefined ? { type: "put", revision, kv } : { type: "put", revision, kv, prevKv: prev };
    this.history.append(event);
    this.pushEvent(event);
    const result: PutResult = { revision };
    if (op.prevKv && prev !== undefined) result.prevKv = prev;
    return result;
  }

  private deleteKey(key: string): KeyValue | undefined {
    const prev = this.kv.remove(key);
    if (prev === undefined) return undefined;
    const revision = this.nextRevision();
    if (prev.lease !== 0) this.leaseTable.detachKey(prev.lease, key);
    const event: WatchEvent = { type: "delete", revision, key, prevKv: prev };
    this.history.append(event);
    this.pushEvent(event);
    return prev;
  }

  private deleteOp(op: DeleteOp): DeleteResult {
    const keys = op.prefix ? [...this.kv.keysWithPrefix(op.key)] : [op.key];
    const prevKvs: KeyValue[] = [];
    for (const key of keys) {
      const prev = this.deleteKey(key);
      if (prev !== undefined) prevKvs.push(prev);
    }
    const result: DeleteResult = { revision: this.revisionAfter(), deleted: prevKvs.length };
    if (op.prevKv) result.prevKvs = prevKvs;
    return result;
  }

  private rangeNow(op: RangeOp): RangeResult {
    const page =
      op.revision !== undefined && op.revision < this.revisionAfter()
        ? rangeAt(this.kv, this.history, op, op.revision)
        : this.kv.range(op);
    const result: RangeResult = { revision: this.revisionAfter(), kvs: page.kvs, more: page.more };
    if (page.cursor !== undefined) result.cursor = page.cursor;
    return result;
  }

  private txn(c: TxnCommand): Outcome {
    const max = this.limits.maxTxnOps;
    for (const [name, list] of [
      ["compare", c.compare],
      ["success", c.success],
      ["failure", c.failure],
    ] as const) {
      if (list.length > max) {
        return failed(commandError("TXN_TOO_LARGE", `${name}: ${list.length} entries, the limit is ${max} per list`));
      }
    }
    for (let i = 0; i < c.compare.length; i++) {
      const bad = this.checkKey(c.compare[i].key, `compare[${i}].key`);
      if (bad) return failed(bad);
    }
    for (const [name, list] of [
      ["success", c.success],
      ["failure", c.failure],
    ] as const) {
      for (let i = 0; i < list.length; i++) {
        const bad = this.checkOp(list[i], `${name}[${i}].`);
        if (bad) return failed(bad);
      }
    }
    const fenced = this.checkFence(c.fence);
    if (fenced) return failed(fenced);
    const succeeded = c.compare.every((cmp: Compare) => evaluateCompare(cmp, this.kv.get(cmp.key)));
    const branch = succeeded ? c.success : c.failure;
    const bad = this.checkWrites(branch) ?? (branch.some((op) => op.op === "put") ? this.checkSpace() : null);
    if (bad) return failed(bad);
    const responses: TxnOpResult[] = branch.map((op) =>
      op.op === "put"
        ? { op: "put", ...this.put(op) }
        : op.op === "delete"
          ? { op: "delete", ...this.deleteOp(op) }
          : { op: "range", ...this.rangeNow(op) },
    );
    const revision = this.revisionAfter();
    for (const r of responses) r.revision = revision;
    return ok({ revision, succeeded, responses });
  }

  private compact(c: CompactCommand): Outcome {
    if (c.revision > this.currentRevision) {
      return failed(
        commandError(
          "FUTURE_REVISION",
          `revision ${c.revision} is beyond the current revision ${this.currentRevision}`,
        ),
      );
    }
    if (c.revision <= this.history.compactRevision) {
      return failed(
        commandError("COMPACTED", `revision ${c.revision} is already compacted (at ${this.history.compactRevision})`, {
          compactRevision: this.history.compactRevision,
        }),
      );
    }
    this.history.compact(c.revision);
    return ok({ revision: this.currentRevision, compactRevision: c.revision });
  }

  /** Ends a lease: deletes its keys (sorted, for the same event order everywhere), closes its sessions, tells handlers. */
  private endLease(id: number, reason: LeaseEndReason): number {
    const lease = this.leaseTable.get(id);
    assert(lease !== undefined, () => `ending missing lease ${id}`);
    const keys = [...lease.keys].sort();
    for (const key of keys) {
      const prev = this.deleteKey(key);
      assert(prev !== undefined && prev.lease === id, () => `lease ${id} listed key ${key} it does not hold`);
    }
    for (const clientId of lease.clients) this.sessions.close(clientId);
    this.leaseTable.remove(id);
    this.pushEvent({ type: "leaseEnded", id, reason });
    for (const { handler, ctx } of this.handlers) handler.onLeaseEnded?.(id, reason, ctx);
    return keys.length;
  }

  // ----------------------------------------------------------------------------------------------------------
  // Reads between applies (serializable as is; linearizable after a ReadIndex barrier)

  get revision(): number {
    return this.currentRevision;
  }
  get compactRevision(): number {
    return this.history.compactRevision;
  }
  get lastApplied(): number {
    return this.applied;
  }
  get keyCount(): number {
    return this.kv.size;
  }

  /**
   * Packs the stored values closer (kv.ts's tightenValues): for an idle member, between applies. Changes nothing
   * a read, a snapshot or the hash sees; returns the bytes of value chunks dropped.
   */
  tightenValues(): number {
    return this.kv.tightenValues();
  }

  /**
   * Bytes the replicated state takes, as space.ts counts them: the same on every replica at the same index.
   * O(1): every part keeps its own total.
   */
  get sizeBytes(): number {
    let n = this.kv.bytes + this.history.bytes + this.leaseTable.size * LEASE_OVERHEAD + this.sessions.bytes;
    for (const { handler } of this.handlers) n += handler.sizeBytes();
    return n;
  }

  /** The storage quota in force (replicated: see the header). */
  get quotaBytes(): number {
    return this.quota;
  }

  /** The raised alarms (at most NO_SPACE). */
  alarms(): Alarm[] {
    return this.noSpace === null ? [] : [{ ...this.noSpace }];
  }

  get(key: string): KeyValue | undefined {
    return this.kv.get(key);
  }

  range(op: RangeOp): RangeResult | CommandError {
    // Object.assign, not `{ ...op, op: "range" }`: Node 20's V8 builds that on a slow path (~1 µs per added
    // property), and every read comes through here.
    const valid = validateCommand(Object.assign({}, op, { op: "range" }));
    if (isCommandError(valid)) return valid;
    return this.checkOp(valid as RangeOp, "") ?? this.rangeNow(valid as RangeOp);
  }

  leaseAlive(id: number): boolean {
    return this.leaseTable.isAlive(id);
  }

  leaseTimeToLive(id: number): LeaseInfo | null {
    return this.leaseTable.info(id);
  }

  /** Every lease with its TTL, in id order: a new leader restarts each deadline at now + ttlMs. */
  leases(): { id: number; ttlMs: number; grantedAt: number }[] {
    return this.leaseTable.list().map((l) => ({ id: l.id, ttlMs: l.ttlMs, grantedAt: l.grantedAt }));
  }

  /** Watch events with revision >= fromRevision, or COMPACTED with the compaction revision. */
  watchEventsSince(fromRevision: number, filter?: WatchFilter, limit = 0): WatchEvent[] | CommandError {
    if (!Number.isSafeInteger(fromRevision) || fromRevision < 1) {
      return invalidArgument("fromRevision", "an integer >= 1", fromRevision);
    }
    return this.history.since(fromRevision, filter, limit);
  }

  // ----------------------------------------------------------------------------------------------------------
  // Snapshot

  /** Deterministic bytes: the same state gives the same bytes on every replica. */
  snapshot(): Uint8Array {
    const out = new SnapshotPieces();
    this.beginSnapshot({ emit: out.emit }).step(Infinity);
    return out.bytes();
  }

  /**
   * Starts a snapshot of the state as it is now, to be taken a run at a time (snapshot-job.ts) while commands
   * keep being applied: the same bytes snapshot() returns at this moment, preceded by `output.prefix` when given,
   * handed to `output.emit` in pieces as the job makes them.
   * Starting one costs a frozen view of the sorted keys (O(keys / 512)) and packing the small parts of the state
   * (leases, sessions, extension sections); the watch history and the records are packed in the job's runs.
   */
  beginSnapshot(output: SnapshotJobOutput): SnapshotJob {
    const meta: SnapshotMeta = {
      lastApplied: this.applied,
      revision: this.currentRevision,
      compactRevision: this.history.compactRevision,
      leases: this.leaseTable.list().map((l) => [l.id, l.ttlMs, l.grantedAt]),
      sessions: this.sessions
        .list()
        .map((s) => [s.clientId, s.lease, s.lowestUnacked, [...s.responses.entries()].sort((a, b) => a[0] - b[0])]),
      history: this.history.held(),
      extensions: this.handlers
        .map(({ handler }): [string, unknown] => [handler.section, handler.snapshot()])
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
      quotaBytes: this.quota,
      alarms: this.noSpace === null ? [] : [[this.noSpace.alarm, this.noSpace.raisedAt]],
    };
    return new SnapshotJob(new SnapshotMetaPacker(meta), this.kv.capture(), this.kv, output);
  }

  /** 64-bit content hash of the snapshot bytes (16 hex digits), to log and compare across replicas. */
  hash(): string {
    return contentHash(this.snapshot());
  }

  /** Rebuilds a state machine from snapshot(); `options` must match the snapshotting node's (limits, handlers). */
  static restore(bytes: Uint8Array, options: StateMachineOptions = {}): StateMachine {
    const sm = new StateMachine(options);
    sm.beginRestore(bytes).step(Infinity);
    return sm;
  }

  /**
   * Starts rebuilding this state machine, which must be new (nothing applied), from snapshot() bytes, a run at a
   * time (restore-job.ts); it holds the restored state once the job's last step returned true, and must not be
   * used before. The snapshot's header and meta part are checked here: SnapshotFormatError at once when they are
   * malformed, from a step when a record is.
   */
  beginRestore(bytes: Uint8Array): RestoreJob {
    assert(this.applied === 0 && this.kv.size === 0, "beginRestore on a state machine that has applied entries");
    return new RestoreJob(new SnapshotParser(bytes), (restored) => this.installRestored(restored));
  }

  private installRestored({ state, kv, leasedKeys, leaseOfKey }: RestoredState): void {
    this.applied = state.lastApplied;
    this.currentRevision = state.revision;
    this.kv = kv;
    for (const [id, ttlMs, grantedAt] of state.leases) this.leaseTable.grant(id, ttlMs, grantedAt);
    for (let i = 0; i < leasedKeys.length; i++) this.leaseTable.attachKey(leaseOfKey[i], leasedKeys[i]);
    for (const [clientId, lease, lowestUnacked, responses] of state.sessions) {
      this.sessions.restore({ clientId, lease, lowestUnacked, responses: new Map(responses) });
      const owner = this.leaseTable.get(lease);
      assert(owner !== undefined, () => `snapshot: session ${clientId} bound to missing lease ${lease}`);
      owner.clients.add(clientId);
    }
    this.history = WatchHistory.restore(
      this.limits.historyRevisions,
      this.limits.historyMaxEvents,
      state.compactRevision,
      state.history,
    );
    const sections = new Map(state.extensions);
    for (const { handler } of this.handlers) {
      assert(sections.has(handler.section) || handler.sectionOptional, () => `snapshot has no section "${handler.section}"`);
      handler.restore(sections.get(handler.section));
      sections.delete(handler.section);
    }
    assert(sections.size === 0, () => `snapshot sections without a handler: ${[...sections.keys()].join(", ")}`);
    if (state.quotaBytes !== undefined) this.quota = state.quotaBytes;
    for (const [alarm, raisedAt] of state.alarms) this.noSpace = { alarm, raisedAt };
  }
}

function leaseNotFound(id: number): CommandError {
  return commandError("LEASE_NOT_FOUND", `lease ${id} does not exist (never granted, revoked or expired)`);
}
