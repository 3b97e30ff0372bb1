// The command vocabulary: what a client (or the server) proposes, what apply() answers, and the wire format.
//
// Wire format: one version byte (COMMAND_FORMAT_VERSION) followed by one msgpack map. The version byte lets
// the format evolve: a node refuses, with a typed error, a version it does not know instead of misreading it.
// decodeCommand() never throws: every malformed input becomes MALFORMED_COMMAND or INVALID_ARGUMENT naming the
// field and what is accepted. Validation here is structural (types, ranges); size limits are checked at apply
// time because they are configuration (see limits.ts).

import { Packr } from "msgpackr";
import { commandError, describe, invalidArgument, type CommandError } from "./errors.js";
import { ByteArena } from "./byte-arena.js";
import { validateActor, type Actor } from "./auth.js";

export const COMMAND_FORMAT_VERSION = 1;

/**
 * A fenced write: accepted only while `token` is a current fencing token of `lock` and, when `lease` is given,
 * that lease holds `lock` with it (see FenceChecker).
 */
export interface Fence {
  lock: string;
  token: number;
  lease?: number;
}

/**
 * Exactly-once tag of a client write. `seq` numbers the client's requests; `lowestUnacked` promises the client
 * no longer waits for any response with a smaller seq, so the state machine may forget those.
 */
export interface SessionTag {
  clientId: number;
  seq: number;
  lowestUnacked: number;
}

interface Tagged {
  session?: SessionTag;
  /** Who sent it, stamped by the member that received it; checked at apply while auth is enabled (auth.ts). */
  actor?: Actor;
}

export interface PutOp {
  op: "put";
  key: string;
  value: Uint8Array;
  /** Bind the key to this lease (0 or absent: none); the key is deleted when the lease ends. */
  lease?: number;
  /** Return the previous key-value in the result. */
  prevKv?: boolean;
}

/** Reads one key, or every key starting with `key` when `prefix`; `after` continues past a previous page's cursor. */
export interface RangeOp {
  op: "range";
  key: string;
  prefix?: boolean;
  /** Most kvs returned; 0 or absent: all. */
  limit?: number;
  /** Continuation cursor: only keys strictly greater than this are returned. */
  after?: string;
  /** Read the store as it was at this revision (≥ the compaction revision, ≤ the current one); absent: now. */
  revision?: number;
}

export interface DeleteOp {
  op: "delete";
  key: string;
  prefix?: boolean;
  prevKv?: boolean;
}

export type CompareTarget = "value" | "version" | "createRevision" | "modRevision" | "lease";
export type CompareResult = "=" | "!=" | "<" | ">";

/**
 * `key`'s target compared with `value`. A missing key has version, revisions and lease 0; a compare on the
 * value of a missing key is false whatever the operator (as in etcd: no value is not the empty value).
 */
export interface Compare {
  key: string;
  target: CompareTarget;
  result: CompareResult;
  /** Bytes for target "value", an integer for the others. */
  value: Uint8Array | number;
}

export type TxnOp = PutOp | DeleteOp | RangeOp;

export interface PutCommand extends PutOp, Tagged {
  fence?: Fence;
}
export interface DeleteCommand extends DeleteOp, Tagged {
  fence?: Fence;
}
export interface RangeCommand extends RangeOp, Tagged {}
/** All compares true: `success` runs, else `failure`; ops run in order and all writes share one revision. */
export interface TxnCommand extends Tagged {
  op: "txn";
  compare: Compare[];
  success: TxnOp[];
  failure: TxnOp[];
  fence?: Fence;
}
/** Forget watch history at and below `revision`. */
export interface CompactCommand extends Tagged {
  op: "compact";
  revision: number;
}
/** `grantedAt` is the proposing leader's clock in ms; the state machine never reads a clock. */
export interface LeaseGrantCommand extends Tagged {
  op: "leaseGrant";
  ttlMs: number;
  grantedAt: number;
}
export interface LeaseRevokeCommand extends Tagged {
  op: "leaseRevoke";
  id: number;
}
/** Proposed by the leader when deadlines pass; ids of leases that no longer exist are skipped. */
export interface LeaseExpireCommand extends Tagged {
  op: "leaseExpire";
  ids: number[];
}
export interface LeaseTimeToLiveCommand extends Tagged {
  op: "leaseTimeToLive";
  id: number;
}
export interface LeaseListCommand extends Tagged {
  op: "leaseList";
}
/** Opens an exactly-once session bound to `lease`; the session ends with the lease. */
export interface RegisterClientCommand extends Tagged {
  op: "registerClient";
  lease: number;
}
/**
 * Clears the NO_SPACE alarm; refused (NO_SPACE) while the state still holds limits.quotaBytes or more. Disarming
 * no alarm succeeds and changes nothing.
 */
