// What the dashboard's JSON endpoints answer, built from one member's in-memory state between applies: its own
// status with the leader changes it saw, and its applied view of locks, elections, leases and keys. Reads are
// local (serializable): a follower's view may trail the leader by its apply lag. Lease deadlines live only on
// the leader (a new leader restarts every TTL at its election), so only the leader's view has time left.

import { authorize, type AccessRequest, type TokenEntry } from "../../host/auth.js";
import type { Replica } from "../../host/replica.js";
import type { MemberStatus } from "../../host/status.js";
import type { LeaderChange } from "./leader-history.js";

/** Most locks, elections and leases one answer lists (the rest are counted): a page, not a dump. */
export const LIST_LIMIT = 200;
/** Keys per page of the key browser: the default and the most a request may ask for. */
export const KEYS_DEFAULT = 50;
export const KEYS_MAX = 500;
/** Characters of a value shown. */
const PREVIEW_CHARS = 200;

export interface MemberView {
  status: MemberStatus;
  leaderHistory: readonly LeaderChange[];
  /** This member's wall clock (ms) when it answered. */
  now: number;
}

/** A value as text when it is UTF-8, else as hex; `bytes` is its full length. */
export interface ShownValue {
  text: string;
  encoding: "utf8" | "hex";
  bytes: number;
  truncated: boolean;
}

export interface LeaseTime {
  lease: number;
  /** Milliseconds until the lease expires unless kept alive; null when this member does not lead. */
  remainingMs: number | null;
}

export interface CoordinationView {
  /** The member whose applied state this is, whether it leads (only a leader knows lease deadlines), and its index. */
  member: string;
  leader: boolean;
  applied: number;
  locks: { name: string; limit: number; holders: (LeaseTime & { token: number })[]; waiters: LeaseTime[] }[];
  elections: { name: string; leader: (LeaseTime & { token: number; value: ShownValue }) | null; candidates: number[] }[];
  leases: (LeaseTime & { ttlMs: number })[];
  /** Totals, and how many names the viewer's token may not read (left out of the lists). */
  counts: { locks: number; elections: number; leases: number; hiddenLocks: number; hiddenElections: number };
  keys: KeysView;
}

export type KeysView =
  | { prefix: string; revision: number; kvs: ShownKey[]; more: boolean; cursor?: string }
  | { prefix: string; error: string };

export interface ShownKey {
  key: string;
  value: ShownValue;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

export function memberView(replica: Replica, leaderHistory: readonly LeaderChange[], now: number): MemberView {
  return { status: replica.status(), leaderHistory, now };
}

export interface KeysQuery {
  prefix: string;
  limit: number;
  /** Continue after this key (the previous page's cursor). */
  after?: string;
}

/**
 * The member's coordination state and one page of keys, holding back what `viewer` may not read (undefined: no
 * tokens configured, everything is readable).
 */
export function coordinationView(replica: Replica, keys: KeysQuery, viewer: TokenEntry | undefined): CoordinationView {
  const may = (kind: AccessRequest["kind"], name: string) => viewer === undefined || authorize(viewer, { kind, name, access: "read" });
  const remaining = (lease: number): number | null => {
    const ms = replica.leaseRemainingMs(lease);
    return ms === undefined ? null : Math.max(0, Math.round(ms));
  };
  const coord = replica.coord;

  const lockNames = coord.lockNames();
  const readableLocks = lockNames.filter((n) => may("lock", n));
  const locks = readableLocks.slice(0, LIST_LIMIT).map((name) => {
    const s = coord.lockStatus(name);
    return {
      name,
      limit: s.limit,
      holders: s.holders.map((h) => ({ lease: h.lease, token: h.token, remainingMs: remaining(h.lease) })),
      waiters: s.waiters.map((lease) => ({ lease, remainingMs: remaining(lease) })),
    };
  });

  const electionNames = coord.electionNames();
  const readableElections = electionNames.filter((n) => may("election", n));
  const elections = readableElections.slice(0, LIST_LIMIT).map((name) => {
    const l = coord.electionLeader(name);
    return {
      name,
      leader: l === null ? null : { lease: l.lease, token: l.token, value: showValue(l.value), remainingMs: remaining(l.lease) },
      candidates: coord.electionCandidates(name),
    };
  });

  const allLeases = replica.sm.leases();
  const leases = allLeases.slice(0, LIST_LIMIT).map((l) => ({ lease: l.id, ttlMs: l.ttlMs, remainingMs: remaining(l.id) }));

  return {
    member: replica.id,
    leader: replica.isLeader,
    applied: replica.appliedTo,
    locks,
    elections,
    leases,
    counts: {
      locks: readableLocks.length,
      elections: readableElections.length,
      leases: allLeases.length,
      hiddenLocks: lockNames.length - readableLocks.length,
      hiddenElections: electionNames.length - readableElections.length,
    },
    keys: may("key", keys.prefix) ? keyPage(replica, keys) : { prefix: keys.prefix, error: `this token may not read keys under ${JSON.stringify(keys.prefix)}` },
  };
}

function keyPage(replica: Replica, q: KeysQuery): KeysView {
  const r = replica.sm.range({ op: "range", key: q.prefix, prefix: true, limit: q.limit, ...(q.after !== undefined ? { after: q.after } : {}) });
  if ("code" in r) return { prefix: q.prefix, error: r.message };
  return {
    prefix: q.prefix,
    revision: r.revision,
    more: r.more,
    ...(r.cursor !== undefined ? { cursor: r.cursor } : {}),
    kvs: r.kvs.map((kv) => ({
      key: kv.key,
      value: showValue(kv.value),
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      version: kv.version,
      lease: kv.lease,
    })),
  };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function showValue(bytes: Uint8Array): ShownValue {
  try {
    const text = strictUtf8.decode(bytes);
    return { text: text.slice(0, PREVIEW_CHARS), encoding: "utf8", bytes: bytes.length, truncated: text.length > PREVIEW_CHARS };
  } catch {
    const shown = bytes.subarray(0, PREVIEW_CHARS / 2);
    return { text: Buffer.from(shown).toString("hex"), encoding: "hex", bytes: bytes.length, truncated: shown.length < bytes.length };
  }
}
