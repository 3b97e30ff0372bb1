// A granted lease kept alive by the client, with an AbortSignal that fires as soon as the client can no longer
// be sure the lease is alive.
//
// Invariant (the reason for `lost`): the server's deadline for the lease is at least `sentAt + ttl` of the
// last keep-alive that succeeded, because the leader restarted the TTL no earlier than when that request was
// sent. So at `lastSuccessSentAt + ttl` on the client's monotonic clock the lease may be gone, and `lost`
// fires then — not at 2×TTL, not when a socket notices. A LEASE_NOT_FOUND answer fires it at once.
//
// Keep-alives go every ttl/3 at most; after a failure they are retried sooner (ttl/10), each bounded by a timeout
// so a hung request cannot silently eat the budget.
//
// They leave on a grid shared by every lease of the process (KeepAliveGrid): one timer per grid point fires the
// keep-alives of all leases due at it in one turn, so a connection carrying many leases sends them in one write
// and the leader confirms its leadership once for all of them and answers in one write (etcd's Go client sends
// all its leases' keep-alives from one loop every 500 ms). A keep-alive is moved earlier to its grid point, never
// later: the grid is 100 ms, or a tenth of the TTL if less, so a lease is kept alive every 0.23–0.33 TTL.
// Measured with 10,000 leases on 100 connections (bench:scale, docs/benchmarks.md): the leader's CPU fell from
// 18 to 9 % of a core; a 500 ms grid saved little more CPU and made each keep-alive wait behind a larger burst.

import { performance } from "node:perf_hooks";
import type { Connection } from "./connection.js";
import { ConcordError, clientError, toConcordError } from "./errors.js";

export interface LeaseInfo {
  id: number;
  ttlMs: number;
  grantedAt: number;
  /** Its keys in key order; absent when asked for without (`keys: false`). */
  keys?: string[];
  keyCount: number;
  remainingMs: number;
}

/** The widest step of the keep-alive grid. */
const KEEPALIVE_GRID_MAX_MS = 100;

/** Callbacks due at the same point of the grid, run by one timer in one turn. */
class KeepAliveGrid {
  private readonly points = new Map<number, { timer: NodeJS.Timeout; due: Set<() => void> }>();

  /** Runs `fn` at the last grid point no later than `delayMs` from now; returns a cancel function. */
  schedule(delayMs: number, stepMs: number, fn: () => void): () => void {
    const now = performance.now();
    const at = Math.floor((now + delayMs) / stepMs) * stepMs;
    let point = this.points.get(at);
    if (!point) {
      const due = new Set<() => void>();
      const timer = setTimeout(() => {
        this.points.delete(at);
        for (const f of due) f();
      }, Math.max(0, at - now));
      point = { timer, due };
      this.points.set(at, point);
    }
    const p = point;
    p.due.add(fn);
    return () => {
      p.due.delete(fn);
      if (p.due.size === 0 && this.points.get(at) === p) {
        clearTimeout(p.timer);
        this.points.delete(at);
      }
    };
  }
}

const keepAliveGrid = new KeepAliveGrid();

export class Lease {
  /** Aborted (reason: a ConcordError with code LEASE_LOST) once the lease may have ended. */
  readonly lost: AbortSignal;
  private readonly controller = new AbortController();
  private lastSuccessSentAt: number;
  private expiryTimer: NodeJS.Timeout | undefined;
  private cancelKeepAlive: (() => void) | undefined;
  private stopped = false;
  private inflight = false;
  private readonly renewListeners = new Set<() => void>();
  /** Keep-alives that succeeded (for tests and diagnostics). */
  keepAlives = 0;

  /** Use `Client.grantLease()`; `grantSentAt` is when the grant request was sent (monotonic ms). */
  constructor(
    private readonly conn: Connection,
    readonly id: number,
    readonly ttlMs: number,
    grantSentAt: number,
  ) {
    this.lost = this.controller.signal;
    this.lastSuccessSentAt = grantSentAt;
    this.armExpiry();
    this.scheduleKeepAlive(this.ttlMs / 3);
  }

  /** True until `lost` fires or the lease is revoked/closed. */
  get alive(): boolean {
    return !this.stopped && !this.lost.aborted;
  }

