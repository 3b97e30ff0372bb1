// A simulated client's exactly-once session, as the client library keeps one (src/client/session.ts): a session
// lease kept alive every third of its TTL, `registerClient`, and every write tagged (clientId, seq,
// lowestUnacked). A write is retried with the same seq until it is answered, so a retry after a lost reply, a
// failover or a forwarded timeout returns the recorded outcome instead of applying twice. SESSION_EXPIRED on a
// first attempt: never applied, so a fresh session carries it; on a later attempt the outcome is unknown.

import type { RequestError } from "../src/transport/request-error.js";
import type { ClientConnection, Reply } from "./client-connection.js";
import { TICK } from "./cluster.js";

/** Attempts of one write before the client gives up on it (its outcome is then unknown). */
const WRITE_ATTEMPTS = 6;
const SESSION_TTL = 40 * TICK;

interface Open {
  clientId: number;
  lease: number;
  live: boolean;
}

export type WriteOutcome = { kind: "ok"; value: unknown } | { kind: "failed"; error: RequestError } | { kind: "unknown"; error: RequestError };

export class Session {
  private open: Open | null = null;
  private opening: Promise<Open | null> | null = null;
  private nextSeq = 1;
  private readonly inflight = new Set<number>();

  constructor(private readonly conn: ClientConnection) {}

  /** Runs the write `op` exactly once (or reports that its outcome is unknown). */
  async write(op: string, args: Record<string, unknown>): Promise<WriteOutcome> {
    for (let fresh = 0; fresh < 3; fresh++) {
      const s = await this.session();
      if (s === null) return { kind: "unknown", error: { code: "UNAVAILABLE", message: "no session could be opened" } as RequestError };
      const seq = this.nextSeq++;
      this.inflight.add(seq);
      try {
        let sent = 0;
        for (;;) {
          sent++;
          const r: Reply = await this.conn.call(op, { ...args, session: { clientId: s.clientId, seq, lowestUnacked: this.lowest() } });
          if (r.ok) return { kind: "ok", value: r.value };
          const code = r.error.code;
          if (code === "SESSION_EXPIRED") {
            s.live = false;
            if (this.open === s) this.open = null;
            if (sent === 1) break; // refused on its only attempt: never applied; a fresh session carries it
            return { kind: "unknown", error: r.error };
          }
          const retryable = code === "NOT_LEADER" || code === "UNAVAILABLE" || code === "TIMEOUT" || code === "PROPOSAL_LOST" || code === "SHUTTING_DOWN" || code === "TOO_MANY_REQUESTS" || code === "SESSION_BUSY";
          if (!retryable) return { kind: "failed", error: r.error };
          if (sent >= WRITE_ATTEMPTS) return { kind: "unknown", error: r.error };
          await this.conn.sleep(r.error.leader ? this.conn.rngInt(1, TICK / 5) : this.conn.rngInt(TICK / 5, 2 * TICK));
        }
      } finally {
        this.inflight.delete(seq);
      }
    }
    return { kind: "unknown", error: { code: "SESSION_EXPIRED", message: "sessions kept expiring" } as RequestError };
  }

  private lowest(): number {
    let lowest = this.nextSeq;
    for (const s of this.inflight) if (s < lowest) lowest = s;
    return lowest;
  }

  private session(): Promise<Open | null> {
    if (this.open?.live) return Promise.resolve(this.open);
    this.opening ??= this.register().finally(() => (this.opening = null));
    return this.opening;
  }

  private async register(): Promise<Open | null> {
    const grant = await this.conn.retry("leaseGrant", { ttlMs: SESSION_TTL }, 5);
    if (!grant.ok) {
      this.conn.log(() => `${this.conn.endpoint}: no session lease: ${grant.error.code} ${grant.error.message}`);
      return null;
    }
    const lease = (grant.value as { id: number }).id;
    const reg = await this.conn.retry("registerClient", { lease }, 5);
    if (!reg.ok) {
      this.conn.log(() => `${this.conn.endpoint}: no session: ${reg.error.code} ${reg.error.message}`);
      return null;
    }
    const open: Open = { clientId: (reg.value as { clientId: number }).clientId, lease, live: true };
    this.open = open;
    this.nextSeq = 1;
    void this.keepAlive(open);
    return open;
  }

  private async keepAlive(s: Open): Promise<void> {
    while (s.live) {
      await this.conn.sleep(SESSION_TTL / 3);
      if (!s.live) return;
      const r = await this.conn.call("leaseKeepAlive", { lease: s.lease });
      if (!r.ok && r.error.code === "LEASE_NOT_FOUND") {
        s.live = false;
        if (this.open === s) this.open = null;
      }
    }
  }

  /** Stop keeping the session alive (the client is done). */
  close(): void {
    if (this.open) this.open.live = false;
    this.open = null;
  }
}