export interface AlarmDisarmCommand extends Tagged {
  op: "alarmDisarm";
}
/**
 * Sets the storage quota, which is replicated state (so every replica judges every entry against the same quota,
 * also when replaying its log after a restart with other flags). Proposed by a leader whose configured quota
 * differs from the cluster's; never refused for space. Lowering it below the state's size raises NO_SPACE.
 */
export interface SetQuotaCommand extends Tagged {
  op: "setQuota";
  quotaBytes: number;
}
/** A command owned by a CommandHandler extension (locks, elections); validated by that handler. */
export interface ExtensionCommand extends Tagged {
  op: string;
  [field: string]: unknown;
}

export type CoreCommand =
  | PutCommand
  | RangeCommand
  | DeleteCommand
  | TxnCommand
  | CompactCommand
  | LeaseGrantCommand
  | LeaseRevokeCommand
  | LeaseExpireCommand
  | LeaseTimeToLiveCommand
  | LeaseListCommand
  | RegisterClientCommand
  | AlarmDisarmCommand
  | SetQuotaCommand;

export type Command = CoreCommand | ExtensionCommand;

export const CORE_OPS: ReadonlySet<string> = new Set([
  "put",
  "range",
  "delete",
  "txn",
  "compact",
  "leaseGrant",
  "leaseRevoke",
  "leaseExpire",
  "leaseTimeToLive",
  "leaseList",
  "registerClient",
  "alarmDisarm",
  "setQuota",
]);

/** Ops that change nothing; they need no session and are answered the same on a retry anyway. */
export const READ_ONLY_OPS: ReadonlySet<string> = new Set(["range", "leaseTimeToLive", "leaseList"]);

// ------------------------------------------------------------------------------------------------------------
// Results

/** An immutable key-value record; a put replaces the record, so events and prevKvs may share it safely. */
export interface KeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  /** Revision of the put that created the key (since its last delete). */
  readonly createRevision: number;
  /** Revision of the last put. */
  readonly modRevision: number;
  /** Number of puts since creation; 1 after the first. */
  readonly version: number;
  /** Lease id, 0 for none. */
  readonly lease: number;
}

/** `revision` in every KV result is the store's revision after the command. */
export interface PutResult {
  revision: number;
  prevKv?: KeyValue;
}
export interface RangeResult {
  revision: number;
  kvs: KeyValue[];
  /** More keys match beyond this page: continue with `after: cursor`. */
  more: boolean;
  cursor?: string;
}
export interface DeleteResult {
  revision: number;
  deleted: number;
  prevKvs?: KeyValue[];
}
export type TxnOpResult =
  ({ op: "put" } & PutResult) | ({ op: "delete" } & DeleteResult) | ({ op: "range" } & RangeResult);
export interface TxnResult {
  revision: number;
  succeeded: boolean;
  responses: TxnOpResult[];
}
export interface CompactResult {
  revision: number;
  compactRevision: number;
}
export interface LeaseInfo {
  id: number;
  ttlMs: number;
  grantedAt: number;
  /** Keys bound to the lease, sorted. */
  keys: string[];
}
export interface LeaseGrantResult {
  id: number;
  ttlMs: number;
}
export interface LeaseRevokeResult {
  revision: number;
  deleted: number;
}
export interface LeaseExpireResult {
  revision: number;
  /** The ids that still existed and are now gone, in command order. */
  expired: number[];
}
export interface LeaseTimeToLiveResult {
  lease: LeaseInfo | null;
}
export interface LeaseListResult {
  leases: { id: number; ttlMs: number }[];
}
export interface RegisterClientResult {
  clientId: number;
}

