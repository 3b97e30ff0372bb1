// The client's exactly-once session (Raft thesis §6.3; docs/protocol.md "Exactly-once writes").
//
// Opened lazily on the first write: a session lease (kept alive like any lease) and `registerClient`. Every
// write then carries (clientId, seq, lowestUnacked). Invariants: a seq is used by exactly one logical write,
// and all attempts of that write reuse it; lowestUnacked is the smallest seq still awaiting its answer (or the
// next seq when none is), so the server may forget every outcome below it.
//
// If the session ends (its lease lapsed while the client was cut off), the server answers SESSION_EXPIRED. A
// write that got SESSION_EXPIRED on its first attempt was not applied and is retried on a fresh session; one
// that had an earlier, unanswered attempt may have been applied, so it fails with SESSION_EXPIRED instead of
// risking a second application.
//
// While the cluster's NO_SPACE alarm is raised no session can be opened (its lease and registration would add
// to the full state). A write is then sent without a session, once: deletes, compaction, releases and
// resignations still go through (they free space), writes that add data fail with NO_SPACE as they would
// anyway. It is not retried — without a session a retry could apply twice — so a failover meanwhile fails it
// (UNAVAILABLE, TIMEOUT, …) instead.

import { performance } from "node:perf_hooks";
import { assert } from "../assert.js";
import { sleep, type Connection } from "./connection.js";
import { toConcordError } from "./errors.js";
import { Lease } from "./lease.js";

export interface SessionTag {
  clientId: number;
  seq: number;
  lowestUnacked: number;
}

/**
 * Most seqs between the oldest unanswered write and the next one. The server keeps an outcome for every seq
 * >= lowestUnacked and refuses more than its limit (SESSION_BUSY; 1024 by default), so the client holds back
 * writes beyond this window until the oldest is answered, instead of failing them.
 */
const SEQ_WINDOW = 512;

class OpenSession {
  private nextSeq = 1;
  /** lowestUnacked: the smallest seq in `inflight`, or nextSeq when it is empty. */
  private lowest = 1;
  private readonly inflight = new Set<number>();
  private readonly blocked: (() => void)[] = [];
  constructor(
    readonly clientId: number,
    readonly lease: Lease,
  ) {}

  /** Allocates the next seq, or undefined while the window is full (`begin` waits for room). */
  tryBegin(): number | undefined {
    if (this.nextSeq - this.lowest >= SEQ_WINDOW) return undefined;
    const seq = this.nextSeq++;
    this.inflight.add(seq);
    return seq;
  }

  /** Allocates the next seq, waiting while the window is full. */
  async begin(): Promise<number> {
    for (;;) {
      const seq = this.tryBegin();
      if (seq !== undefined) return seq;
      await new Promise<void>((r) => this.blocked.push(r));
    }
  }

  tag(seq: number): SessionTag {
    assert(this.lowest <= seq && this.inflight.has(seq), "session: tag for a seq not in flight");
    return { clientId: this.clientId, seq, lowestUnacked: this.lowest };
  }

  end(seq: number): void {
    this.inflight.delete(seq);
    // Each seq is passed once, so keeping `lowest` costs O(1) a write (a scan of `inflight` cost O(writes in flight)).
    while (this.lowest < this.nextSeq && !this.inflight.has(this.lowest)) this.lowest++;
    // Wake everyone; each re-checks the window (only while more than SEQ_WINDOW writes are queued).
    if (this.blocked.length > 0) for (const wake of this.blocked.splice(0)) wake();
  }
}

export class SessionManager {
  private session: Promise<OpenSession> | null = null;
  /** What `session` resolved to, while it is the current one: a write then needs no await to find it. */
  private opened: OpenSession | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly ttlMs: number,
  ) {}

  /** Runs a write with a session tag, retrying with the same seq; see the header for SESSION_EXPIRED. */
  async write<T>(
    op: string,
    args: Record<string, unknown>,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    for (let fresh = 0; ; fresh++) {
      let session = this.opened;
      if (session === null) {
        try {
          session = await this.open();
        } catch (e) {
          if (toConcordError(e).code !== "NO_SPACE") throw e;
          return this.conn.call<T>(op, args, { ...opts, retry: false });
        }
      }
      const seq = session.tryBegin() ?? (await session.begin());
      const sent = { count: 0 };
      try {
        for (let busy = 0; ; busy++) {
          try {
            // Object.assign, not spreads: see ClientProtocol.request (Node 20's slow path for `{ ...x, y }`).
            return await this.conn.call<T>(
              op,
              Object.assign({}, args, { session: session.tag(seq) }),
              Object.assign({}, opts, { sent }),
            );
          } catch (e) {
            // SESSION_BUSY: refused before applying; wait for older writes to be answered, same seq.
            if (toConcordError(e).code !== "SESSION_BUSY" || busy >= 50) throw e;
            await sleep(20 + busy * 10, opts.signal);
          }
        }
      } catch (e) {
        const err = toConcordError(e);
        if (err.code === "SESSION_EXPIRED") {
          this.forget(session);
          // Refused on its only attempt: never applied, so a fresh session may carry it.
          if (fresh === 0 && sent.count === 1) continue;
        }
        throw err;
      } finally {
        session.end(seq);
      }
    }
  }

  /** Stops the session's keep-alives; the server forgets it when its lease ends (revoked here). */
  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    this.opened = null;
    if (!s) return;
    try {
      const open = await s;
      await open.lease.revoke();
    } catch {
      // the session never opened, or the lease is already gone: nothing to release
    }
  }

  private forget(session: OpenSession): void {
    session.lease.stop();
    if (this.opened === session) this.opened = null;
    void this.session?.then((cur) => {
      if (cur === session) this.session = null;
    });
  }

  private open(): Promise<OpenSession> {
    if (!this.session) {
      const p = this.register();
      this.session = p;
      p.then(
        (opened) => {
          if (this.session === p && !opened.lease.lost.aborted) this.opened = opened;
        },
        () => {
          if (this.session === p) this.session = null;
        },
      );
    }
    return this.session;
  }

  private async register(): Promise<OpenSession> {
    const sentAt = performance.now();
    const granted = await this.conn.call<{ id: number; ttlMs: number }>("leaseGrant", { ttlMs: this.ttlMs });
    const lease = new Lease(this.conn, granted.id, granted.ttlMs, sentAt);
    try {
      const { clientId } = await this.conn.call<{ clientId: number }>("registerClient", { lease: lease.id });
      const session = new OpenSession(clientId, lease);
      lease.lost.addEventListener("abort", () => this.forget(session), { once: true });
      return session;
    } catch (e) {
      lease.stop();
      throw e;
    }
  }
}
