// The fault injector. Each seed draws its own mix (swarm testing, as TigerBeetle's VOPR): which kinds of fault
// it uses and how often, so that some seeds hammer one weakness and others combine several. During the fault
// phase it strikes every so often: crashes (often of the leader, of a member whose fsync is in flight, or of a
// leader just elected), process pauses, symmetric and one-way partitions, leader isolation, network weather
// (loss, duplication, delays with a long tail that outlive a term), slow and failing disks, clock drift,
// leadership transfers and — in some seeds — membership changes, joint ones included, with faults scheduled
// around them. `heal()` ends the fault phase: everything back to normal, every stopped member restarted.

import { ConfChangeError } from "../src/raft/confchange.js";
import type { ConfChange, NodeId } from "../src/raft/types.js";
import { MAX_CLOCK_DRIFT } from "./clock.js";
import { TICK, clientUrl, fastDisk, peerUrl, type SimCluster, type SimContext, type SimHost } from "./cluster.js";
import { calmNetwork } from "./network.js";
import type { Prng } from "./prng.js";

type FaultKind =
  | "crash"
  | "pause"
  | "partition"
  | "isolate-leader"
  | "one-way-cut"
  | "network-weather"
  | "slow-disk"
  | "failing-disk"
  | "clock-drift"
  | "transfer-leadership"
  | "leader-churn"
  | "membership";

const KINDS: readonly FaultKind[] = [
  "crash",
  "pause",
  "partition",
  "isolate-leader",
  "one-way-cut",
  "network-weather",
  "slow-disk",
  "failing-disk",
  "clock-drift",
  "transfer-leadership",
  "leader-churn",
  "membership",
];

export interface NemesisOptions {
  /** Time between faults. */
  minGap: number;
  maxGap: number;
  membership: boolean;
  /** Probability that a newly elected leader is crashed or cut off right away. */
  newLeaderStrikeRate: number;
  /** Probability that a leader is crashed or cut off right after a proposal, before it spreads. */
  proposalStrikeRate: number;
  /** Probability that a new leader is crashed or cut off as it applies an entry it inherited from an earlier term. */
  inheritedStrikeRate: number;
  /** Ids a membership change may add. */
  spareIds: NodeId[];
}

/** A seed's fault mix: each kind's weight (0: not used by this seed). */
export function drawFaultMix(rng: Prng, membership: boolean): Map<FaultKind, number> {
  const mix = new Map<FaultKind, number>();
  for (const k of KINDS) {
    if (k === "membership") continue;
    if (rng.chance(0.75)) mix.set(k, rng.int(1, 10));
  }
  // A membership seed changes the configuration often: the windows where members disagree about it are rare.
  if (membership) mix.set("membership", rng.int(8, 20));
  if (mix.size === 0) mix.set("crash", 1);
  return mix;
}

export class Nemesis {
  private active = true;
  /** Until this time every new leader is struck soon after its election, and proposing leaders often. */
  private churnUntil = 0;
  private nextSpare = 0;
  private readonly total: number;

