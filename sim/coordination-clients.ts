// Lock and election clients. Each owns a lease it keeps alive with direct keep-alives to the leader host, and
// loops: acquire a lock (FIFO wait) or campaign in an election; while holding, write to the lock's fenced
// resource and do fenced puts in the store; then release / resign — or misbehave: stop keeping the lease
// alive and go on writing with the stale token (a paused process), later even retry with the dead lease, or
// revoke the lease. Waiting too long for a grant, the client revokes its lease (the server would on close).
//
// Everything it learns comes from its own node's apply (results) or the committed stream (grants that come
// later, as the server pushes them). Acknowledged grants and releases of plain locks are recorded with
// virtual times for checkLockSafety; acknowledged leaderships, every node's observe stream (per incarnation)
// and the committed order of leaderships for checkElection.

import type { ElectionObserver, Leadership } from "../src/check/index.js";
import type { AcquireResult, CampaignResult, CoordinationEvent } from "../src/locks/index.js";
import type { NodeId } from "../src/raft/types.js";
import type { ApplyOutput, Command, LeaseGrantResult, Outcome } from "../src/statemachine/index.js";
import { TICK, type Cluster, type Host, type SimContext } from "./cluster.js";
import type { CoordinationChecker } from "./coordination-checker.js";
import { valueBytes } from "./entry-data.js";
import { FencedResource, type GrantRecord } from "./fenced-resource.js";
import type { Requests } from "./requests.js";

/** Locks and their limits: two plain locks and a semaphore of two. */
const LOCKS: readonly { name: string; limit: number }[] = [
  { name: "L0", limit: 1 },
  { name: "L1", limit: 1 },
  { name: "S", limit: 2 },
];
const ELECTIONS = ["E0", "E1"];
const WAIT_TIMEOUT = 40 * TICK;

interface Lease {
  id: number;
  ttl: number;
  /** Keep-alives stop once false (lapsed on purpose, revoked, or replaced). */
  kept: boolean;
}

