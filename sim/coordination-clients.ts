// Lock and election clients, over the client protocol. Each owns a lease it keeps alive with keep-alives (sent
// to any member: followers forward them to the leader), and loops: acquire a lock (waiting: the reply comes when
// it is granted) or campaign in an election; while holding, write to the lock's fenced resource and do fenced
// puts in the store; then release / resign — or misbehave: stop keeping the lease alive and go on writing with
// the stale token (a paused process), later even retry with the dead lease, or revoke the lease. Writes go
// through an exactly-once session, so a waiting acquire whose connection dropped is retried with the same seq
// and answered when the grant comes. A client waiting too long revokes its lease.
//
// What is checked afterwards: acknowledged grants and releases of plain locks and the fenced resources' writes
// (checkLockSafety); acknowledged leaderships, every observe stream and the committed order of leaderships
// (checkElection); and lease safety — no lease expires before its holder could know it might (see checkLeases).

import type { ElectionObserver, Leadership } from "../src/check/index.js";
import type { CoordinationEvent, Leader } from "../src/locks/index.js";
import type { ApplyOutput } from "../src/statemachine/index.js";
import { ClientConnection } from "./client-connection.js";
import { MAX_CLOCK_DRIFT } from "./clock.js";
import { TICK, type SimCluster, type SimContext } from "./cluster.js";
import type { CoordinationChecker } from "./coordination-checker.js";
import { valueBytes } from "./entry-data.js";
import { FencedResource } from "./fenced-resource.js";
import { InvariantViolation } from "./invariants.js";
import { Session } from "./session.js";

/** Locks and their limits: two plain locks and a semaphore of two. */
const LOCKS: readonly { name: string; limit: number }[] = [
  { name: "L0", limit: 1 },
  { name: "L1", limit: 1 },
  { name: "S", limit: 2 },
];
const ELECTIONS = ["E0", "E1"];

interface Lease {
  id: number;
  ttl: number;
  /** Keep-alives stop once false (lapsed on purpose, revoked, or replaced). */
  kept: boolean;
  /** When the grant and every successful keep-alive were sent: the client may trust the lease until sent + ttl. */
  okSentAt: number[];
}

export interface CoordinationCounts {
  leasesGranted: number;
  lockGrants: number;
  lockReleases: number;
  campaigns: number;
  leaderships: number;
  lapses: number;
  revokes: number;
  resourceAccepted: number;
  resourceRefused: number;
  keepAlives: number;
  leaseExpiriesChecked: number;
}

export class CoordinationClients {
  readonly resources = new Map<string, FencedResource>();
  readonly counts: CoordinationCounts = {
    leasesGranted: 0,
    lockGrants: 0,
    lockReleases: 0,
    campaigns: 0,
    leaderships: 0,
    lapses: 0,
    revokes: 0,
    resourceAccepted: 0,
    resourceRefused: 0,
    keepAlives: 0,
    leaseExpiriesChecked: 0,
  };
  /** Per election: leaderships clients were told they won, the committed order, and the observe streams. */
  private readonly elections = new Map<string, { wins: Leadership[]; global: Leadership[]; observers: Map<string, Leadership[]> }>();
  /** Every lease a client was granted, by id. */
  private readonly leases = new Map<number, Lease>();
  /** Committed expiries: lease id and when the expiry was first applied (global time). */
  private readonly expiries: { lease: number; at: number }[] = [];
  private nextValue = 0;
  private nextObserver = 0;

  constructor(
    private readonly ctx: SimContext,
    checker: CoordinationChecker,
    private readonly clientCount: number,
  ) {
    for (const { name, limit } of LOCKS) {
      if (limit === 1) this.resources.set(name, new FencedResource(name, (t) => checker.grantedTo(name, t)));
    }
  }

  start(cluster: SimCluster, stopAt: number): void {
    for (let i = 0; i < this.clientCount; i++) void this.run(new ClientConnection(this.ctx, cluster, `lock${i}`), stopAt);
    for (const name of ELECTIONS) void this.observe(new ClientConnection(this.ctx, cluster, `observer-${name}`), name, stopAt);
  }