/**
 * A cluster-wide alarm, part of the replicated state (every replica agrees; it survives restarts and
 * snapshots). NO_SPACE: the state reached the storage quota; writes that would add to it are refused.
 */
export interface Alarm {
  alarm: "NO_SPACE";
  /** Log index of the entry that raised it. */
  raisedAt: number;
}
export interface AlarmDisarmResult {
  /** The alarms cleared (none when none was raised). */
  disarmed: Alarm[];
}

export type Outcome<T = unknown> = { ok: true; value: T } | { ok: false; error: CommandError };

export function ok<T>(value: T): Outcome<T> {
  return { ok: true, value };
}
export function failed(error: CommandError): Outcome<never> {
  return { ok: false, error };
}

// ------------------------------------------------------------------------------------------------------------
// Encoding

// useRecords: false keeps the bytes self-describing (no shared structure table between nodes).
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
// Decoded commands' bytes (a put's value, an election's) are views of the entry's bytes, not copies: a copy is an
// ArrayBuffer of its own, which cost more than the rest of a put's decoding (0.7-1.0 us of 1.9 us, measured), and
// every member decodes every entry. Whatever keeps bytes past the apply copies them: the key store into its
// value chunks (kv.ts); elections' and auth's validators the values they keep (locks/commands.ts, auth.ts). So
// neither a reused buffer nor a large one (a peer frame, a WAL read) is held or altered by the state.
const decodeOptions = { start: 1 };

// Encoded commands live as long as their log entries, which are compacted oldest first: an arena suits them
// (measured: 32,000 entries in a leader's log were as many ArrayBuffers, 10 MiB plus their bookkeeping).
const commandArena = new ByteArena();

export function encodeCommand(command: Command): Uint8Array {
  const body = packr.pack(command);
  const bytes = commandArena.alloc(body.length + 1);
  bytes[0] = COMMAND_FORMAT_VERSION;
  bytes.set(body, 1);
  return bytes;
}

/** Validates one extension command's fields; returns the command or an INVALID_ARGUMENT naming the field. */
export type ExtensionValidator = (raw: Record<string, unknown>) => Command | CommandError;

export function decodeCommand(
  bytes: Uint8Array,
  extensions: ReadonlyMap<string, ExtensionValidator> = new Map(),
): Command | CommandError {
  if (!(bytes instanceof Uint8Array) || bytes.length < 2) {
    return commandError(
      "MALFORMED_COMMAND",
      `command: expected a version byte and a msgpack map, got ${describe(bytes)}`,
    );
  }
  if (bytes[0] !== COMMAND_FORMAT_VERSION) {
    return commandError(
      "MALFORMED_COMMAND",
      `command format version ${bytes[0]} is not supported (this node reads version ${COMMAND_FORMAT_VERSION})`,
    );
  }
  let raw: unknown;
  try {
    raw = packr.unpack(bytes, decodeOptions);
  } catch (e) {
    return commandError("MALFORMED_COMMAND", `command body is not valid msgpack: ${(e as Error).message}`);
  }
  return validateCommand(raw, extensions);
}

// ------------------------------------------------------------------------------------------------------------
// Validation

type Fields = Record<string, unknown>;

/** Thrown by field checks, caught where a command's validation returns its CommandError. */
export class Invalid {
  constructor(readonly error: CommandError) {}
}

/** A handler's validator from a builder whose field checks throw Invalid: the error is returned, never thrown. */
export function extensionValidator(build: (o: Fields) => Command): ExtensionValidator {
  return (raw) => {
    try {
      return build(raw);
    } catch (e) {
      if (e instanceof Invalid) return e.error;
      throw e;
    }
  };
}