interface Client {
  id: number;
  guess: NodeId;
  lease: Lease | null;
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
  };
  /** Per election: leaderships clients were told they won, the committed order, and each node's stream. */
  readonly elections = new Map<
    string,
    { wins: Leadership[]; global: Leadership[]; observers: Map<string, Leadership[]> }
  >();
  private readonly clients: Client[] = [];
  private stopAt = Infinity;
  private nextValue = 0;
  cluster!: Cluster;

  constructor(
    private readonly ctx: SimContext,
    private readonly requests: Requests,
    private readonly checker: CoordinationChecker,
    private readonly clientCount: number,
  ) {
    for (const { name, limit } of LOCKS) {
      if (limit === 1) this.resources.set(name, new FencedResource(name, (t) => checker.grantedTo(name, t)));
    }
  }

  start(cluster: Cluster, stopAt: number): void {
    this.cluster = cluster;
    this.stopAt = stopAt;
    const ids = [...cluster.hosts.keys()];
    for (let i = 0; i < this.clientCount; i++) {
      const c: Client = { id: i, guess: this.ctx.rng.pick(ids), lease: null };
      this.clients.push(c);
      this.later(this.ctx.rng.int(0, 3 * TICK), () => this.next(c));
    }
  }

  private later(delay: number, f: () => void): void {
    this.ctx.queue.push(this.ctx.now + delay, f);
  }

  private pause(c: Client): void {
    this.later(this.ctx.rng.int(TICK / 2, 4 * TICK), () => this.next(c));
  }

  private next(c: Client): void {
    if (this.ctx.now >= this.stopAt) return;
    if (c.lease === null) return this.grantLease(c);
    if (this.ctx.rng.chance(0.65)) this.acquire(c, c.lease, this.ctx.rng.pick(LOCKS));
    else this.campaign(c, c.lease, this.ctx.rng.pick(ELECTIONS));
  }

  /** Every node's applied outputs: its observe stream of each election (restarts start a new observer). */
  observe(host: Host, output: ApplyOutput): void {
    for (const l of leaderships(output)) {
      const observers = this.election(l.election).observers;
      const id = `${host.id}#${host.incarnation}`;
      let seen = observers.get(id);
      if (seen === undefined) observers.set(id, (seen = []));
      seen.push(l.leadership);
    }
  }

  /** The committed stream: the global order of leaderships. */
  committed(output: ApplyOutput): void {
    for (const l of leaderships(output)) this.election(l.election).global.push(l.leadership);
  }

  electionHistories(): { name: string; wins: Leadership[]; global: Leadership[]; observers: ElectionObserver[] }[] {
    return [...this.elections].map(([name, e]) => ({
      name,
      wins: e.wins,
      global: e.global,
      observers: [...e.observers].map(([id, observed]) => ({ id, observed })),
    }));
  }

  private election(name: string): {
    wins: Leadership[];
    global: Leadership[];
    observers: Map<string, Leadership[]>;
  } {
    let e = this.elections.get(name);
    if (e === undefined) this.elections.set(name, (e = { wins: [], global: [], observers: new Map() }));
    return e;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Requests: retried on refusal and on a lost entry; `then` gets the result, or null on a timeout.

  private request(c: Client, command: Command, then: (result: Outcome | null, index: number) => void): void {
    const host = this.host(c);
    if (!host) return this.later(TICK, () => this.request(c, command, then));
    const refusal = this.requests.propose(host, command, (o) => {
      if (o.kind === "applied") then(o.output.result, o.index);
      else if (o.kind === "lost") this.request(c, command, then);
      else then(null, 0);
    });
    if (refusal) {
      c.guess = refusal.leader ?? this.randomLive() ?? c.guess;
      const wait = refusal.leader ? this.ctx.rng.int(TICK / 10, TICK / 2) : this.ctx.rng.int(TICK / 2, 2 * TICK);
      this.later(wait, () => this.request(c, command, then));
    }
  }

  private host(c: Client): Host | null {
    const h = this.cluster.get(c.guess);
    if (h?.up) return h;
    c.guess = this.randomLive() ?? c.guess;
    return null;
  }

  private randomLive(): NodeId | undefined {
    const live = this.cluster.liveHosts();
    return live.length > 0 ? this.ctx.rng.pick(live).id : undefined;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Leases

  private grantLease(c: Client): void {
    const host = this.host(c);
    if (!host) return this.pause(c);
    const ttl = this.ctx.rng.int(15, 40) * TICK;
    // grantedAt is the proposing node's clock, as the server fills it in.
    this.request(c, { op: "leaseGrant", ttlMs: ttl, grantedAt: host.clock() }, (result) => {
      if (result?.ok) {
        const lease: Lease = { id: (result.value as LeaseGrantResult).id, ttl, kept: true };
        c.lease = lease;
        this.counts.leasesGranted++;
        this.keepAlive(c, lease);
      }
      this.pause(c);
    });
  }

  /** Every third of the TTL, a keep-alive straight to the leader host (no log entry), while the lease is kept. */
  private keepAlive(c: Client, lease: Lease): void {
    this.later(Math.floor(lease.ttl / 3), () => {
      if (!lease.kept || c.lease !== lease) return;
      const leader = this.cluster.leader();
      leader?.leases.keepAlive(lease.id, leader.clock());
      this.keepAlive(c, lease);
    });
  }

  /** The lease is gone or abandoned: forget it (the state machine will expire it if it still lives). */
  private dropLease(c: Client, lease: Lease): void {
    lease.kept = false;
    if (c.lease === lease) c.lease = null;
  }

  private revoke(c: Client, lease: Lease): void {
    this.counts.revokes++;
    this.ctx.log(() => `lock client ${c.id} revokes lease ${lease.id}`);
    this.dropLease(c, lease);
    this.request(c, { op: "leaseRevoke", id: lease.id }, () => this.pause(c));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Locks

  private acquire(c: Client, lease: Lease, lock: { name: string; limit: number }): void {
    const invokedAt = this.ctx.now;
    const command = { op: "lockAcquire", name: lock.name, lease: lease.id, wait: true, limit: lock.limit };
    this.request(c, command, (result, index) => {
      if (result === null) return this.revoke(c, lease); // unknown: it may hold or wait; let it all go
      if (!result.ok) {
        if (result.error.code === "LEASE_NOT_FOUND") this.dropLease(c, lease);
        return this.pause(c);
      }
      const r = result.value as AcquireResult;
      if (r.granted) return this.hold(c, lease, lock, r.token, invokedAt);
      let waiting = true;
      this.requests.whenGranted("lock", lock.name, lease.id, index, (token) => {
        waiting = false;
        this.hold(c, lease, lock, token, invokedAt);
      });
      this.later(WAIT_TIMEOUT, () => {
        if (!waiting) return;
        this.requests.cancelWait("lock", lock.name, lease.id);
        this.revoke(c, lease);
      });
    });
  }

  private hold(c: Client, lease: Lease, lock: { name: string; limit: number }, token: number, invokedAt: number): void {
    this.counts.lockGrants++;
    this.ctx.log(() => `lock client ${c.id} holds ${lock.name} with token ${token} (lease ${lease.id})`);
    const resource = this.resources.get(lock.name);
    const grant = resource ? resource.recordGrant(lease.id, token, invokedAt, this.ctx.now) : null;
    const work = (left: number): void => {
      if (left > 0) {
        if (resource && resource.write(lease.id, token)) this.counts.resourceAccepted++;
        else if (resource) this.counts.resourceRefused++;
        if (this.ctx.rng.chance(0.5)) {
          const fenced = {
            op: "put",
            key: `fenced/${lock.name}`,
            value: valueBytes(++this.nextValue),
            lease: lease.id,
            fence: { lock: lock.name, token },
          };
          this.request(c, fenced, () => {});
        }
        return this.later(this.ctx.rng.int(TICK / 2, 3 * TICK), () => work(left - 1));
      }
      const roll = this.ctx.rng.next();
      if (roll < 0.15) return this.lapse(c, lease, lock, token, resource);
      if (roll < 0.25) return this.revoke(c, lease);
      this.release(c, lease, lock, token, grant);
    };
    work(this.ctx.rng.int(1, 4));
  }

  private release(c: Client, lease: Lease, lock: { name: string }, token: number, grant: GrantRecord | null): void {
    const releaseInvokedAt = this.ctx.now;
    this.request(c, { op: "lockRelease", name: lock.name, token, lease: lease.id }, (result) => {
      if (result?.ok) this.counts.lockReleases++;
      if (grant) {
        grant.releaseInvokedAt = releaseInvokedAt;
        grant.releaseAcked = result?.ok === true;
      }
      this.pause(c);
    });
  }

  /**
   * A paused process: keep-alives stop, yet it keeps writing with its token for a while after the lease has
   * surely expired (the resource must refuse it once a newer holder wrote), then half the time it tries the
   * dead lease again (the state machine must refuse it).
   */
  private lapse(
    c: Client,
    lease: Lease,
    lock: { name: string; limit: number },
    token: number,
    resource: FencedResource | undefined,
  ): void {
    this.counts.lapses++;
    lease.kept = false;
    this.ctx.log(
      () => `lock client ${c.id} pauses: lease ${lease.id} lapses, it keeps writing with ${lock.name} token ${token}`,
    );
    const staleWrites = (left: number): void => {
      if (left === 0) {
        if (this.ctx.rng.chance(0.5)) return this.acquire(c, lease, lock);
        this.dropLease(c, lease);
        return this.pause(c);
      }
      if (resource) {
        if (resource.write(lease.id, token)) this.counts.resourceAccepted++;
        else this.counts.resourceRefused++;
      }
      this.later(this.ctx.rng.int(lease.ttl / 2, lease.ttl), () => staleWrites(left - 1));
    };
    staleWrites(3);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Elections

  private campaign(c: Client, lease: Lease, name: string): void {
    this.counts.campaigns++;
    const command = { op: "electionCampaign", name, value: valueBytes(++this.nextValue), lease: lease.id };
    this.request(c, command, (result, index) => {
      if (result === null) return this.revoke(c, lease);
      if (!result.ok) {
        if (result.error.code === "LEASE_NOT_FOUND") this.dropLease(c, lease);
        return this.pause(c);
      }
      const r = result.value as CampaignResult;
      if (r.leader) return this.lead(c, lease, name, r.token);
      let waiting = true;
      this.requests.whenGranted("election", name, lease.id, index, (token) => {
        waiting = false;
        this.lead(c, lease, name, token);
      });
      this.later(WAIT_TIMEOUT, () => {
        if (!waiting) return;
        this.requests.cancelWait("election", name, lease.id);
        this.revoke(c, lease);
      });
    });
  }

  private lead(c: Client, lease: Lease, name: string, token: number): void {
    this.counts.leaderships++;
    this.election(name).wins.push({ leader: `lease${lease.id}`, token });
    this.ctx.log(() => `lock client ${c.id} leads election ${name} with token ${token} (lease ${lease.id})`);
    const proclaim = (left: number): void => {
      if (left > 0) {
        const command = { op: "electionProclaim", name, token, value: valueBytes(++this.nextValue) };
        return this.request(c, command, () => this.later(this.ctx.rng.int(TICK, 4 * TICK), () => proclaim(left - 1)));
      }
      if (this.ctx.rng.chance(0.25)) {
        // Step away without resigning: leadership passes when the lease expires.
        this.counts.lapses++;
        this.dropLease(c, lease);
        return this.pause(c);
      }
      this.request(c, { op: "electionResign", name, token }, () => this.pause(c));
    };
    proclaim(this.ctx.rng.int(0, 2));
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