  /** The committed stream: the global order of leaderships, and lease expiries for checkLeases. */
  committed(output: ApplyOutput): void {
    for (const l of leaderships(output)) this.election(l.election).global.push(l.leadership);
    for (const e of output.events) if (e.type === "leaseEnded" && e.reason === "expired") this.expiries.push({ lease: e.id, at: this.ctx.now });
  }

  electionHistories(): { name: string; wins: Leadership[]; global: Leadership[]; observers: ElectionObserver[] }[] {
    return [...this.elections].map(([name, e]) => ({
      name,
      wins: e.wins,
      global: e.global,
      observers: [...e.observers].map(([id, observed]) => ({ id, observed })),
    }));
  }

  /**
   * Lease safety: a lease never expires before its holder may still trust it. The holder trusts it until
   * `sent + ttl` of the last grant or keep-alive that succeeded (the leader restarted the TTL no earlier than it
   * received that request, and a new leader restarts every TTL at its election, which follows any keep-alive a
   * deposed leader confirmed). Member clocks may run fast by MAX_CLOCK_DRIFT, so the expiry may come that much
   * sooner in real time — never sooner than that.
   */
  checkLeases(): void {
    for (const { lease: id, at } of this.expiries) {
      const lease = this.leases.get(id);
      if (lease === undefined) continue; // a session lease, or one whose grant reply never arrived
      const trusted = Math.max(...lease.okSentAt.filter((s) => s < at));
      this.counts.leaseExpiriesChecked++;
      const earliest = trusted + lease.ttl / (1 + MAX_CLOCK_DRIFT);
      if (at < earliest - 1) {
        throw new InvariantViolation(
          "lease safety",
          `lease ${id} (ttl ${lease.ttl}) expired at ${at.toFixed(1)}, but its holder's keep-alive sent at ${trusted.toFixed(1)} succeeded: ` +
            `it could trust the lease until ${earliest.toFixed(1)}`,
        );
      }
    }
  }

  private election(name: string): { wins: Leadership[]; global: Leadership[]; observers: Map<string, Leadership[]> } {
    let e = this.elections.get(name);
    if (e === undefined) this.elections.set(name, (e = { wins: [], global: [], observers: new Map() }));
    return e;
  }

  private pause(conn: ClientConnection): Promise<void> {
    return conn.sleep(this.ctx.rng.int(TICK / 2, 4 * TICK));
  }

  // ---------------------------------------------------------------------------------------------------------
  // The client loop

  private async run(conn: ClientConnection, stopAt: number): Promise<void> {
    const session = new Session(conn);
    let lease: Lease | null = null;
    await conn.sleep(this.ctx.rng.int(0, 3 * TICK));
    while (this.ctx.now < stopAt) {
      if (lease === null || !lease.kept) lease = await this.grantLease(conn);
      else if (this.ctx.rng.chance(0.65)) lease = await this.lockCycle(conn, session, lease, this.ctx.rng.pick(LOCKS));
      else lease = await this.electionCycle(conn, session, lease, this.ctx.rng.pick(ELECTIONS));
      await this.pause(conn);
    }
    if (lease) lease.kept = false;
    session.close();
  }

  private async grantLease(conn: ClientConnection): Promise<Lease | null> {
    const ttl = this.ctx.rng.int(15, 40) * TICK;
    const r = await conn.retry("leaseGrant", { ttlMs: ttl }, 3);
    if (!r.ok) return null;
    const id = (r.value as { id: number }).id;
    // The reply reports the grant made for the last attempt: the lease's TTL started no earlier than it was sent.
    const lease: Lease = { id, ttl, kept: true, okSentAt: [r.lastSentAt] };
    this.leases.set(id, lease);
    this.counts.leasesGranted++;
    void this.keepAlive(conn, lease);
    return lease;
  }

