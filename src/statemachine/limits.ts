// Size and count limits. They are configuration, but they take part in apply(), so every replica of a
// cluster must run with the same limits: a replica with other limits could accept a write the others refuse.

import { invalidArgument, type CommandError } from "./errors.js";

export interface Limits {
  /** Largest key, in UTF-8 bytes. */
  maxKeyBytes: number;
  /** Largest value, in bytes. */
  maxValueBytes: number;
  /** Most compares, and most ops per branch, in one txn. */
  maxTxnOps: number;
  /** Most keys the store holds; a put that would create one more answers TOO_MANY_KEYS. */
  maxKeys: number;
  /** The watch history keeps events of the last `historyRevisions` revisions... */
  historyRevisions: number;
  /** ...but never more than `historyMaxEvents` events (a large prefix delete compacts early). */
  historyMaxEvents: number;
  /** Most unacknowledged responses a client session holds. */
  maxSessionResponses: number;
  /** Accepted lease TTL range, in ms. */
  minLeaseTtlMs: number;
  maxLeaseTtlMs: number;
  /**
   * The storage quota a new state machine starts with (and one restored from a format-1 snapshot): once the
   * state holds this many bytes (as space.ts counts them), the NO_SPACE alarm is raised and writes that would add
   * to the state are refused until it is disarmed (see state-machine.ts). Unlike the other limits, the quota in
   * force is replicated state: setQuota commands change it, and snapshots carry it.
   */
  quotaBytes: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxKeyBytes: 4096,
  maxValueBytes: 1 << 20,
  maxTxnOps: 128,
  maxKeys: 10_000_000,
  historyRevisions: 10_000,
  historyMaxEvents: 100_000,
  maxSessionResponses: 1024,
  minLeaseTtlMs: 100,
  maxLeaseTtlMs: 7 * 24 * 3600 * 1000,
  quotaBytes: 2 * 1024 ** 3, // etcd's default --quota-backend-bytes
});

/** Merges overrides onto the defaults; returns an error naming the first bad field. */
export function resolveLimits(overrides: Partial<Limits> = {}): Limits | CommandError {
  const limits: Limits = { ...DEFAULT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      return invalidArgument(`limits.${name}`, "a positive safe integer", value);
    }
  }
  if (limits.minLeaseTtlMs > limits.maxLeaseTtlMs) {
    return invalidArgument(
      "limits.minLeaseTtlMs",
      `at most maxLeaseTtlMs (${limits.maxLeaseTtlMs})`,
      limits.minLeaseTtlMs,
    );
  }
  return limits;
}

/**
 * UTF-8 length of a string, or -1 when it holds a lone surrogate. Keys with lone surrogates are refused:
 * they cannot be encoded in UTF-8, so they would change on the way through a snapshot.
 */
export function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (next < 0xdc00 || next > 0xdfff) return -1;
      bytes += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return -1;
    else bytes += 3;
  }
  return bytes;
}
