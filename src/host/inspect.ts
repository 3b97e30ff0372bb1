// Inspection of locks, elections and leases: who holds and who waits (in order, with tokens and leases), who
// leads and who campaigns, and which leases live with their keys and time left. Plain data, the same shape for
// the lockList/electionStatus/electionList/leaseList ops (ops.ts) and anything else that shows them (a
// dashboard): names and numbers, and an election value as bytes (as the `leader` op and observe pushes carry it).
//
// Listings are pages in name (or lease id) order: at most `limit` items, and no more items once the page holds
// ENTRY_BUDGET holders, waiters, candidates or keys (one lock or lease can hold 100 000 of them) — but always at
// least one item, so paging moves on. `after` continues after the last item of the previous page.

import type { Coordination, Leader, LockStatus } from "../locks/index.js";
import type { StateMachine } from "../statemachine/state-machine.js";

/** Items per page when the request names no limit, and the most it may name. */
export const DEFAULT_PAGE_ITEMS = 100;
export const MAX_PAGE_ITEMS = 1000;
/** A page stops growing once its items hold this many entries (holders, waiters, candidates, keys). */
export const ENTRY_BUDGET = 10_000;

export interface PageRequest<Cursor> {
  /** Only names starting with this ("" for all). */
  prefix?: string;
  /** Continue after this name or id (exclusive). */
  after?: Cursor;
  limit?: number;
}

export interface ElectionStatus {
  name: string;
  leader: Leader | null;
  /** Candidate leases in FIFO order; the first one leads. */
  candidates: number[];
}

export interface LeaseListing {
  id: number;
  ttlMs: number;
  /** Wall-clock ms at which the leader granted it. */
  grantedAt: number;
  /** Time left before the leader expires it unless kept alive (as the leader sees it). */
  remainingMs: number;
  keyCount: number;
  /** Its keys in key order, when asked for. */
  keys?: string[];
}

export function lockList(coord: Coordination, req: PageRequest<string> = {}): { locks: LockStatus[]; more: boolean } {
  const { items, more } = page(
    coord.lockNames(),
    req,
    (name) => coord.lockStatus(name),
    (l) => l.holders.length + l.waiters.length,
  );
  return { locks: items, more };
}

export function electionStatus(coord: Coordination, name: string): ElectionStatus {
  return { name, leader: coord.electionLeader(name), candidates: coord.electionCandidates(name) };
}

/** Every election remembered: with candidates, or idle (no leader) while its history is kept. */
export function electionList(
  coord: Coordination,
  req: PageRequest<string> = {},
): { elections: ElectionStatus[]; more: boolean } {
  const { items, more } = page(
    coord.electionNames(),
    req,
    (name) => electionStatus(coord, name),
    (e) => e.candidates.length,
  );
  return { elections: items, more };
}

/** Live leases in id order; `remainingMs(id)` is the leader's deadline (a lease it has none for shows its TTL). */
export function leaseList(
  sm: StateMachine,
  remainingMs: (id: number) => number | undefined,
  req: { after?: number; limit?: number; keys?: boolean } = {},
): { leases: LeaseListing[]; more: boolean } {
  const { items, more } = page(
    sm.leases().map((l) => l.id),
    { after: req.after, limit: req.limit },
    (id) => {
      const info = sm.leaseTimeToLive(id)!;
      const listing: LeaseListing = {
        id,
        ttlMs: info.ttlMs,
        grantedAt: info.grantedAt,
        remainingMs: Math.round(remainingMs(id) ?? info.ttlMs),
        keyCount: info.keys.length,
      };
      if (req.keys) listing.keys = info.keys;
      return listing;
    },
    (l) => l.keys?.length ?? 0,
  );
  return { leases: items, more };
}

/** The page of `sorted` (names or ids) that `req` asks for, each read with `read`. */
function page<K extends string | number, T>(
  sorted: K[],
  req: PageRequest<K>,
  read: (key: K) => T,
  entries: (item: T) => number,
): { items: T[]; more: boolean } {
  const prefix = req.prefix ?? "";
  const limit = req.limit ?? DEFAULT_PAGE_ITEMS;
  const items: T[] = [];
  let budget = ENTRY_BUDGET;
  // Names with the prefix are contiguous in sorted order, from the first name >= prefix.
  let i = prefix === "" ? 0 : bound(sorted, prefix as K, false);
  if (req.after !== undefined) i = Math.max(i, bound(sorted, req.after, true));
  for (; i < sorted.length; i++) {
    const key = sorted[i];
    if (typeof key === "string" && !key.startsWith(prefix)) break;
    if (items.length >= limit || (items.length > 0 && budget <= 0)) return { items, more: true };
    const item = read(key);
    items.push(item);
    budget -= entries(item);
  }
  return { items, more: false };
}

/** Index of the first element > `key` (`strict`) or >= `key` (binary search; `sorted` is ascending). */
function bound<K extends string | number>(sorted: K[], key: K, strict: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < key || (strict && sorted[mid] === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