function isRecord(v: unknown): v is Fields {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
function str(o: Fields, name: string, path: string, allowEmpty: boolean): string {
  const v = o[name];
  if (typeof v !== "string" || (!allowEmpty && v.length === 0)) {
    throw new Invalid(invalidArgument(path + name, allowEmpty ? "a string" : "a non-empty string", v));
  }
  return v;
}
function optStr(o: Fields, name: string, path: string): string | undefined {
  return o[name] === undefined ? undefined : str(o, name, path, true);
}
function int(o: Fields, name: string, path: string, min: number): number {
  const v = o[name];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new Invalid(invalidArgument(path + name, `an integer >= ${min}`, v));
  }
  return v;
}
function optInt(o: Fields, name: string, path: string, min: number): number | undefined {
  return o[name] === undefined ? undefined : int(o, name, path, min);
}
function optBool(o: Fields, name: string, path: string): boolean | undefined {
  const v = o[name];
  if (v !== undefined && typeof v !== "boolean") throw new Invalid(invalidArgument(path + name, "a boolean", v));
  return v as boolean | undefined;
}
function bytesField(o: Fields, name: string, path: string): Uint8Array {
  const v = o[name];
  if (!(v instanceof Uint8Array))
    throw new Invalid(invalidArgument(path + name, "bytes (Uint8Array / msgpack bin)", v));
  return v;
}
function array(o: Fields, name: string, path: string): unknown[] {
  const v = o[name];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Invalid(invalidArgument(path + name, "an array", v));
  return v;
}
function record(v: unknown, path: string, what: string): Fields {
  if (!isRecord(v)) throw new Invalid(invalidArgument(path, what, v));
  return v;
}

function fence(o: Fields, path: string): Fence | undefined {
  if (o.fence === undefined) return undefined;
  const f = record(o.fence, path + "fence", "a map { lock, token, lease? }");
  const checked: Fence = { lock: str(f, "lock", path + "fence.", false), token: int(f, "token", path + "fence.", 1) };
  if (f.lease !== undefined) checked.lease = int(f, "lease", path + "fence.", 1);
  return checked;
}

function putOp(o: Fields, path: string): PutOp {
  const op: PutOp = { op: "put", key: str(o, "key", path, false), value: bytesField(o, "value", path) };
  const lease = optInt(o, "lease", path, 0);
  if (lease !== undefined && lease !== 0) op.lease = lease;
  if (optBool(o, "prevKv", path)) op.prevKv = true;
  return op;
}
function deleteOp(o: Fields, path: string): DeleteOp {
  const prefix = optBool(o, "prefix", path) === true;
  const op: DeleteOp = { op: "delete", key: str(o, "key", path, prefix) };
  if (prefix) op.prefix = true;
  if (optBool(o, "prevKv", path)) op.prevKv = true;
  return op;
}
function rangeOp(o: Fields, path: string): RangeOp {
  const prefix = optBool(o, "prefix", path) === true;
  const op: RangeOp = { op: "range", key: str(o, "key", path, prefix) };
  if (prefix) op.prefix = true;
  const limit = optInt(o, "limit", path, 0);
  if (limit !== undefined && limit !== 0) op.limit = limit;
  const after = optStr(o, "after", path);
  if (after !== undefined) op.after = after;
  const revision = optInt(o, "revision", path, 0);
  if (revision !== undefined && revision !== 0) op.revision = revision;
  return op;
}
function txnOp(v: unknown, path: string): TxnOp {
  const o = record(v, path, "a map with op put | delete | range");
  const prefix = `${path}.`;
  if (o.fence !== undefined) {
    throw new Invalid(
      invalidArgument(prefix + "fence", "no fence on a txn op (put the fence on the txn itself)", o.fence),
    );
  }
  switch (o.op) {
    case "put":
      return putOp(o, prefix);
    case "delete":
      return deleteOp(o, prefix);
    case "range":
      return rangeOp(o, prefix);
    default:
      throw new Invalid(invalidArgument(prefix + "op", '"put", "delete" or "range"', o.op));
  }
}

const TARGETS: ReadonlySet<string> = new Set(["value", "version", "createRevision", "modRevision", "lease"]);
const RESULTS: ReadonlySet<string> = new Set(["=", "!=", "<", ">"]);

function compare(v: unknown, path: string): Compare {
  const o = record(v, path, "a map { key, target, result, value }");
  const p = `${path}.`;
  const key = str(o, "key", p, false);
  if (typeof o.target !== "string" || !TARGETS.has(o.target)) {
    throw new Invalid(
      invalidArgument(p + "target", "value | version | createRevision | modRevision | lease", o.target),
    );
  }
  if (typeof o.result !== "string" || !RESULTS.has(o.result)) {
    throw new Invalid(invalidArgument(p + "result", '"=", "!=", "<" or ">"', o.result));
  }
  const target = o.target as CompareTarget;
  const value = target === "value" ? bytesField(o, "value", p) : int(o, "value", p, 0);
  return { key, target, result: o.result as CompareResult, value };
}