  constructor(
    private readonly ctx: SimContext,
    private readonly cluster: SimCluster,
    private readonly opts: NemesisOptions,
    private readonly mix: Map<FaultKind, number>,
  ) {
    this.total = [...mix.values()].reduce((a, b) => a + b, 0);
  }

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    this.ctx.queue.push(this.ctx.now + this.ctx.rng.int(this.opts.minGap, this.opts.maxGap), () => {
      if (!this.active) return;
      this.strike(this.pick());
      this.schedule();
    });
  }

  private pick(): FaultKind {
    let roll = this.ctx.rng.next() * this.total;
    for (const [k, w] of this.mix) {
      roll -= w;
      if (roll < 0) return k;
    }
    return [...this.mix.keys()].at(-1)!;
  }

  private later(delay: number, action: () => void): void {
    this.ctx.queue.push(this.ctx.now + delay, () => {
      if (this.active) action();
    });
  }

  private members(): SimHost[] {
    return [...this.cluster.hosts.values()].filter((h) => !h.retired);
  }

  private strike(kind: FaultKind): void {
    const rng = this.ctx.rng;
    const members = this.members();
    const up = members.filter((h) => h.up);
    const leader = this.cluster.leader();
    switch (kind) {
      case "crash": {
        // Keep a majority of the members running most of the time.
        const down = members.length - up.length;
        if (up.length === 0 || down >= Math.floor((members.length - 1) / 2) + (rng.chance(0.2) ? 1 : 0)) return;
        // Often a member whose disk is busy (its crash may lose or tear a write), often the leader.
        const busy = up.filter((h) => h.diskProfile !== fastDisk);
        const victim = busy.length > 0 && rng.chance(0.3) ? rng.pick(busy) : leader && rng.chance(0.5) ? leader : rng.pick(up);
        this.ctx.fault(victim === leader ? "crash-leader" : "crash");
        this.cluster.crash(victim);
        this.later(rng.int(2 * TICK, 15 * TICK), () => this.cluster.restart(victim));
        return;
      }
      case "pause": {
        if (up.length === 0) return;
        const victim = leader && rng.chance(0.5) ? leader : rng.pick(up);
        const ms = rng.chance(0.3) ? rng.int(20 * TICK, 60 * TICK) : rng.int(TICK, 15 * TICK);
        this.ctx.fault(victim === leader ? "pause-leader" : "pause");
        this.ctx.log(() => `${victim.id} pauses for ${ms} ms`);
        this.cluster.pause(victim, ms);
        return;
      }
      case "partition": {
        if (this.ctx.network.partitioned) return;
        const ids = members.map((h) => h.id);
        const side = ids.filter(() => rng.chance(0.4));
        if (side.length === 0 || side.length === ids.length) return;
        this.ctx.fault("partition");
        this.ctx.log(() => `partition: [${side.join(",")}] | [${ids.filter((i) => !side.includes(i)).join(",")}]`);
        this.ctx.network.partition(side, ids.filter((i) => !side.includes(i)));
        this.later(rng.int(5 * TICK, 30 * TICK), () => this.healNetwork());
        return;
      }
      case "isolate-leader": {
        if (this.ctx.network.partitioned || !leader) return;
        this.ctx.fault("isolate-leader");
        this.isolate(leader, rng.int(5 * TICK, 30 * TICK));
        return;
      }
      case "one-way-cut": {
        if (members.length < 2) return;
        const a = rng.pick(members).id;
        const b = rng.pick(members.filter((h) => h.id !== a)).id;
        this.ctx.fault("one-way-cut");
        this.ctx.log(() => `one-way cut ${a} → ${b}`);
        this.ctx.network.cutLink(a, b);
        this.later(rng.int(5 * TICK, 30 * TICK), () => this.healNetwork());
        return;
      }
      case "network-weather": {
        this.ctx.fault("network-weather");
        // Spikes with a long tail: a vote request or reply may arrive terms later.
        const longTail = rng.chance(0.4);
        this.ctx.network.profile = {
          minDelay: rng.int(1, 10),
          maxDelay: rng.int(10, 80),
          spikeRate: rng.chance(0.6) ? rng.next() * 0.15 : 0,
          spikeDelay: longTail ? rng.int(10 * TICK, 40 * TICK) : rng.int(TICK, 6 * TICK),
          lossRate: rng.chance(0.5) ? rng.next() * 0.2 : 0,
          duplicateRate: rng.chance(0.5) ? rng.next() * 0.1 : 0,
        };
        const p = this.ctx.network.profile;
        this.ctx.log(() => `network weather: loss ${(p.lossRate * 100).toFixed(0)}%, duplicates ${(p.duplicateRate * 100).toFixed(0)}%, delay ${p.minDelay}-${p.maxDelay}, spikes ${(p.spikeRate * 100).toFixed(0)}% up to ${p.spikeDelay}`);
        this.later(rng.int(10 * TICK, 40 * TICK), () => (this.ctx.network.profile = calmNetwork));
        return;
      }
      case "slow-disk": {
        if (up.length === 0) return;
        const h = rng.pick(up);
        this.ctx.fault("slow-disk");
        h.diskProfile = { minLatency: rng.int(1, 20), maxLatency: rng.int(20, 3 * TICK) };
        this.ctx.log(() => `${h.id}'s disk turns slow (up to ${h.diskProfile.maxLatency} ms a call)`);
        this.later(rng.int(10 * TICK, 40 * TICK), () => (h.diskProfile = fastDisk));
        return;
      }
      case "failing-disk": {
        if (up.length === 0) return;
        const h = rng.pick(up);
        this.ctx.fault("failing-disk");
        h.disk.syncFailureRate = rng.pick([0.05, 0.2, 1]);
        this.ctx.log(() => `${h.id}'s fsyncs start failing (${(h.disk.syncFailureRate * 100).toFixed(0)}%)`);
        this.later(rng.int(2 * TICK, 20 * TICK), () => (h.disk.syncFailureRate = 0));
        return;
      }
      case "clock-drift": {
        if (up.length === 0) return;
        const h = rng.pick(up);
        this.ctx.fault("clock-drift");
        h.clockRate = 1 + (rng.next() * 2 - 1) * MAX_CLOCK_DRIFT;
        h.clock.setRate(h.clockRate);
        this.ctx.log(() => `${h.id}'s clock now runs at ${h.clockRate.toFixed(3)}× real time`);
        return;
      }
      case "transfer-leadership": {
        if (!leader) return;
        const voters = leader.replica.status().confState.voters.filter((id) => id !== leader.id && this.cluster.get(id)?.up);
        if (voters.length === 0) return;
        const to = rng.pick(voters);
        try {
          leader.replica.transferLeadership(to);
        } catch {
          return;
        }
        this.ctx.fault("transfer-leadership");
        this.ctx.log(() => `${leader.id} transfers leadership to ${to}`);
        return;
      }
      case "leader-churn": {
        // A storm of short leaderships: each new leader is cut off or crashed within a few round trips, and now
        // and then right after a proposal, so logs diverge over several terms (Raft's Figure 8 in the making).
        this.ctx.fault("leader-churn");
        this.churnUntil = this.ctx.now + rng.int(20 * TICK, 60 * TICK);
        this.ctx.log(() => `leader churn until ${this.churnUntil}`);
        return;
      }
      case "membership":
        if (leader) this.changeMembership(leader);
        return;
    }
  }

  /** Cuts `host` off from everyone for `ms` (independently of partitions and of other isolations). */
  private isolate(host: SimHost, ms: number): void {
    this.ctx.log(() => `${host.id} is cut off for ${ms} ms`);
    this.ctx.network.isolate(host.id);
    this.ctx.queue.push(this.ctx.now + ms, () => {
      this.ctx.network.unisolate(host.id);
      this.ctx.log(() => `${host.id} is reachable again`);
    });
  }

  private changeMembership(leader: SimHost): void {
    const rng = this.ctx.rng;
    const cs = leader.replica.status().confState;
    if (cs.votersOutgoing.length > 0) {
      // In a joint configuration left explicitly: leave it (an empty change), now or after more faults.
      this.propose(leader, { changes: [] }, "leave-joint");
      return;
    }
    const spare = this.opts.spareIds[this.nextSpare];
    const options: (() => { cc: ConfChange; newHost?: NodeId; kind: string } | null)[] = [
      () => (spare ? { cc: { changes: [{ kind: "addLearner", nodeId: spare }] }, newHost: spare, kind: "add-learner" } : null),
      () => (cs.learners.length > 0 ? { cc: { changes: [{ kind: "addVoter", nodeId: rng.pick(cs.learners) }] }, kind: "promote-learner" } : null),
      () => (cs.voters.length > 3 ? { cc: { changes: [{ kind: "removeNode", nodeId: rng.pick(cs.voters) }] }, kind: "remove-voter" } : null),
      () => {
        // A joint change: swap a voter for a learner (or a brand-new member), left automatically or explicitly.
        const incoming = cs.learners.length > 0 ? rng.pick(cs.learners) : spare;
        if (!incoming || cs.voters.length < 3) return null;
        const outgoing = rng.pick(cs.voters);
        return {
          cc: {
            changes: [
              { kind: "addVoter", nodeId: incoming },
              { kind: "removeNode", nodeId: outgoing },
            ],
            transition: rng.chance(0.5) ? "explicit" : "auto",
          },
          newHost: incoming === spare ? spare : undefined,
          kind: "joint-swap",
        };
      },
    ];
    // Half the time a joint change (the rarest and subtlest windows), else any of the four.
    const plan = (rng.chance(0.5) ? options[3] : rng.pick(options))();
    if (!plan) return;
    if (!this.propose(leader, plan.cc, plan.kind, plan.newHost)) return;
    if (plan.newHost) {
      this.nextSpare++;
      // A new member starts with an EMPTY disk and learns everything (a snapshot first) from the leader.
      this.cluster.addHost(plan.newHost, null, 1);
    }
    if (plan.kind === "joint-swap" && rng.chance(0.8)) {
      // Faults around a joint change: members disagree about the configuration while it spreads.
      const delay = rng.int(0, 2 * TICK);
      const roll = rng.next();
      this.later(delay, () => {
        const l = this.cluster.leader();
        const up = this.members().filter((h) => h.up);
        if (up.length === 0) return;
        const victim = l && rng.chance(0.6) ? l : rng.pick(up);
        if (roll < 0.5) {
          this.splitAroundJoint(cs.voters, plan.cc, l);
        } else if (roll < 0.75) {
          this.ctx.fault("crash-around-joint");
          this.cluster.crash(victim);
          this.later(rng.int(2 * TICK, 10 * TICK), () => this.cluster.restart(victim));
        } else if (!this.ctx.network.partitioned) {
          this.ctx.fault("isolate-around-joint");
          this.isolate(victim, rng.int(3 * TICK, 20 * TICK));
        }
      });
    }
  }

  /**
   * Splits the cluster while a joint change spreads, so that one side holds a majority of the incoming voters
   * but not of the outgoing ones and the other side the reverse: neither may elect a leader or commit (both
   * majorities are needed), though each has what one configuration alone would call a quorum. Members on the
   * outgoing side are restarted now and then, so some come back with the old configuration only.
   */
  private splitAroundJoint(outgoing: readonly NodeId[], cc: ConfChange, leader: SimHost | undefined): void {
    if (this.ctx.network.partitioned) return;
    const rng = this.ctx.rng;
    const removed = new Set(cc.changes.filter((c) => c.kind === "removeNode").map((c) => c.nodeId));
    const added = cc.changes.filter((c) => c.kind === "addVoter").map((c) => c.nodeId);
    const incoming = [...outgoing.filter((id) => !removed.has(id)), ...added.filter((id) => !outgoing.includes(id))];
    const shared = outgoing.filter((id) => incoming.includes(id));
    // The incoming side: the new voters and just enough shared ones (the leader first) for an incoming majority.
    const newOnly = incoming.filter((id) => !outgoing.includes(id));
    const need = Math.floor(incoming.length / 2) + 1 - newOnly.length;
    const ordered = leader && shared.includes(leader.id) ? [leader.id, ...shared.filter((id) => id !== leader.id)] : shared;
    const side = [...newOnly, ...ordered.slice(0, Math.max(0, need))];
    const others = this.members().map((h) => h.id).filter((id) => !side.includes(id));
    if (side.length === 0 || others.length === 0) return;
    this.ctx.fault("split-around-joint");
    this.ctx.log(() => `partition around the joint change: [${side.join(",")}] | [${others.join(",")}]`);
    this.ctx.network.partition(side, others);
    this.later(rng.int(5 * TICK, 30 * TICK), () => this.healNetwork());
    for (const id of others) {
      const h = this.cluster.get(id);
      if (h?.up && rng.chance(0.5)) {
        this.later(rng.int(0, 3 * TICK), () => {
          this.cluster.crash(h);
          this.later(rng.int(TICK, 5 * TICK), () => this.cluster.restart(h));
        });
      }
    }
  }

  private propose(leader: SimHost, cc: ConfChange, kind: string, newHost?: NodeId): boolean {
    const member = newHost ? { id: newHost, peerUrl: peerUrl(newHost), clientUrl: clientUrl(newHost) } : undefined;
    try {
      leader.replica.changeMembership(cc, member).catch(() => {});
    } catch (e) {
      if (e instanceof ConfChangeError) return false;
      return false;
    }
    this.ctx.fault(kind);
    this.ctx.log(() => `${leader.id} proposes ${kind}: ${cc.changes.map((c) => `${c.kind} ${c.nodeId}`).join(" + ") || "leave joint"}`);
    return true;
  }

  /**
   * A leader that crashes (or is cut off) right after its election, before its no-op and the entries it
   * inherited have spread, leaves divergent logs behind: the raw material of Raft's Figure 8.
   */
  newLeader(host: SimHost): void {
    if (!this.active) return;
    const churn = this.ctx.now < this.churnUntil;
    if (!churn && !this.ctx.rng.chance(this.opts.newLeaderStrikeRate)) return;
    this.strikeLeader(host, this.ctx.rng.int(0, churn ? 40 : 60), "new-leader", churn);
  }

  /** A leader cut off just after a proposal leaves an entry on a minority (the other half of Figure 8). */
  proposed(host: SimHost): void {
    if (!this.active) return;
    const churn = this.ctx.now < this.churnUntil;
    if (!this.ctx.rng.chance(churn ? 0.15 : this.opts.proposalStrikeRate)) return;
    this.strikeLeader(host, this.ctx.rng.int(0, 5), "proposing-leader", churn);
  }

  /**
   * A new leader applying an entry it inherited: in a correct cluster its own no-op is already on a majority by
   * then, so striking it now is harmless; a leader that committed the old entry by counting replicas alone (the
   * rule of Figure 8 broken) leaves it committed on too few members.
   */
  inheritedApplied(host: SimHost): void {
    if (!this.active || !this.ctx.rng.chance(this.ctx.now < this.churnUntil ? 0.9 : this.opts.inheritedStrikeRate)) return;
    this.strikeLeader(host, this.ctx.rng.int(0, 2), "leader-applying-inherited", this.ctx.now < this.churnUntil);
  }

  /** Cuts `host` off or crashes it after `delay` if it still leads; during a churn only briefly. */
  private strikeLeader(host: SimHost, delay: number, what: string, brief: boolean): void {
    const rng = this.ctx.rng;
    const inc = host.incarnation;
    const isolate = rng.chance(0.5);
    // Short, about an election, and several elections long: which of them overlap decides which logs diverge.
    const downFor = rng.pick(brief ? [[TICK / 2, 3 * TICK], [5 * TICK, 15 * TICK], [15 * TICK, 30 * TICK]] : [[TICK, 15 * TICK]]);
    const downMs = rng.int(downFor[0], downFor[1]);
    this.later(delay, () => {
      if (!host.up || host.incarnation !== inc || !host.replica.isLeader) return;
      if (isolate) {
        this.ctx.fault(`isolate-${what}`);
        this.isolate(host, downMs);
      } else {
        this.ctx.fault(`crash-${what}`);
        this.cluster.crash(host);
        this.later(downMs, () => this.cluster.restart(host));
      }
    });
  }

  private healNetwork(): void {
    if (!this.ctx.network.partitioned) return;
    this.ctx.log(() => "the network heals");
    this.ctx.network.healAll();
  }

  /** End of the fault phase: heal the network, fix disks and clocks, restart every stopped member. */
  heal(): void {
    this.active = false;
    this.ctx.network.healAll();
    this.ctx.network.profile = calmNetwork;
    for (const h of this.cluster.hosts.values()) {
      h.diskProfile = fastDisk;
      h.disk.syncFailureRate = 0;
      h.pausedUntil = Math.min(h.pausedUntil, this.ctx.now);
      if (!h.up && !h.retired) this.cluster.restart(h);
    }
  }
}
