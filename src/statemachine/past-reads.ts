// Reads at a past revision, answered from the current records and the watch history — no MVCC store.
//
// Why this is exact: every revision bump appends its events to the history, and every event carries the record it
// superseded (a put's prevKv when the key existed, a delete's prevKv always). So a key's record at revision R is
// the record the first event after R on that key superseded — or, if no event after R touched the key, its current
// record. The history holds every revision in (compactRevision, current] whole (watch-history.ts), so any
// R ≥ compactRevision can be answered, and memory stays what the history policy already keeps.
//
// Cost: one pass over the events after R that match the key or prefix, plus the current keys of one page.

import { assert } from "../assert.js";
import type { KeyValue, RangeOp } from "./commands.js";
import type { KvStore } from "./kv.js";
import { eventKey, type WatchEvent, type WatchHistory } from "./watch-history.js";

export interface RangePage {
  kvs: KeyValue[];
  more: boolean;
  cursor?: string;
}

/** The record each key touched after `revision` had at `revision` (undefined: absent then). */
function recordsBefore(events: readonly WatchEvent[]): Map<string, KeyValue | undefined> {
  const before = new Map<string, KeyValue | undefined>();
  for (const event of events) {
    const key = eventKey(event);
    if (!before.has(key)) before.set(key, event.prevKv);
  }
  return before;
}

/**
 * One page of `op` as the store was at `revision`. The caller has checked compactRevision ≤ revision < the
 * revision after the command being applied (events of a txn's own earlier writes are in the history already).
 */
export function rangeAt(kv: KvStore, history: WatchHistory, op: RangeOp, revision: number): RangePage {
  const events = history.since(revision + 1, { key: op.key, prefix: op.prefix });
  assert(Array.isArray(events), () => `rangeAt: revision ${revision} is compacted (the caller checks)`);
  const before = recordsBefore(events);
  const visible = (key: string) => op.after === undefined || key > op.after;

  if (!op.prefix) {
    const kv0 = before.has(op.key) ? before.get(op.key) : kv.get(op.key);
    return { kvs: kv0 !== undefined && visible(op.key) ? [kv0] : [], more: false };
  }

  // Merge two sorted streams: the keys that changed after `revision` (their old records) and the current keys
  // that did not change (their current records are the old ones).
  const changed = [...before.keys()].filter(visible).sort();
  const current = kv.keysWithPrefix(op.key, op.after);
  const limit = op.limit ?? 0;
  const kvs: KeyValue[] = [];
  let c = 0;
  let next = current.next();
  for (;;) {
    let record: KeyValue | undefined;
    if (c < changed.length && (next.done || changed[c] <= next.value)) {
      if (!next.done && changed[c] === next.value) next = current.next(); // the old record wins
      record = before.get(changed[c++]);
    } else if (!next.done) {
      record = kv.get(next.value);
      next = current.next();
    } else break;
    if (record === undefined) continue; // created after `revision`, or absent at it
    if (limit > 0 && kvs.length === limit) return { kvs, more: true, cursor: kvs[kvs.length - 1].key };
    kvs.push(record);
  }
  return { kvs, more: false };
}
