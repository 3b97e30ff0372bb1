// Leader election (docs/protocol.md "Elections"): campaign, proclaim, resign, and observe every change.
//
// A candidacy is bound to its own lease, as a lock hold is (see hold.ts): `lost` fires on the lease's own
// deadline, on a `leadershipLost` push, or when a check after a reconnect shows someone else leading. The
// token (the log index at which this candidate became leader) strictly increases per election: pass it to
// resources so a deposed leader's late writes are refused.
//
// observe(): invariant — changes are delivered once each, in log order. A resume after a reconnect asks for
// history from the last delivered index and skips the changes at that index it already delivered.

import type { Connection } from "./connection.js";
import { abortError, sleep } from "./connection.js";
import { clientError, toConcordError } from "./errors.js";
import { Hold } from "./hold.js";
import { grantLease, type Lease } from "./lease.js";
import type { SessionManager } from "./session.js";
import { bytesToText, checkKey, checkPositiveInt, toBytes, type ValueInput } from "./values.js";
import { ResumableStream, type ResumableStreamOptions } from "./resumable-stream.js";

export interface ElectionLeader {
  /** The leader's lease id (identifies the candidate). */
  lease: number;
  value: Uint8Array;
  text: string;
  /** The leadership token: the log index at which it became leader. */
  token: number;
}

/** One observed change: the new leader (null: nobody leads). */
export interface LeaderChange {
  leader: ElectionLeader | null;
  /** The log index of the change. */
  index: number;
  cause: string;
}

export interface CampaignOptions {
  /** TTL of the candidacy's lease (ms). Default 10 000. */
  ttlMs?: number;
  /** Stop campaigning (the candidacy is withdrawn). */
  signal?: AbortSignal;
}

export interface WireLeader {
  lease: number;
  value: Uint8Array | string;
  token: number;
}

export function decodeLeader(w: WireLeader | null | undefined): ElectionLeader | null {
  if (!w) return null;
  const value = w.value instanceof Uint8Array ? w.value : Buffer.from(String(w.value));
  return { lease: w.lease, value, text: bytesToText(value), token: w.token };
}

/** An election's leader and candidates (Election.status, Client.elections). */
export interface ElectionStatus {
  name: string;
  leader: ElectionLeader | null;
  /** Candidate leases in the order they campaigned; the first one leads. */
  candidates: number[];
}

export interface WireElectionStatus {
  name: string;
  leader: WireLeader | null;
  candidates: number[];
}

export const decodeElectionStatus = (w: WireElectionStatus): ElectionStatus => ({ ...w, leader: decodeLeader(w.leader) });

export class Leadership extends Hold {
  constructor(
    conn: Connection,
    private readonly sessions: SessionManager,
    name: string,
    token: number,
    lease: Lease,
  ) {
    super(conn, "leadershipLost", name, token, lease, true);
  }

  get isLeader(): boolean {
    return this.live;
  }

  /** Publishes a new value while leading. */
  async proclaim(value: ValueInput): Promise<void> {
    if (!this.isLeader) throw clientError("LEASE_LOST", `not the leader of ${JSON.stringify(this.name)} any more`);
    await this.sessions.write("proclaim", { name: this.name, token: this.token, value: toBytes("value", value) });
  }

  /** Steps down and revokes the candidacy's lease. Safe to call more than once. */
  resign(): Promise<void> {
    return this.end(() =>
      this.sessions.write("resign", { name: this.name, token: this.token }).catch((e) => {
        const err = toConcordError(e);
        if (err.code !== "NOT_ELECTION_LEADER" && err.code !== "LEASE_NOT_FOUND") throw err;
      }),
    );
  }

  protected async stillHeld(): Promise<boolean> {
    const r = await this.conn.call<{ leader: WireLeader | null }>("leader", { name: this.name });
    return !!r.leader && r.leader.lease === this.lease.id && r.leader.token === this.token;
  }
}

export class Election {
  readonly name: string;

  constructor(
    private readonly conn: Connection,
    private readonly sessions: SessionManager,
    name: string,
  ) {
    this.name = checkKey("name", name);
  }

