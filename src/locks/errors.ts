// Typed errors of locks and elections. Like the state machine's, they are plain data (part of a command's
// deterministic result, recorded in sessions and sent to clients verbatim).

import { commandError, SnapshotFormatError, type CommandError, type ErrorCode } from "../statemachine/errors.js";

export type LockErrorCode =
  /** lockRelease with a token that is not a current holder's token of that lock: nothing changed. */
  | "LOCK_NOT_HELD"
  /** lockAcquire with a `limit` other than the one the lock was created with (while it has holders or waiters). */
  | "LOCK_LIMIT_MISMATCH"
  /** The lock's waiter queue, or an election's candidate queue, is at its configured maximum. */
  | "QUEUE_FULL"
  /** proclaim / resign with a token that is not the election's current leadership token: nothing changed. */
  | "NOT_ELECTION_LEADER";

export function lockError(code: LockErrorCode | ErrorCode, message: string): CommandError {
  return commandError(code, message);
}

export function leaseNotFound(lease: number): CommandError {
  return commandError("LEASE_NOT_FOUND", `lease ${lease} does not exist (never granted, revoked or expired)`);
}

/** A damaged or foreign snapshot section is corrupt state, not user input: restore refuses it loudly. */
export function checkSnapshot(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new SnapshotFormatError(typeof message === "string" ? message : message());
}
