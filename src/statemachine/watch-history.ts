// The bounded watch history: the events of the most recent revisions, so a watcher that lost its stream can
// resume from any revision still held. Older revisions answer COMPACTED carrying the compaction revision.
//
// Invariants: events are in revision order; every held event has revision > compactRevision; a revision is
// either held whole or not at all (trimming drops whole revisions, so a resume never sees half a txn).
// Because every revision bump writes at least one event, "revisions held" = (compactRevision, revision].

import { assert } from "../assert.js";
import type { KeyValue } from "./commands.js";
import { commandError, type CommandError } from "./errors.js";
import { eventBytes } from "./space.js";

export type WatchEvent =
  | { type: "put"; revision: number; kv: KeyValue; prevKv?: KeyValue }
  | { type: "delete"; revision: number; key: string; prevKv: KeyValue };

export interface WatchFilter {
  key: string;
  prefix?: boolean;
}

export class WatchHistory {
  /** Held events are events[head..]; the consumed front is cut off lazily to keep trimming O(1) amortized. */
  private events: WatchEvent[] = [];
  private head = 0;
  private compacted = 0;
  /** Space the held events take (space.ts): each holds the record it superseded until it is dropped. */
  private heldBytes = 0;

  constructor(
    private readonly revisionsKept: number,
    private readonly maxEvents: number,
  ) {}

  static restore(
    revisionsKept: number,
    maxEvents: number,
    compactRevision: number,
    events: WatchEvent[],
  ): WatchHistory {
    const history = new WatchHistory(revisionsKept, maxEvents);
    history.compacted = compactRevision;
    history.events = events;
    for (let i = 0; i < events.length; i++) {
      history.heldBytes += eventBytes(events[i]);
      assert(events[i].revision > compactRevision, "watch history: event at or below the compaction revision");
      assert(i === 0 || events[i - 1].revision <= events[i].revision, "watch history: events out of order");
    }
    return history;
  }

  get compactRevision(): number {
    return this.compacted;
  }

  get length(): number {
    return this.events.length - this.head;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  append(event: WatchEvent): void {
    const last = this.events[this.events.length - 1];
    assert(last === undefined || last.revision <= event.revision, "watch history: append out of revision order");
    assert(event.revision > this.compacted, "watch history: append at or below the compaction revision");
    this.events.push(event);
    this.heldBytes += eventBytes(event);
  }

  /** Called once a revision is complete: drops revisions beyond the configured window or event budget. */
  trim(currentRevision: number): void {
    if (currentRevision - this.revisionsKept > this.compacted) this.compact(currentRevision - this.revisionsKept);
    while (this.length > this.maxEvents) this.compact(this.events[this.head].revision);
  }

  /** Forgets every event at or below `revision`. */
  compact(revision: number): void {
    assert(revision >= this.compacted, "watch history: compaction moved backwards");
    this.compacted = revision;
    while (this.head < this.events.length && this.events[this.head].revision <= revision) {
      this.heldBytes -= eventBytes(this.events[this.head]);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }

  /** Events with revision >= fromRevision matching `filter`, at most `limit` (0: all). */
  since(fromRevision: number, filter?: WatchFilter, limit = 0): WatchEvent[] | CommandError {
    if (fromRevision <= this.compacted) {
      return commandError(
        "COMPACTED",
        `revision ${fromRevision} is compacted: history starts after revision ${this.compacted}`,
        { compactRevision: this.compacted },
      );
    }
    let lo = this.head;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid].revision < fromRevision) lo = mid + 1;
      else hi = mid;
    }
    const out: WatchEvent[] = [];
    for (let i = lo; i < this.events.length && (limit === 0 || out.length < limit); i++) {
      const event = this.events[i];
      if (filter === undefined || matches(event, filter)) out.push(event);
    }
    return out;
  }

  held(): WatchEvent[] {
    return this.events.slice(this.head);
  }
}

export function eventKey(event: WatchEvent): string {
  return event.type === "put" ? event.kv.key : event.key;
}

function matches(event: WatchEvent, filter: WatchFilter): boolean {
  const key = eventKey(event);
  return filter.prefix ? key.startsWith(filter.key) : key === filter.key;
}
