/**
 * The leader's lease deadlines (no log entries for keep-alives). Deadlines live only on the leader, on its
 * monotonic clock; a new leader restarts every deadline at now + TTL, so no lease expires early because
 * leadership moved (it may live up to one TTL longer, which is safe: clients see `lost` on their own clock).
 */
export class LeaseKeeper {
  private readonly deadlines = new Map<number, { ttlMs: number; deadline: number }>();
  /** Leases whose expiry was proposed and not yet applied: propose once. */
  private readonly expiring = new Set<number>();

  /** On becoming leader: every known lease gets a full TTL from now. */
  restart(leases: { id: number; ttlMs: number }[], now: number): void {
    this.deadlines.clear();
    this.expiring.clear();
    for (const l of leases) this.deadlines.set(l.id, { ttlMs: l.ttlMs, deadline: now + l.ttlMs });
  }

  granted(id: number, ttlMs: number, now: number): void {
    this.deadlines.set(id, { ttlMs, deadline: now + ttlMs });
  }

  ended(id: number): void {
    this.deadlines.delete(id);
    this.expiring.delete(id);
  }

  /** A keep-alive: returns the TTL now remaining, or undefined for an unknown lease. */
  keepAlive(id: number, now: number): number | undefined {
    const d = this.deadlines.get(id);
    if (!d || this.expiring.has(id)) return undefined;
    d.deadline = now + d.ttlMs;
    return d.ttlMs;
  }

  remainingMs(id: number, now: number): number | undefined {
    const d = this.deadlines.get(id);
    return d ? Math.max(0, d.deadline - now) : undefined;
  }

  /** Leases past their deadline and not yet being expired; marks them as expiring. */
  takeExpired(now: number, max = 1000): number[] {
    const out: number[] = [];
    for (const [id, d] of this.deadlines) {
      if (d.deadline <= now && !this.expiring.has(id)) {
        this.expiring.add(id);
        out.push(id);
        if (out.length >= max) break;
      }
    }
    return out;
  }

  /** The expiry proposal failed (e.g. lost leadership): allow it to be proposed again. */
  retryExpiry(ids: number[]): void {
    for (const id of ids) this.expiring.delete(id);
  }

  clear(): void {
    this.deadlines.clear();
    this.expiring.clear();
  }

  get size(): number {
    return this.deadlines.size;
  }
}