  /**
   * Milliseconds left before the client must consider the lease lost (monotonic): until one TTL after the last
   * acknowledged keep-alive (or the grant) was sent, the earliest moment the servers may expire the lease.
   */
  get remainingMs(): number {
    return Math.max(0, this.lastSuccessSentAt + this.ttlMs - performance.now());
  }

  /**
   * Calls `listener` each time an acknowledged keep-alive moves that deadline later (read it with `remainingMs`),
   * e.g. to pass it on to another process. Returns a function that removes the listener.
   */
  onRenewed(listener: () => void): () => void {
    this.renewListeners.add(listener);
    return () => this.renewListeners.delete(listener);
  }

  /** Revokes the lease on the server (keys, locks and candidacies bound to it end) and stops keep-alives. */
  async revoke(): Promise<void> {
    this.stop();
    try {
      await this.conn.call("leaseRevoke", { lease: this.id });
    } catch (e) {
      const err = toConcordError(e);
      if (err.code !== "LEASE_NOT_FOUND") throw err;
    }
  }

  /** Stops keep-alives without revoking: the lease then ends on the server after its TTL. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.expiryTimer);
    this.cancelKeepAlive?.();
  }

  /** Sends one keep-alive now; resolves true if it succeeded. */
  async keepAliveOnce(): Promise<boolean> {
    if (!this.alive || this.inflight) return false;
    this.inflight = true;
    const sentAt = performance.now();
    try {
      // Bounded so that one stuck request cannot outlive the point where a retry could still save the lease.
      await this.conn.call(
        "leaseKeepAlive",
        { lease: this.id },
        { timeoutMs: Math.max(50, this.ttlMs / 3), retry: false },
      );
      if (!this.alive) return false;
      this.keepAlives++;
      if (sentAt > this.lastSuccessSentAt) {
        this.lastSuccessSentAt = sentAt;
        this.armExpiry();
        for (const listener of this.renewListeners) listener();
      }
      return true;
    } catch (e) {
      const err = toConcordError(e);
      if (err.code === "LEASE_NOT_FOUND")
        this.markLost(`lease ${this.id} no longer exists on the server (expired or revoked)`);
      return false;
    } finally {
      this.inflight = false;
    }
  }

  private scheduleKeepAlive(delayMs: number): void {
    if (!this.alive) return;
    this.cancelKeepAlive?.();
    this.cancelKeepAlive = keepAliveGrid.schedule(delayMs, Math.min(KEEPALIVE_GRID_MAX_MS, this.ttlMs / 10), () => {
      this.cancelKeepAlive = undefined;
      void this.keepAliveOnce().then((ok) =>
        this.scheduleKeepAlive(ok ? this.ttlMs / 3 : Math.max(20, this.ttlMs / 10)),
      );
    });
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    if (!this.alive) return;
    const left = this.lastSuccessSentAt + this.ttlMs - performance.now();
    this.expiryTimer = setTimeout(
      () => {
        // Re-check: a success may have moved the deadline while this timer was queued.
        if (performance.now() >= this.lastSuccessSentAt + this.ttlMs) {
          this.markLost(`no keep-alive of lease ${this.id} succeeded within its TTL of ${this.ttlMs} ms`);
        } else {
          this.armExpiry();
        }
      },
      Math.max(0, left),
    );
  }

  private markLost(why: string): void {
    if (this.lost.aborted) return;
    this.stop();
    const reason: ConcordError = clientError("LEASE_LOST", why);
    this.controller.abort(reason);
  }
}

/** Grants a lease of `ttlMs` and starts keeping it alive. */
export async function grantLease(conn: Connection, ttlMs: number, signal?: AbortSignal): Promise<Lease> {
  if (typeof ttlMs !== "number" || !Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new ConcordError({
      code: "INVALID_ARGUMENT",
      message: `ttlMs is ${String(ttlMs)}; expected an integer number of milliseconds >= 1`,
      field: "ttlMs",
    });
  }
  const sentAt = performance.now();
  const r = await conn.call<{ id: number; ttlMs: number }>("leaseGrant", { ttlMs }, { signal });
  return new Lease(conn, r.id, r.ttlMs, sentAt);
}