  /** Every third of the TTL, a keep-alive (to whichever member the client is connected to), while the lease is kept. */
  private async keepAlive(conn: ClientConnection, lease: Lease): Promise<void> {
    while (lease.kept) {
      await conn.sleep(Math.floor(lease.ttl / 3));
      if (!lease.kept) return;
      const sentAt = this.ctx.now;
      const r = await conn.call("leaseKeepAlive", { lease: lease.id });
      if (r.ok) {
        lease.okSentAt.push(sentAt);
        this.counts.keepAlives++;
      } else if (r.error.code === "LEASE_NOT_FOUND") {
        lease.kept = false;
      }
    }
  }

  private async revoke(conn: ClientConnection, session: Session, lease: Lease): Promise<null> {
    this.counts.revokes++;
    this.ctx.log(() => `${conn.endpoint} revokes lease ${lease.id}`);
    lease.kept = false;
    await session.write("leaseRevoke", { lease: lease.id });
    return null;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Locks

  /** One acquire → hold → release (or lapse, or revoke); returns the lease the client keeps (null: gone). */
  private async lockCycle(conn: ClientConnection, session: Session, lease: Lease, lock: { name: string; limit: number }): Promise<Lease | null> {
    const invokedAt = this.ctx.now;
    const w = await session.write("lockAcquire", { name: lock.name, lease: lease.id, wait: true, limit: lock.limit });
    if (w.kind === "unknown") return this.revoke(conn, session, lease); // it may hold or wait: let it all go
    if (w.kind === "failed") {
      if (w.error.code === "LEASE_NOT_FOUND") lease.kept = false;
      return lease.kept ? lease : null;
    }
    const r = w.value as { granted: boolean; token: number; stream: number };
    if (!r.granted) return lease;
    let lost = false;
    conn.listen(r.stream, (ev) => {
      if ((ev as { kind?: string }).kind === "lockLost") lost = true;
    });
    this.counts.lockGrants++;
    this.ctx.log(() => `${conn.endpoint} holds ${lock.name} with token ${r.token} (lease ${lease.id})`);
    const resource = this.resources.get(lock.name);
    const grant = resource ? resource.recordGrant(lease.id, r.token, invokedAt, this.ctx.now) : null;
    for (let left = this.ctx.rng.int(1, 4); left > 0 && !lost; left--) {
      if (resource) this.write(resource, lease, r.token);
      if (this.ctx.rng.chance(0.5)) await this.fencedPut(session, lease, lock.name, r.token);
      await conn.sleep(this.ctx.rng.int(TICK / 2, 3 * TICK));
    }
    conn.unlisten(r.stream);
    const roll = this.ctx.rng.next();
    if (roll < 0.15) return this.lapse(conn, session, lease, lock, r.token, resource);
    if (roll < 0.25) return this.revoke(conn, session, lease);
    const releaseInvokedAt = this.ctx.now;
    const rel = await session.write("lockRelease", { name: lock.name, token: r.token, lease: lease.id });
    if (rel.kind === "ok") this.counts.lockReleases++;
    if (grant) {
      grant.releaseInvokedAt = releaseInvokedAt;
      grant.releaseAcked = rel.kind === "ok";
    }
    // Now and then a write of the hold arrives late (a delayed request, a retry from a slow thread): the store
    // must refuse it once the token is no longer current.
    if (this.ctx.rng.chance(0.3)) await this.fencedPut(session, lease, lock.name, r.token);
    return lease;
  }

  private fencedPut(session: Session, lease: Lease, lock: string, token: number): Promise<unknown> {
    // Half the fences name the lease (by token parity, not the random stream, so every seed's path is kept).
    const fence = token % 2 === 0 ? { lock, token, lease: lease.id } : { lock, token };
    return session.write("put", { key: `fenced/${lock}`, value: valueBytes(++this.nextValue), lease: lease.id, fence });
  }

  private write(resource: FencedResource, lease: Lease, token: number): void {
    if (resource.write(lease.id, token)) this.counts.resourceAccepted++;
    else this.counts.resourceRefused++;
  }

  /**
   * A paused process: keep-alives stop, yet it keeps writing with its token for a while after the lease has
   * surely expired (the resource must refuse it once a newer holder wrote), then half the time it tries the
   * dead lease again (the state machine must refuse it).
   */
  private async lapse(conn: ClientConnection, session: Session, lease: Lease, lock: { name: string; limit: number }, token: number, resource: FencedResource | undefined): Promise<null> {
    this.counts.lapses++;
    lease.kept = false;
    this.ctx.log(() => `${conn.endpoint} pauses: lease ${lease.id} lapses, it keeps writing with ${lock.name} token ${token}`);
    for (let left = 3; left > 0; left--) {
      if (resource) this.write(resource, lease, token);
      await conn.sleep(this.ctx.rng.int(lease.ttl / 2, lease.ttl));
    }
    if (this.ctx.rng.chance(0.5)) await this.lockCycle(conn, session, lease, lock);
    return null;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Elections

  private async electionCycle(conn: ClientConnection, session: Session, lease: Lease, name: string): Promise<Lease | null> {
    this.counts.campaigns++;
    const w = await session.write("campaign", { name, value: valueBytes(++this.nextValue), lease: lease.id });
    if (w.kind === "unknown") return this.revoke(conn, session, lease);
    if (w.kind === "failed") {
      if (w.error.code === "LEASE_NOT_FOUND") lease.kept = false;
      return lease.kept ? lease : null;
    }
    const { token } = w.value as { token: number };
    this.counts.leaderships++;
    this.election(name).wins.push({ leader: `lease${lease.id}`, token });
    this.ctx.log(() => `${conn.endpoint} leads election ${name} with token ${token} (lease ${lease.id})`);
    for (let left = this.ctx.rng.int(0, 2); left > 0; left--) {
      await session.write("proclaim", { name, token, value: valueBytes(++this.nextValue) });
      await conn.sleep(this.ctx.rng.int(TICK, 4 * TICK));
    }
    if (this.ctx.rng.chance(0.25)) {
      // Step away without resigning: leadership passes when the lease expires.
      this.counts.lapses++;
      lease.kept = false;
      return null;
    }
    await session.write("resign", { name, token });
    return lease;
  }

  /** An observe stream of one election, reopened (as a new observer) whenever it ends. */
  private async observe(conn: ClientConnection, name: string, stopAt: number): Promise<void> {
    while (this.ctx.now < stopAt) {
      const id = `${conn.endpoint}#${++this.nextObserver}`;
      const seen: Leadership[] = [];
      this.election(name).observers.set(id, seen);
      const r = await conn.retry("observe", { name }, 3);
      if (r.ok) {
        const stream = (r.value as { stream: number }).stream;
        const end = conn.waiter();
        conn.onLost = () => end.wake();
        conn.listen(stream, (ev) => {
          const e = ev as { kind?: string; leader?: Leader | null; error?: unknown };
          if (e.error !== undefined) end.wake();
          else if (e.kind === "leader" && e.leader) seen.push({ leader: `lease${e.leader.lease}`, token: e.leader.token });
        });
        await end.until(stopAt);
        conn.onLost = null;
      }
      await conn.sleep(this.ctx.rng.int(TICK / 2, 2 * TICK));
    }
  }
}

/** The leaderships an output announces (leaderChanged with a leader; a proclaim repeats the token). */
function leaderships(output: ApplyOutput): { election: string; leadership: Leadership }[] {
  const out: { election: string; leadership: Leadership }[] = [];
  for (const wrapped of output.events) {
    if (wrapped.type !== "extension") continue;
    const e = wrapped.event as CoordinationEvent;
    if (e.kind === "leaderChanged" && e.leader !== null) {
      out.push({ election: e.election, leadership: { leader: `lease${e.leader.lease}`, token: e.leader.token } });
    }
  }
  return out;
}
