// Space accounting: how many bytes the replicated state holds, for the storage quota (limits.quotaBytes).
//
// The figure is a deterministic function of the logical state — what a snapshot would hold — not a measurement of
// the heap: every replica, whether it applied the log or restored a snapshot, computes the same number, so every
// replica refuses the same writes. Each part of the state keeps its own total up to date as it changes (KvStore,
// WatchHistory, SessionTable, the lease count, each CommandHandler's sizeBytes()); StateMachine.sizeBytes adds
// them up in O(1).
//
// Each stored item costs its payload (key and value bytes, names, recorded outcomes) plus a fixed overhead that
// stands for the objects, map entries and index slots around it, so a flood of tiny items is bounded as well as a
// few huge ones. The overheads are round estimates of the V8 heap cost; they are part of the replicated
// semantics (changing one changes where the quota bites), hence constants here, not configuration.
//
// What is counted:
//  - a key record: RECORD_OVERHEAD + UTF-8 key bytes + value bytes;
//  - a held watch event: EVENT_OVERHEAD + the record it superseded (its prevKv). A record is either current (in
//    the store) or the prevKv of exactly one later event, so it is counted once: a delete or an overwrite moves
//    its bytes from the store to the history, and only compaction (or the history's own bounds) frees them;
//  - a lease: LEASE_OVERHEAD; a client session: SESSION_OVERHEAD + the outcomes it holds (dataBytes);
//  - extension state (locks, elections): what the handler reports.

import type { KeyValue } from "./commands.js";
import { utf8Length } from "./limits.js";

export const RECORD_OVERHEAD = 256;
export const EVENT_OVERHEAD = 64;
export const LEASE_OVERHEAD = 256;
export const SESSION_OVERHEAD = 256;
/** A lock, an election: the entry and its maps. */
export const NAMED_OVERHEAD = 256;
/** A lock holder or waiter, an election candidate or a recorded leadership change. */
export const ENTRY_OVERHEAD = 64;

export function recordBytes(kv: KeyValue): number {
  return RECORD_OVERHEAD + utf8Length(kv.key) + kv.value.length;
}

/** A held watch event: its own overhead plus the record it superseded (see the header). */
export function eventBytes(event: { prevKv?: KeyValue }): number {
  return EVENT_OVERHEAD + (event.prevKv === undefined ? 0 : recordBytes(event.prevKv));
}

/**
 * Bytes of plain data (recorded outcomes): a function of the value alone, so the same outcome counts the same
 * after a snapshot's msgpack round trip. null and undefined count nothing, and neither do properties holding
 * them (msgpack may turn one into the other, or drop the property).
 */
export function dataBytes(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === "string") return 16 + v.length;
  if (typeof v !== "object") return 8;
  if (v instanceof Uint8Array) return 64 + v.length;
  if (Array.isArray(v)) {
    let n = 32 + 8 * v.length;
    for (const item of v) n += dataBytes(item);
    return n;
  }
  // for-in over a plain object's own keys: the same keys as Object.entries without its array of pairs (this
  // runs for every recorded outcome).
  let n = 48;
  for (const key in v) {
    if (!Object.hasOwn(v, key)) continue;
    const item = (v as Record<string, unknown>)[key];
    if (item === null || item === undefined) continue;
    n += 16 + key.length + dataBytes(item);
  }
  return n;
}
