// Lease deadlines on the simulated leader, as the real server keeps them: the real LeaseKeeper
// (src/server/lease-keeper.ts, pure: time is passed in) on the host's own virtual monotonic clock. Keep-alives
// are direct calls to the leader host (no log entry); when a deadline passes, the leader proposes
// leaseExpire(ids). A new leader restarts every deadline at now + TTL, so leadership moves never expire a
// lease early.

import type { StateMachineEvent } from "../src/statemachine/index.js";
import { LeaseKeeper } from "../src/server/lease-keeper.js";

export class LeaderLeases {
  private readonly keeper = new LeaseKeeper();
  private leading = false;

  get active(): boolean {
    return this.leading;
  }

  /** The host became leader: every lease its state machine knows gets a full TTL from `now`. */
  becameLeader(leases: { id: number; ttlMs: number }[], now: number): void {
    this.leading = true;
    this.keeper.restart(leases, now);
  }

  steppedDown(): void {
    this.leading = false;
    this.keeper.clear();
  }

  /** Lease events of an applied entry keep the deadlines in step with the state machine. */
  applied(events: readonly StateMachineEvent[], now: number): void {
    if (!this.leading) return;
    for (const e of events) {
      if (e.type === "leaseGranted") this.keeper.granted(e.id, e.ttlMs, now);
      else if (e.type === "leaseEnded") this.keeper.ended(e.id);
    }
  }

  /** A client's keep-alive: the TTL granted again, or undefined (not leader, unknown or expiring lease). */
  keepAlive(id: number, now: number): number | undefined {
    return this.leading ? this.keeper.keepAlive(id, now) : undefined;
  }

  /** Leases past their deadline, to propose as one leaseExpire. */
  takeExpired(now: number): number[] {
    return this.leading ? this.keeper.takeExpired(now) : [];
  }

  retryExpiry(ids: number[]): void {
    this.keeper.retryExpiry(ids);
  }
}
