// Distributed locks with fencing tokens (docs/protocol.md "Locks").
//
// Each hold has its own lease (TTL `ttlMs`, kept alive at ttl/3). The hold's `lost` signal fires as soon as any
// of these says the hold may be over: the lease's own `lost` (no keep-alive succeeded within the TTL — see
// lease.ts), a `lockLost` push from the member, or, after a reconnect, `lockStatus` no longer listing us. Code
// holding a lock must stop touching the protected resource when `lost` fires, and should pass the token to the
// resource (fenced writes) so a paused, stale holder is refused even if it does not notice.
//
// Waiting is server-side (the acquire's reply comes at the grant). A wait that spans a reconnect is retried
// with the same session seq; because a grant could be applied while no connection was waiting for it, the
// client then also polls lockStatus until it finds its lease among the holders.

import type { Connection } from "./connection.js";
import { abortError, sleep } from "./connection.js";
import { ConcordError, clientError, toConcordError } from "./errors.js";
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

export class LockHandle {
  /** Fires (reason: a ConcordError) when the hold may be over; see the file header. */
  readonly lost: AbortSignal;
  private readonly controller = new AbortController();
  private released = false;
  private readonly offReconnect: () => void;
  private readonly offNotice: () => void;
  private readonly offLease: () => void;

  constructor(
    private readonly conn: Connection,
    private readonly sessions: SessionManager,
    readonly name: string,
    /** The fencing token: the log index of the grant, strictly increasing per lock name. */
    readonly token: number,
    readonly lease: Lease,
    /** The hold's own lease (revoked on release), or a caller's (left alive). */
    private readonly ownsLease = true,
  ) {
    this.lost = this.controller.signal;
    const onLeaseLost = () => this.markLost(toConcordError(lease.lost.reason));
    // A shared lease outlives many holds: each hold must take its listener away again.
    this.offLease = () => lease.lost.removeEventListener("abort", onLeaseLost);
    this.offNotice = conn.onNotice((ev) => {
      if (ev.kind === "lockLost" && ev.name === name && ev.token === token) {
        // An error (PERMISSION_DENIED: the user lost access) ends the stream, not the hold: stop all the same.
        if (ev.error) return this.markLost(new ConcordError(ev.error as ConstructorParameters<typeof ConcordError>[0]));
        this.markLost(
          clientError(
            "LEASE_LOST",
            `lock ${JSON.stringify(name)} (token ${token}) was lost: its lease ended on the server`,
          ),
        );
      }
    });
    // The `lockLost` push is tied to the connection that acquired; after a reconnect, ask instead.
    this.offReconnect = conn.onReconnect(() => void this.verify());
    if (lease.lost.aborted) onLeaseLost();
    else lease.lost.addEventListener("abort", onLeaseLost, { once: true });
  }

  /** True while held and not known to be lost. */
  get held(): boolean {
    return !this.released && !this.lost.aborted;
  }

  /** Releases the lock and revokes its lease. Safe to call more than once, and after `lost`. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.detach();
    try {
      if (!this.lost.aborted) {
        await this.sessions
          .write("lockRelease", { name: this.name, token: this.token, lease: this.lease.id })
          .catch((e) => {
            const err = toConcordError(e);
            // Already gone (lease ended): nothing to release.
            if (err.code !== "LOCK_NOT_HELD" && err.code !== "LEASE_NOT_FOUND") throw err;
          });
      }
    } finally {
      if (this.ownsLease) await this.lease.revoke().catch(() => {});
    }
  }

  /** Checks with the cluster that this hold still exists; fires `lost` if not. */
  async verify(): Promise<boolean> {
    if (!this.held) return false;
    try {
      const s = await this.conn.call<LockStatus>("lockStatus", { name: this.name });
      const mine = s.holders.some((h) => h.lease === this.lease.id && h.token === this.token);
      if (!mine && this.held)
        this.markLost(
          clientError(
            "LEASE_LOST",
            `lock ${JSON.stringify(this.name)} (token ${this.token}) is no longer held by this client`,
          ),
        );
      return mine;
    } catch {
      return this.held; // unknown: the lease's own deadline decides
    }
  }

  private markLost(reason: ConcordError): void {
    if (this.lost.aborted || this.released) return;
    this.detach();
    if (this.ownsLease) this.lease.stop();
    this.controller.abort(reason);
  }

  private detach(): void {
    this.offNotice();
    this.offReconnect();
    this.offLease();
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

    // One signal for "stop waiting": caller abort, timeout, or the lease lost while queued.
    const stop = new AbortController();
    const onAbort = () => stop.abort(opts.signal?.reason ?? clientError("ABORTED", "lock wait aborted"));
    if (opts.signal?.aborted) throw abortError(opts.signal);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(
            () =>
              stop.abort(
                clientError("LOCK_TIMEOUT", `lock ${JSON.stringify(name)} was not granted within ${opts.timeoutMs} ms`),
              ),
            opts.timeoutMs,
          )
        : undefined;

    let lease: Lease | null = opts.lease ?? null;
    const ownsLease = opts.lease === undefined;
    try {
      if (!lease) lease = await grantLease(this.conn, ttlMs, stop.signal);
      const leaseRef = lease;
      const onLeaseLost = () => stop.abort(toConcordError(leaseRef.lost.reason));
      lease.lost.addEventListener("abort", onLeaseLost, { once: true });
      const token = await this.acquire(name, lease, wait, limit, stop.signal);
      lease.lost.removeEventListener("abort", onLeaseLost);
      return new LockHandle(this.conn, this.sessions, name, token, lease, ownsLease);
    } catch (e) {
      // Leaving the queue: revoking our own lease removes the waiter (and any grant that raced us). With a
      // caller's lease the waiter stays queued until that lease ends — as with etcd's sessions.
      if (lease && ownsLease) await lease.revoke().catch(() => {});
      throw stop.signal.aborted ? abortError(stop.signal) : toConcordError(e);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
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
    const done = new AbortController();
    const stopPolling = () => done.abort();
    signal.addEventListener("abort", stopPolling, { once: true });
    let reconnected = false;
    const offReconnect = this.conn.onReconnect(() => (reconnected = true));
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
          // Queued without a grant in the reply: the poller below finds the grant.
          reconnected = true;
          return new Promise<number>(() => {});
        });
      const viaPoll = wait
        ? this.pollForGrant(name, lease.id, done.signal, () => reconnected)
        : new Promise<number>(() => {});
      return await Promise.race([viaReply, viaPoll]);
    } finally {
      done.abort();
      offReconnect();
      signal.removeEventListener("abort", stopPolling);
    }
  }

  /** After a reconnect (or a queued reply), looks for our lease among the holders every 500 ms. */
  private async pollForGrant(name: string, lease: number, signal: AbortSignal, active: () => boolean): Promise<number> {
    for (let i = 0; !signal.aborted; i++) {
      await sleep(500, signal);
      if (signal.aborted || !active()) continue;
      try {
        const s = await this.conn.call<LockStatus>("lockStatus", { name }, { signal, timeoutMs: 2000 });
        const h = s.holders.find((x) => x.lease === lease);
        if (h) return h.token;
      } catch {
        // try again next round
      }
    }
    return new Promise<number>(() => {});
  }
}
