// A watch as an AsyncIterable of events that survives reconnects without losing or repeating events.
//
// Invariant: `next` is the lowest revision not yet delivered. Every event with revision >= next is delivered
// once, in order; after a reconnect (or a SLOW_CONSUMER / snapshot cancellation) the watch is re-created with
// `fromRevision: next`, and anything older that a member replays is dropped. One revision's events (a txn) are
// always pushed together, so advancing `next` per push never splits a revision.
//
// It never goes silent: if it cannot resume (history compacted past `next`, a non-retryable error, or no
// member reachable within the resume deadline after the connection was lost), the iterator throws a ConcordError. Reconnecting is
// ResumableStream's; what to resume from and what to drop is here.

import type { Connection } from "./connection.js";
import { ConcordError, clientError } from "./errors.js";
import { decodeKv, type KeyValue } from "./kv.js";
import { ResumableStream, type ResumableStreamOptions } from "./resumable-stream.js";
import { checkKey, checkPositiveInt } from "./values.js";

export type WatchEvent =
  | { type: "put"; key: string; revision: number; kv: KeyValue; prevKv?: KeyValue }
  | { type: "delete"; key: string; revision: number; prevKv?: KeyValue };

export interface WatchOptions extends ResumableStreamOptions {
  /** Watch every key starting with the given key. */
  prefix?: boolean;
  /** Deliver history from this revision on (default: only changes after the watch starts). */
  fromRevision?: number;
  /** Events carry the record they replaced (`prevKv`: absent when a put created the key). Default false. */
  prevKv?: boolean;
}

interface WirePushEvent {
  events?: {
    type: "put" | "delete";
    revision: number;
    kv?: Parameters<typeof decodeKv>[0];
    key?: string;
    prevKv?: Parameters<typeof decodeKv>[0];
  }[];
  error?: { code: string; message: string; compactRevision?: number };
}

export class Watch extends ResumableStream<WatchEvent, { stream: number; revision: number }, WirePushEvent> {
  private readonly key: string;
  private readonly prefix: boolean;
  private readonly prevKv: boolean;
  /** Lowest revision not yet delivered; 0 until the first subscription says where "now" is. */
  private next: number;

  constructor(conn: Connection, key: string, opts: WatchOptions = {}) {
    super(conn, { open: "watch", close: "unwatch" }, opts);
    this.key = checkKey("key", key, !!opts.prefix);
    this.prefix = !!opts.prefix;
    this.prevKv = !!opts.prevKv;
    this.next = opts.fromRevision === undefined ? 0 : checkPositiveInt("fromRevision", opts.fromRevision);
    this.start();
  }

  /** The lowest revision not delivered yet (resume point). */
  get nextRevision(): number {
    return this.next;
  }

  protected describe(): string {
    return `watch on ${this.prefix ? "prefix " : ""}${JSON.stringify(this.key)}`;
  }

  protected openArgs(): Record<string, unknown> {
    const args: Record<string, unknown> = { key: this.key };
    if (this.prefix) args.prefix = true;
    if (this.prevKv) args.prevKv = true;
    if (this.next > 0) args.fromRevision = this.next;
    return args;
  }

  protected override opened(reply: { revision: number }): void {
    // A watch without fromRevision starts at "now": the reply's revision is already history.
    if (this.next === 0) this.next = reply.revision + 1;
  }

  protected override openFailed(err: ConcordError): ConcordError {
    if (err.code !== "COMPACTED") return err;
    return new ConcordError({
      code: "COMPACTED",
      message: `watch on ${JSON.stringify(this.key)} cannot resume at revision ${this.next}: ${err.message}`,
      compactRevision: err.compactRevision,
    });
  }

  protected onEvent(event: WirePushEvent): void {
    if (!Array.isArray(event.events)) {
      this.fail(clientError("WATCH_BROKEN", "a watch push carried neither events nor an error"));
      return;
    }
    const floor = this.next;
    let top = floor - 1;
    for (const e of event.events) {
      if (e.revision < floor) continue; // replayed by a resume: already delivered
      if (e.type === "put" && e.kv) {
        const kv = decodeKv(e.kv);
        const ev: WatchEvent = { type: "put", key: kv.key, revision: e.revision, kv };
        if (e.prevKv) ev.prevKv = decodeKv(e.prevKv);
        this.q.push(ev);
      } else {
        const ev: WatchEvent = { type: "delete", key: e.key ?? "", revision: e.revision };
        if (e.prevKv) ev.prevKv = decodeKv(e.prevKv);
        this.q.push(ev);
      }
      if (e.revision > top) top = e.revision;
    }
    if (top + 1 > this.next) this.next = top + 1;
  }
}