function sessionTag(o: Fields): SessionTag | undefined {
  if (o.session === undefined) return undefined;
  const s = record(o.session, "session", "a map { clientId, seq, lowestUnacked }");
  const tag = {
    clientId: int(s, "clientId", "session.", 1),
    seq: int(s, "seq", "session.", 1),
    lowestUnacked: int(s, "lowestUnacked", "session.", 1),
  };
  if (tag.lowestUnacked > tag.seq) {
    throw new Invalid(invalidArgument("session.lowestUnacked", `at most seq (${tag.seq})`, tag.lowestUnacked));
  }
  return tag;
}

function coreCommand(o: Fields): CoreCommand {
  switch (o.op) {
    case "put": {
      const c: PutCommand = putOp(o, "");
      const f = fence(o, "");
      if (f) c.fence = f;
      return c;
    }
    case "delete": {
      const c: DeleteCommand = deleteOp(o, "");
      const f = fence(o, "");
      if (f) c.fence = f;
      return c;
    }
    case "range":
      return rangeOp(o, "");
    case "txn": {
      const c: TxnCommand = {
        op: "txn",
        compare: array(o, "compare", "").map((v, i) => compare(v, `compare[${i}]`)),
        success: array(o, "success", "").map((v, i) => txnOp(v, `success[${i}]`)),
        failure: array(o, "failure", "").map((v, i) => txnOp(v, `failure[${i}]`)),
      };
      const f = fence(o, "");
      if (f) c.fence = f;
      return c;
    }
    case "compact":
      return { op: "compact", revision: int(o, "revision", "", 1) };
    case "leaseGrant":
      return { op: "leaseGrant", ttlMs: int(o, "ttlMs", "", 1), grantedAt: int(o, "grantedAt", "", 0) };
    case "leaseRevoke":
      return { op: "leaseRevoke", id: int(o, "id", "", 1) };
    case "leaseExpire": {
      const ids = array(o, "ids", "").map((id, i) => int({ id }, "id", `ids[${i}].`, 1));
      return { op: "leaseExpire", ids };
    }
    case "leaseTimeToLive":
      return { op: "leaseTimeToLive", id: int(o, "id", "", 1) };
    case "leaseList":
      return { op: "leaseList" };
    case "registerClient":
      return { op: "registerClient", lease: int(o, "lease", "", 1) };
    case "alarmDisarm":
      return { op: "alarmDisarm" };
    case "setQuota":
      return { op: "setQuota", quotaBytes: int(o, "quotaBytes", "", 1) };
    default:
      throw new Error(`unreachable: op ${String(o.op)}`);
  }
}

/** Structural validation of an already-decoded command (also used by applyCommand for in-process callers). */
export function validateCommand(
  raw: unknown,
  extensions: ReadonlyMap<string, ExtensionValidator> = new Map(),
): Command | CommandError {
  if (!isRecord(raw)) return invalidArgument("command", "a map with an op field", raw);
  const op = raw.op;
  if (typeof op !== "string" || (!CORE_OPS.has(op) && !extensions.has(op))) {
    const known = [...CORE_OPS, ...extensions.keys()].join(", ");
    return commandError("MALFORMED_COMMAND", `op: expected one of ${known}, got ${describe(op)}`, { field: "op" });
  }
  try {
    let command: Command;
    if (CORE_OPS.has(op)) command = coreCommand(raw);
    else {
      const result = extensions.get(op)!(raw);
      if (isCommandError(result)) return result;
      command = result;
    }
    const tag = sessionTag(raw);
    if (tag !== undefined) command.session = tag;
    if (raw.actor !== undefined) {
      const actor = validateActor(raw.actor);
      if (isCommandError(actor)) return actor;
      command.actor = actor;
    }
    return command;
  } catch (e) {
    if (e instanceof Invalid) return e.error;
    throw e;
  }
}

export function isCommandError(v: unknown): v is CommandError {
  return isRecord(v) && typeof v.code === "string" && typeof v.message === "string" && !("op" in v);
}
