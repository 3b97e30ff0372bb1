// Leases: TTLs granted by the leader's clock, bound keys and sessions. The state machine never measures time;
// the server keeps the deadlines (keep-alives are not logged) and proposes leaseExpire(ids) when they pass.
// After a leader change the new leader restarts every deadline at now + ttlMs from list(), so a lease can
// only outlive its TTL, never expire early because leadership moved.
//
// Lease ids are the log index of the grant: unique, increasing and identical on every replica.

import { assert } from "../assert.js";
import type { LeaseInfo } from "./commands.js";

export type LeaseEndReason = "revoked" | "expired";

export interface Lease {
  readonly id: number;
  readonly ttlMs: number;
  readonly grantedAt: number;
  /** Keys bound to this lease. Iteration order is not replicated state: callers sort before acting. */
  readonly keys: Set<string>;
  /** Client sessions bound to this lease. */
  readonly clients: Set<number>;
}

export class LeaseTable {
  private readonly leases = new Map<number, Lease>();

  get size(): number {
    return this.leases.size;
  }

  grant(id: number, ttlMs: number, grantedAt: number): Lease {
    assert(!this.leases.has(id), () => `lease ${id} granted twice`);
    const lease: Lease = { id, ttlMs, grantedAt, keys: new Set(), clients: new Set() };
    this.leases.set(id, lease);
    return lease;
  }

  get(id: number): Lease | undefined {
    return this.leases.get(id);
  }

  isAlive(id: number): boolean {
    return this.leases.has(id);
  }

  remove(id: number): Lease | undefined {
    const lease = this.leases.get(id);
    this.leases.delete(id);
    return lease;
  }

  attachKey(id: number, key: string): void {
    const lease = this.leases.get(id);
    assert(lease !== undefined, () => `attach key ${key} to missing lease ${id}`);
    lease.keys.add(key);
  }

  detachKey(id: number, key: string): void {
    this.leases.get(id)?.keys.delete(key);
  }

  info(id: number): LeaseInfo | null {
    const lease = this.leases.get(id);
    if (lease === undefined) return null;
    return { id, ttlMs: lease.ttlMs, grantedAt: lease.grantedAt, keys: [...lease.keys].sort() };
  }

  /** Every lease in id order: what a new leader needs to restart the deadlines. */
  list(): Lease[] {
    return [...this.leases.values()].sort((a, b) => a.id - b.id);
  }
}
