// Distributed locks with fencing tokens (docs/protocol.md "Locks").
//
// Each hold has its own lease (TTL `ttlMs`, kept alive at ttl/3). The hold's `lost` signal (hold.ts) fires as
// soon as any of these says the hold may be over: the lease's own `lost` (no keep-alive succeeded within the TTL
// — see lease.ts), a `lockLost` push from the member, or, after a reconnect, `lockStatus` no longer listing us.
// Code holding a lock must stop touching the protected resource when `lost` fires, and should pass the token to
// the resource (fenced writes) so a paused, stale holder is refused even if it does not notice.
//
// Waiting is server-side (the acquire's reply comes at the grant). A wait that spans a reconnect is retried
// with the same session seq; because a grant could be applied while no connection was waiting for it, the
// client then also polls lockStatus until it finds its lease among the holders.

import type { Connection } from "./connection.js";
import { abortError } from "./connection.js";
import { clientError, toConcordError } from "./errors.js";
import { Hold } from "./hold.js";
import { grantLease, type Lease } from "./lease.js";
import type { SessionManager } from "./session.js";
import { checkKey, checkPositiveInt } from "./values.js";

export interface LockOptions {
  /** TTL of the hold's lease (ms): how long the lock survives this client going silent. Default 10 000. */
  ttlMs?: number;
  /** Give up waiting after this long (ms) with LOCK_TIMEOUT. Default: wait until granted or aborted. */
  timeoutMs?: number;
  /** Abort the wait (or, once held, nothing: call release()). */
  signal?: AbortSignal;
  /** false: try-lock — fail at once with LOCK_BUSY if the lock is held. Default true. */
  wait?: boolean;
  /** Holders allowed at once (a counting semaphore). Default 1. */
  limit?: number;
  /**
   * Hold the lock with this lease instead of a new one (as etcd's concurrency sessions do: one kept-alive lease
   * for many locks). The lock then ends with that lease, and release() leaves the lease alive. `ttlMs` is ignored.
   */
  lease?: Lease;
}

export interface LockStatus {
  name: string;
  limit: number;
  holders: { lease: number; token: number }[];
  waiters: number[];
}

export class LockHandle extends Hold {
  constructor(
    conn: Connection,
    private readonly sessions: SessionManager,
    name: string,
    token: number,
    lease: Lease,
    /** The hold's own lease (revoked on release), or a caller's (left alive). */
    ownsLease = true,
  ) {
    super(conn, "lockLost", name, token, lease, ownsLease);
  }

  /** True while held and not known to be lost. */
  get held(): boolean {
    return this.live;
  }

  /** Releases the lock and revokes its own lease. Safe to call more than once, and after `lost`. */
  release(): Promise<void> {
    return this.end(() =>
      this.sessions.write("lockRelease", { name: this.name, token: this.token, lease: this.lease.id }).catch((e) => {
        const err = toConcordError(e);
        // Already gone (lease ended): nothing to release.
        if (err.code !== "LOCK_NOT_HELD" && err.code !== "LEASE_NOT_FOUND") throw err;
      }),
    );
  }

  protected async stillHeld(): Promise<boolean> {
    const s = await this.conn.call<LockStatus>("lockStatus", { name: this.name });
    return s.holders.some((h) => h.lease === this.lease.id && h.token === this.token);
  }
}

export class LockApi {
  constructor(
    private readonly conn: Connection,
    private readonly sessions: SessionManager,
  ) {}

  /** Waits for lock `name` (FIFO) and returns the hold with its fencing token. */
  async lock(name: string, opts: LockOptions = {}): Promise<LockHandle> {
    checkKey("name", name);
    const ttlMs = opts.ttlMs === undefined ? 10_000 : checkPositiveInt("ttlMs", opts.ttlMs, 100);
    const limit = opts.limit === undefined ? 1 : checkPositiveInt("limit", opts.limit);
    const wait = opts.wait ?? true;
    if (opts.timeoutMs !== undefined) checkPositiveInt("timeoutMs", opts.timeoutMs, 0);

    if (opts.signal?.aborted) throw abortError(opts.signal);
    // "Stop waiting" is the caller's signal, the timeout, or the lease lost while queued. With neither a signal nor
    // a timeout the lease's own `lost` is that signal, and a lock makes no controller of its own.
    const stop = opts.signal !== undefined || opts.timeoutMs !== undefined ? new WaitStop(name, opts) : undefined;
    let lease: Lease | null = opts.lease ?? null;
    const ownsLease = opts.lease === undefined;
    try {
      if (!lease) lease = await grantLease(this.conn, ttlMs, stop?.signal);
      const token = await this.acquire(name, lease, wait, limit, stop ? stop.follow(lease.lost) : lease.lost);
      return new LockHandle(this.conn, this.sessions, name, token, lease, ownsLease);
    } catch (e) {
      // Leaving the queue: revoking our own lease removes the waiter (and any grant that raced us). With a
      // caller's lease the waiter stays queued until that lease ends — as with etcd's sessions.
      if (lease && ownsLease) await lease.revoke().catch(() => {});
      if (stop?.signal.aborted) throw abortError(stop.signal);
      if (lease?.lost.aborted) throw toConcordError(lease.lost.reason);
      throw toConcordError(e);
    } finally {
      stop?.dispose();
    }
  }

