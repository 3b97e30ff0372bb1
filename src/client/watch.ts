// A watch as an AsyncIterable of events that survives reconnects without losing or repeating events.
//
// Invariant: `next` is the lowest revision not yet delivered. Every event with revision >= next is delivered
// once, in order; after a reconnect (or a SLOW_CONSUMER / snapshot cancellation) the watch is re-created with
// `fromRevision: next`, and anything older that a member replays is dropped. One revision's events (a txn) are
// always pushed together, so advancing `next` per push never splits a revision.
//
// It never goes silent: if it cannot resume (history compacted past `next`, a non-retryable error, or no
// member reachable within the resume deadline), the iterator throws a ConcordError.

import type { Connection } from "./connection.js";
import { ConcordError, clientError, toConcordError } from "./errors.js";
import { decodeKv, type KeyValue } from "./kv.js";
import { checkKey, checkPositiveInt } from "./values.js";
import { PushQueue } from "./push-queue.js";

export type WatchEvent =
  | { type: "put"; key: string; revision: number; kv: KeyValue; prevKv?: KeyValue }
  | { type: "delete"; key: string; revision: number; prevKv?: KeyValue };

export interface WatchOptions {
  /** Watch every key starting with the given key. */
  prefix?: boolean;
  /** Deliver history from this revision on (default: only changes after the watch starts). */
  fromRevision?: number;
  /** How long to keep trying to resume after a disconnect before failing (ms). Default: the client's timeoutMs × 3. */
  resumeTimeoutMs?: number;
  signal?: AbortSignal;
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

export class Watch implements AsyncIterable<WatchEvent> {
  private readonly key: string;
  private readonly prefix: boolean;
  /** Lowest revision not yet delivered; 0 until the first subscription says where "now" is. */
  private next: number;
  private readonly q = new PushQueue<WatchEvent>();
  private stream: { socketId: number; id: number } | null = null;
  private subscribing = false;
  private resubscribeWanted = false;
  private readonly offReconnect: () => void;
  private readonly resumeTimeoutMs: number;
  private readonly started: Promise<void>;

  constructor(
    private readonly conn: Connection,
    key: string,
    opts: WatchOptions = {},
  ) {
    this.key = checkKey("key", key, !!opts.prefix);
    this.prefix = !!opts.prefix;
    this.next = opts.fromRevision === undefined ? 0 : checkPositiveInt("fromRevision", opts.fromRevision);
    this.resumeTimeoutMs = opts.resumeTimeoutMs ?? conn.timeoutMs * 3;
    this.offReconnect = conn.onReconnect(() => this.resubscribe());
    opts.signal?.addEventListener("abort", () => void this.close(), { once: true });
    this.started = this.subscribe();
  }

  /** Resolves once the watch is registered on a member (events after this point are seen). */
  async ready(): Promise<void> {
    await this.started;
    if (this.q.error) throw this.q.error;
  }

  /** The lowest revision not delivered yet (resume point). */
  get nextRevision(): number {
    return this.next;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    try {
      yield* this.q.drain();
    } finally {
      await this.close();
    }
  }

  /** Cancels the watch; the iterator ends after delivering what is queued. */
  async close(): Promise<void> {
    if (this.q.ended) return;
    this.q.end();
    this.offReconnect();
    const s = this.stream;
    this.stream = null;
    if (s && s.socketId === this.conn.socketId) {
      this.conn.unregisterStream(s.socketId, s.id);
      await this.conn.call("unwatch", { stream: s.id }, { timeoutMs: 2000, retry: false }).catch(() => {});
    }
  }

  private fail(e: ConcordError): void {
    if (this.q.ended) return;
    this.q.fail(e);
    void this.close();
  }

  private resubscribe(): void {
    if (this.q.ended) return;
    this.stream = null;
    if (this.subscribing) {
      this.resubscribeWanted = true;
      return;
    }
    void this.subscribe();
  }

  private async subscribe(): Promise<void> {
    this.subscribing = true;
    try {
      do {
        this.resubscribeWanted = false;
        const args: Record<string, unknown> = { key: this.key };
        if (this.prefix) args.prefix = true;
        if (this.next > 0) args.fromRevision = this.next;
        let r: { stream: number; revision: number };
        let socketId: number;
        try {
          ({ result: r, socketId } = await this.conn.callOnSocket<{ stream: number; revision: number }>("watch", args, {
            timeoutMs: this.resumeTimeoutMs,
          }));
        } catch (e) {
          const err = toConcordError(e);
          this.fail(
            err.code === "COMPACTED"
              ? new ConcordError({
                  code: "COMPACTED",
                  message: `watch on ${JSON.stringify(this.key)} cannot resume at revision ${this.next}: ${err.message}`,
                  compactRevision: err.compactRevision,
                })
              : err,
          );
          return;
        }
        if (this.q.ended) {
          await this.conn.call("unwatch", { stream: r.stream }, { timeoutMs: 2000, retry: false }).catch(() => {});
          return;
        }
        // A watch without fromRevision starts at "now": the reply's revision is already history.
        if (this.next === 0) this.next = r.revision + 1;
        this.stream = { socketId, id: r.stream };
        this.conn.registerStream(socketId, r.stream, (event) =>
          this.onPush(socketId, r.stream, event as WirePushEvent),
        );
        // The socket may have dropped between the reply and here; the reconnect listener asked to redo it.
        if (socketId !== this.conn.socketId) this.resubscribeWanted = true;
        // Redo only if the stream is not on the live socket (a reconnect during the call was already absorbed
        // by the call's own retry when it landed on the new socket).
      } while (this.resubscribeWanted && !this.q.ended && this.stream?.socketId !== this.conn.socketId);
    } finally {
      this.subscribing = false;
    }
  }

  private onPush(socketId: number, stream: number, event: WirePushEvent): void {
    if (this.q.ended || this.stream?.socketId !== socketId || this.stream.id !== stream) return;
    if (event.error) {
      // The server cancelled this stream; pick up where we are.
      this.conn.unregisterStream(socketId, stream);
      this.resubscribe();
      return;
    }
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