  /** Waits until this candidate leads (FIFO among candidates). */
  async campaign(value: ValueInput, opts: CampaignOptions = {}): Promise<Leadership> {
    const bytes = toBytes("value", value);
    const ttlMs = opts.ttlMs === undefined ? 10_000 : checkPositiveInt("ttlMs", opts.ttlMs, 100);
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const stop = new AbortController();
    const onAbort = () => stop.abort(opts.signal?.reason ?? clientError("ABORTED", "campaign aborted"));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let lease: Lease | null = null;
    try {
      lease = await grantLease(this.conn, ttlMs, stop.signal);
      const leaseRef = lease;
      const onLeaseLost = () => stop.abort(toConcordError(leaseRef.lost.reason));
      lease.lost.addEventListener("abort", onLeaseLost, { once: true });
      const token = await this.waitForLeadership(bytes, lease, stop.signal);
      lease.lost.removeEventListener("abort", onLeaseLost);
      return new Leadership(this.conn, this.sessions, this.name, token, lease);
    } catch (e) {
      if (lease) await lease.revoke().catch(() => {});
      throw stop.signal.aborted ? abortError(stop.signal) : toConcordError(e);
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The current leader (linearizable read), or null. */
  async leader(): Promise<ElectionLeader | null> {
    const r = await this.conn.call<{ leader: WireLeader | null }>("leader", { name: this.name });
    return decodeLeader(r.leader);
  }

  /** The leader and every candidate in order (linearizable read). */
  async status(): Promise<ElectionStatus> {
    return decodeElectionStatus(await this.conn.call<WireElectionStatus>("electionStatus", { name: this.name }));
  }

  /** Every leadership change from now on (starting with the current state), in order. */
  observe(opts: ResumableStreamOptions = {}): Observer {
    return new Observer(this.conn, this.name, opts);
  }

  private async waitForLeadership(value: Uint8Array, lease: Lease, signal: AbortSignal): Promise<number> {
    let reconnected = false;
    const offReconnect = this.conn.onReconnect(() => (reconnected = true));
    const done = new AbortController();
    try {
      const viaReply = this.sessions
        .write<{ token: number }>("campaign", { name: this.name, value, lease: lease.id }, { timeoutMs: 0, signal })
        .then((r) => r.token);
      // A leadership gained while no connection was waiting is found by asking (after a reconnect).
      const viaPoll = (async () => {
        while (!done.signal.aborted && !signal.aborted) {
          await sleep(500, done.signal);
          if (!reconnected || done.signal.aborted) continue;
          try {
            const l = await this.leader();
            if (l && l.lease === lease.id) return l.token;
          } catch {
            // next round
          }
        }
        return new Promise<number>(() => {});
      })();
      return await Promise.race([viaReply, viaPoll]);
    } finally {
      done.abort();
      offReconnect();
    }
  }
}

interface WireObservePush {
  kind?: string;
  leader?: WireLeader | null;
  index?: number;
  cause?: string;
  error?: { code: string; message: string };
}

export class Observer extends ResumableStream<LeaderChange, { stream: number }, WireObservePush> {
  /** Index of the last delivered change, and how many changes at that index were delivered. */
  private lastIndex = 0;
  private deliveredAtLast = 0;
  /** Changes at lastIndex a resumed stream will replay and must be skipped. */
  private skip = 0;
  private last: LeaderChange | null = null;

  constructor(
    conn: Connection,
    private readonly name: string,
    opts: ResumableStreamOptions,
  ) {
    super(conn, { open: "observe", close: "unobserve" }, opts);
    this.start();
  }

  protected describe(): string {
    return `observer of election ${JSON.stringify(this.name)}`;
  }

  protected openArgs(): Record<string, unknown> {
    const args: Record<string, unknown> = { name: this.name };
    if (this.lastIndex > 0) {
      args.fromToken = this.lastIndex;
      this.skip = this.deliveredAtLast;
    }
    return args;
  }

  protected onEvent(ev: WireObservePush): void {
    if (ev.kind !== "leader") return;
    const change: LeaderChange = { leader: decodeLeader(ev.leader), index: ev.index ?? 0, cause: ev.cause ?? "" };
    if (change.index < this.lastIndex) return; // replayed history already delivered
    if (change.index === this.lastIndex && this.skip > 0) {
      this.skip--;
      return;
    }
    // "current" snapshots (no history requested) repeat what we already showed: skip exact repeats.
    if (change.cause === "current" && this.last && sameLeader(this.last.leader, change.leader)) return;
    if (change.index === this.lastIndex) this.deliveredAtLast++;
    else {
      this.lastIndex = change.index;
      this.deliveredAtLast = 1;
    }
    this.skip = 0;
    this.last = change;
    this.q.push(change);
  }
}

function sameLeader(a: ElectionLeader | null, b: ElectionLeader | null): boolean {
  if (a === null || b === null) return a === b;
  return a.lease === b.lease && a.token === b.token && Buffer.compare(Buffer.from(a.value), Buffer.from(b.value)) === 0;
}
