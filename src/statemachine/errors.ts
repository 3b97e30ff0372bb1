// Typed, serializable errors of the state machine. They are plain data (not Error instances) because they are
// part of a command's deterministic result: recorded in client sessions, written into snapshots and sent to
// clients verbatim. Reads never fail with "not found": a missing key is an empty result.

export type ErrorCode =
  /** A field is missing, has the wrong type or an out-of-range value; `field` names it. */
  | "INVALID_ARGUMENT"
  /** The command bytes are not a command this version understands (bad version byte, not msgpack, unknown op). */
  | "MALFORMED_COMMAND"
  | "KEY_TOO_LARGE"
  | "VALUE_TOO_LARGE"
  | "TXN_TOO_LARGE"
  | "TOO_MANY_KEYS"
  | "LEASE_NOT_FOUND"
  /**
   * A watch or compact asked for a revision at or below the compaction revision, or a read for one below it;
   * `compactRevision` says which (the oldest revision a read can still ask for).
   */
  | "COMPACTED"
  /** A compact or a read asked for a revision greater than the current one. */
  | "FUTURE_REVISION"
  /** No session with that client id: it ended with its lease, or was never registered. */
  | "SESSION_EXPIRED"
  /** A `seq` below the session's lowestUnacked whose response is no longer held: the client acknowledged it. */
  | "STALE_SEQ"
  /** A session holds its maximum number of unacknowledged responses; the client must acknowledge some first. */
  | "SESSION_BUSY"
  /** A fenced write whose fence is not the lock's current token (or no lock support is installed). */
  | "FENCED"
  /** Codes of extension handlers (src/locks: LOCK_NOT_HELD, NOT_ELECTION_LEADER, …). */
  | (string & {});

export interface CommandError {
  readonly code: ErrorCode;
  readonly message: string;
  /** INVALID_ARGUMENT: the offending field, as a path such as `success[2].key`. */
  readonly field?: string;
  /** COMPACTED: the compaction revision; resume from `compactRevision + 1` after a full re-read. */
  readonly compactRevision?: number;
}

export function commandError(
  code: ErrorCode,
  message: string,
  extra?: { field?: string; compactRevision?: number },
): CommandError {
  if (extra === undefined) return { code, message };
  const error: { code: ErrorCode; message: string; field?: string; compactRevision?: number } = { code, message };
  if (extra.field !== undefined) error.field = extra.field;
  if (extra.compactRevision !== undefined) error.compactRevision = extra.compactRevision;
  return error;
}

export function invalidArgument(field: string, accepted: string, got: unknown): CommandError {
  return commandError("INVALID_ARGUMENT", `${field}: expected ${accepted}, got ${describe(got)}`, { field });
}

/** A short, bounded description of a bad value for error messages (never echoes megabytes back). */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing (field missing)";
  if (value === null) return "null";
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "string") return value.length > 40 ? `a string of ${value.length} chars` : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return `${typeof value} ${String(value)}`;
  return typeof value;
}

/** Thrown only by restore() on a damaged or foreign snapshot: that is corrupt state, not user input. */
export class SnapshotFormatError extends Error {
  constructor(message: string) {
    super(`invalid state machine snapshot: ${message}`);
    this.name = "SnapshotFormatError";
  }
}
