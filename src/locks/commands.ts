// The lock and election ops, their results and the events they emit. Validators are structural (types,
// ranges, sizes from CoordinationLimits) and run when a command is decoded, before it reaches apply().

import { Invalid, extensionValidator as validator, type ExtensionCommand, type ExtensionValidator } from "../statemachine/commands.js";
import { invalidArgument } from "../statemachine/errors.js";
import { utf8Length } from "../statemachine/limits.js";
import type { CoordinationLimits } from "./limits.js";

/** Acquire `name` for `lease`. `wait: false` is a try-lock; `limit > 1` makes a counting semaphore. */
export interface LockAcquireCommand extends ExtensionCommand {
  op: "lockAcquire";
  name: string;
  lease: number;
  /** Queue FIFO when the lock is full (default true). */
  wait: boolean;
  /** Holders allowed at once (default 1). */
  limit: number;
}
/** Release the hold that was granted with `token`. */
export interface LockReleaseCommand extends ExtensionCommand {
  op: "lockRelease";
  name: string;
  token: number;
  /**
   * The holder's lease. Optional: needed only when several semaphore holders share `token` (granted by one
   * entry that ended several leases); when given it must match.
   */
  lease?: number;
}
export interface LockStatusCommand extends ExtensionCommand {
  op: "lockStatus";
  name: string;
}
export interface ElectionCampaignCommand extends ExtensionCommand {
  op: "electionCampaign";
  name: string;
  value: Uint8Array;
  lease: number;
}
export interface ElectionProclaimCommand extends ExtensionCommand {
  op: "electionProclaim";
  name: string;
  token: number;
  value: Uint8Array;
}
export interface ElectionResignCommand extends ExtensionCommand {
  op: "electionResign";
  name: string;
  token: number;
}
export interface ElectionLeaderCommand extends ExtensionCommand {
  op: "electionLeader";
  name: string;
}

// ------------------------------------------------------------------------------------------------------------
// Results

export type AcquireResult =
  | { granted: true; token: number }
  | { granted: false; queued: number }
  /** wait: false on a full lock: the oldest current holder and its token. */
  | { granted: false; held: true; holder: number; token: number };

export interface LockHolder {
  lease: number;
  token: number;
}
export interface LockStatus {
  name: string;
  /** 1 for a plain lock; 0 when the lock does not exist (nobody holds or waits). */
  limit: number;
  /** In grant order (tokens non-decreasing). */
  holders: LockHolder[];
  /** Leases in FIFO order. */
  waiters: number[];
}
export interface ReleaseResult {
  /** Leases granted by this release (at most one). */
  granted: LockHolder[];
}

export interface Leader {
  lease: number;
  value: Uint8Array;
  /** Log index at which this lease became leader: strictly increasing per election. */
  token: number;
}
export type CampaignResult = { leader: true; token: number } | { leader: false; position: number };

/** Why the leadership record changed. */
export type LeadershipCause = "elected" | "proclaimed" | "resigned" | "leaseEnded";

/** One entry of an election's observe stream; `index` is the log index of the change, strictly increasing. */
export interface LeadershipChange {
  index: number;
  leader: Leader | null;
  cause: LeadershipCause;
}

// ------------------------------------------------------------------------------------------------------------
// Events (wrapped by the state machine as { type: "extension", section, event })

export type CoordinationEvent =
  | { kind: "lockGranted"; name: string; lease: number; token: number }
  | { kind: "lockReleased"; name: string; lease: number; token: number; reason: "released" | "leaseEnded" }
  | { kind: "leadershipGained"; election: string; lease: number; token: number }
  | { kind: "leadershipLost"; election: string; lease: number; token: number; reason: "resigned" | "leaseEnded" }
  | { kind: "leaderChanged"; election: string; leader: Leader | null; index: number; cause: LeadershipCause };

// ------------------------------------------------------------------------------------------------------------
// Validation

type Fields = Record<string, unknown>;

function name(o: Fields, limits: CoordinationLimits): string {
  const v = o.name;
  if (typeof v !== "string" || v.length === 0) throw new Invalid(invalidArgument("name", "a non-empty string", v));
  const bytes = utf8Length(v);
  if (bytes < 0) throw new Invalid(invalidArgument("name", "a string without lone surrogates (valid UTF-16)", v));
  if (bytes > limits.maxNameBytes) {
    throw new Invalid(
      invalidArgument("name", `at most ${limits.maxNameBytes} UTF-8 bytes`, `a name of ${bytes} bytes`),
    );
  }
  return v;
}
function int(o: Fields, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new Invalid(invalidArgument(field, range, v));
  }
  return v;
}
function value(o: Fields, limits: CoordinationLimits): Uint8Array {
  const v = o.value;
  if (!(v instanceof Uint8Array)) throw new Invalid(invalidArgument("value", "bytes (Uint8Array / msgpack bin)", v));
  if (v.length > limits.maxValueBytes) {
    throw new Invalid(invalidArgument("value", `at most ${limits.maxValueBytes} bytes`, v));
  }
  return v.slice(); // kept by the election: its own copy, not a view of the entry (decodeCommand)
}

export function lockValidators(limits: CoordinationLimits): Record<string, ExtensionValidator> {
  return {
    lockAcquire: validator((o): LockAcquireCommand => {
      const wait = o.wait === undefined ? true : o.wait;
      if (typeof wait !== "boolean") throw new Invalid(invalidArgument("wait", "a boolean", wait));
      const limit = o.limit === undefined ? 1 : int(o, "limit", 1, limits.maxSemaphoreLimit);
      return { op: "lockAcquire", name: name(o, limits), lease: int(o, "lease", 1), wait, limit };
    }),
    lockRelease: validator((o): LockReleaseCommand => {
      const c: LockReleaseCommand = { op: "lockRelease", name: name(o, limits), token: int(o, "token", 1) };
      if (o.lease !== undefined) c.lease = int(o, "lease", 1);
      return c;
    }),
    lockStatus: validator((o): LockStatusCommand => ({ op: "lockStatus", name: name(o, limits) })),
  };
}

export function electionValidators(limits: CoordinationLimits): Record<string, ExtensionValidator> {
  return {
    electionCampaign: validator((o): ElectionCampaignCommand => ({
      op: "electionCampaign",
      name: name(o, limits),
      value: value(o, limits),
      lease: int(o, "lease", 1),
    })),
    electionProclaim: validator((o): ElectionProclaimCommand => ({
      op: "electionProclaim",
      name: name(o, limits),
      token: int(o, "token", 1),
      value: value(o, limits),
    })),
    electionResign: validator((o): ElectionResignCommand => ({
      op: "electionResign",
      name: name(o, limits),
      token: int(o, "token", 1),
    })),
    electionLeader: validator((o): ElectionLeaderCommand => ({ op: "electionLeader", name: name(o, limits) })),
  };
}
