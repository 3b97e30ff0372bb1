// A server stream (watch, observe) as an AsyncIterable that survives reconnects: on a new socket it is opened
// again from where delivery stopped — subclasses say how (openArgs) and drop what a resumed stream replays.
//
// It never goes silent: as soon as its socket is lost it starts opening again, and if that does not succeed
// within the resume deadline (no member reachable, every attempt timed out) or fails for good (a non-retryable
// error), the iterator throws a ConcordError saying so. Closing the client ends the iterator normally.

import type { Connection } from "./connection.js";
import { ConcordError, toConcordError } from "./errors.js";
import { PushQueue } from "./push-queue.js";

export interface ResumableStreamOptions {
  /**
   * How long to keep trying to open the stream again after its connection was lost before failing (ms).
   * Default: 3 × the client's timeoutMs, at most 30 000.
   */
  resumeTimeoutMs?: number;
  signal?: AbortSignal;
}

/** The longest default resume deadline: a stream that cannot continue says so within half a minute. */
const DEFAULT_RESUME_LIMIT_MS = 30_000;

export abstract class ResumableStream<
  T,
  Reply extends { stream: number },
  Push extends { error?: unknown },
> implements AsyncIterable<T> {
  protected readonly q = new PushQueue<T>();
  private stream: { socketId: number; id: number } | null = null;
  private subscribing = false;
  private resubscribeWanted = false;
  private readonly offReconnect: () => void;
  private readonly offDisconnect: () => void;
  private readonly resumeTimeoutMs: number;
  /** Opened at least once: a failure to open is a failure to resume. */
  private everOpened = false;
  private started: Promise<void> = Promise.resolve();

  constructor(
    protected readonly conn: Connection,
    private readonly ops: { open: string; close: string },
    opts: ResumableStreamOptions,
  ) {
    this.resumeTimeoutMs = opts.resumeTimeoutMs ?? Math.min(DEFAULT_RESUME_LIMIT_MS, conn.timeoutMs * 3);
    this.offReconnect = conn.onReconnect(() => this.resubscribe());
    // Start resuming when the socket is lost, not when a new one is up: with no member reachable there is never
    // a new one, and the open call's deadline is what ends the stream.
    this.offDisconnect = conn.onDisconnect(() => this.resubscribe());
    opts.signal?.addEventListener("abort", () => void this.close(), { once: true });
  }

  /** What this stream is, for error messages: `watch on "config/"`. */
  protected abstract describe(): string;
  /** The arguments of the open call, resuming after what was delivered. */
  protected abstract openArgs(): Record<string, unknown>;
  /** A push on the live stream that is not an error. */
  protected abstract onEvent(push: Push): void;
  /** The stream was opened (on `socketId`). */
  protected opened(_reply: Reply): void {}
  /** The error the iterator throws when opening failed. */
  protected openFailed(err: ConcordError): ConcordError {
    return err;
  }

  /** Subclasses call this once their own fields are set: it opens the stream. */
  protected start(): void {
    this.started = this.subscribe();
  }

  /** Resolves once the stream is open on a member (what happens after this point is seen). */
  async ready(): Promise<void> {
    await this.started;
    if (this.q.error) throw this.q.error;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      yield* this.q.drain();
    } finally {
      await this.close();
    }
  }

  /** Cancels the stream; the iterator ends after delivering what is queued. */
  async close(): Promise<void> {
    if (this.q.ended) return;
    this.q.end();
    this.offReconnect();
    this.offDisconnect();
    const s = this.stream;
    this.stream = null;
    if (s && s.socketId === this.conn.socketId) {
      this.conn.unregisterStream(s.socketId, s.id);
      await this.conn.call(this.ops.close, { stream: s.id }, { timeoutMs: 2000, retry: false }).catch(() => {});
    }
  }

  protected fail(e: ConcordError): void {
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
        let reply: Reply;
        let socketId: number;
        try {
          ({ result: reply, socketId } = await this.conn.callOnSocket<Reply>(this.ops.open, this.openArgs(), {
            timeoutMs: this.resumeTimeoutMs,
          }));
        } catch (e) {
          const err = toConcordError(e);
          // The client was closed by its owner: the stream ends like a cancelled one.
          if (err.code === "CLOSED" && this.conn.isClosed) void this.close();
          else this.fail(this.openFailed(this.explain(err)));
          return;
        }
        if (this.q.ended) {
          await this.conn
            .call(this.ops.close, { stream: reply.stream }, { timeoutMs: 2000, retry: false })
            .catch(() => {});
          return;
        }
        this.opened(reply);
        this.everOpened = true;
        const id = reply.stream;
        this.stream = { socketId, id };
        this.conn.registerStream(socketId, id, (push) => this.onPush(socketId, id, push as Push));
        // The socket may have dropped between the reply and here; the reconnect listener asked to redo it.
        if (socketId !== this.conn.socketId) this.resubscribeWanted = true;
        // Redo only if the stream is not on the live socket (a reconnect during the call was already absorbed
        // by the call's own retry when it landed on the new socket).
      } while (this.resubscribeWanted && !this.q.ended && this.stream?.socketId !== this.conn.socketId);
    } finally {
      this.subscribing = false;
    }
  }

  /** The open call's error, saying which stream could not start or resume (the code is kept). */
  private explain(err: ConcordError): ConcordError {
    if (!err.retryable) return err;
    const what = this.everOpened
      ? `${this.describe()} could not resume within ${this.resumeTimeoutMs} ms`
      : `${this.describe()} could not start within ${this.resumeTimeoutMs} ms`;
    return new ConcordError({ code: err.code, message: `${what}: ${err.message}`, leader: err.leader });
  }

  private onPush(socketId: number, id: number, push: Push): void {
    if (this.q.ended || this.stream?.socketId !== socketId || this.stream.id !== id) return;
    if (push.error) {
      // The server cancelled this stream (a slow consumer, a snapshot): pick up where we are.
      this.conn.unregisterStream(socketId, id);
      this.resubscribe();
      return;
    }
    this.onEvent(push);
  }
}