  /**
   * Runs `fn` while holding `name`; releases afterwards (also when `fn` throws). `signal` fires if the lock
   * is lost while `fn` runs — `fn` must stop using the protected resource then. `lease` is the hold's lease id,
   * for fences that name it (a semaphore's).
   */
  async withLock<T>(
    name: string,
    fn: (hold: { token: number; lease: number; signal: AbortSignal }) => Promise<T>,
    opts: LockOptions = {},
  ): Promise<T> {
    const hold = await this.lock(name, opts);
    try {
      return await fn({ token: hold.token, lease: hold.lease.id, signal: hold.lost });
    } finally {
      await hold.release();
    }
  }

  async status(name: string): Promise<LockStatus> {
    return this.conn.call<LockStatus>("lockStatus", { name: checkKey("name", name) });
  }

  private async acquire(
    name: string,
    lease: Lease,
    wait: boolean,
    limit: number,
    signal: AbortSignal,
  ): Promise<number> {
    const args: Record<string, unknown> = { name, lease: lease.id, wait };
    if (limit > 1) args.limit = limit;
    // A grant applied while no connection was waiting for its reply is found by polling lockStatus, from the
    // first reconnect (or a queued reply without a grant) until the wait ends.
    let poller: GrantPoller | undefined;
    let found: (token: number) => void = () => {};
    const viaPoll = new Promise<number>((resolve) => (found = resolve));
    const startPolling = () => {
      if (wait && poller === undefined) poller = new GrantPoller(this.conn, name, lease.id, found);
    };
    const offReconnect = this.conn.onReconnect(startPolling);
    try {
      const viaReply = this.sessions
        .write<{ granted: boolean; token?: number; held?: boolean; queued?: number }>("lockAcquire", args, {
          timeoutMs: 0,
          signal,
        })
        .then((r) => {
          if (r.granted && typeof r.token === "number") return r.token;
          if (!wait || r.held)
            throw clientError("LOCK_BUSY", `lock ${JSON.stringify(name)} is held (try-lock did not wait)`);
          startPolling(); // queued without a grant in the reply: the poller finds the grant
          return viaPoll;
        });
      return await Promise.race([viaReply, viaPoll]);
    } finally {
      poller?.stop();
      offReconnect();
    }
  }
}

/** Looks for a lease among a lock's holders every 500 ms until it is found or stopped. */
class GrantPoller {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly conn: Connection,
    private readonly name: string,
    private readonly lease: number,
    private readonly found: (token: number) => void,
  ) {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (!this.stopped) this.timer = setTimeout(() => void this.poll(), 500);
  }

  private async poll(): Promise<void> {
    try {
      const s = await this.conn.call<LockStatus>("lockStatus", { name: this.name }, { timeoutMs: 2000 });
      const h = s.holders.find((x) => x.lease === this.lease);
      if (h && !this.stopped) return this.found(h.token);
    } catch {
      // try again next round
    }
    this.schedule();
  }
}

/** The caller's signal and timeout for one lock wait, and then its lease's `lost`, as one signal. */
class WaitStop {
  private readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly offs: (() => void)[] = [];

  constructor(name: string, opts: LockOptions) {
    if (opts.signal) this.follow(opts.signal, clientError("ABORTED", "lock wait aborted"));
    if (opts.timeoutMs !== undefined) {
      const ms = opts.timeoutMs;
      this.timer = setTimeout(
        () =>
          this.controller.abort(
            clientError("LOCK_TIMEOUT", `lock ${JSON.stringify(name)} was not granted within ${ms} ms`),
          ),
        ms,
      );
    }
  }

  /** Also stops when `other` fires (with its reason, or `fallback` when it has none); returns the signal. */
  follow(other: AbortSignal, fallback?: Error): AbortSignal {
    const onAbort = () => this.controller.abort(other.reason ?? fallback);
    if (other.aborted) onAbort();
    else {
      other.addEventListener("abort", onAbort, { once: true });
      this.offs.push(() => other.removeEventListener("abort", onAbort));
    }
    return this.signal;
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const off of this.offs) off();
  }
}
