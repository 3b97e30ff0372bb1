// The fault injector. During the fault phase it picks a fault every so often: crashes (often of the leader)
// with restarts, symmetric and one-way partitions, leader isolation, network weather (loss, duplication,
// delay spikes), slow disks, clock drift, leadership transfers and — in some seeds — membership changes.
// `heal()` ends the fault phase: everything back to normal, every crashed member restarted.

import { ConfChangeError } from "../src/raft/confchange.js";
import { NotLeaderError, ProposalDroppedError } from "../src/raft/errors.js";
import type { ConfChange, NodeId } from "../src/raft/types.js";
import { TICK, fastDisk, type Cluster, type Host, type SimContext } from "./cluster.js";
import { calmNetwork } from "./network.js";

export interface NemesisOptions {
  /** Time units between faults. */
  minGap: number;
  maxGap: number;
  membership: boolean;
  /** Probability that a newly elected leader is crashed or cut off right away. */
  newLeaderStrikeRate: number;
  /** Ids a membership change may add. */
  spareIds: NodeId[];
}

export class Nemesis {
  private active = true;
  private nextSpare = 0;

  constructor(
    private readonly ctx: SimContext,
    private readonly cluster: Cluster,
    private readonly opts: NemesisOptions,
  ) {}

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    this.ctx.queue.push(this.ctx.now + this.ctx.rng.int(this.opts.minGap, this.opts.maxGap), () => {
      if (!this.active) return;
      this.strike();
      this.schedule();
    });
  }

  private later(delay: number, action: () => void): void {
    this.ctx.queue.push(this.ctx.now + delay, () => {
      if (this.active) action();
    });
  }

  private strike(): void {
    const rng = this.ctx.rng;
    const roll = rng.next();
    const members = [...this.cluster.hosts.values()].filter((h) => !h.retired);
    const up = members.filter((h) => h.up);
    const leader = this.cluster.leader();
    if (roll < 0.2) {
      // Crash: the leader in half the cases. Keep a majority of the founding size running most of the time.
      const down = members.length - up.length;
      if (up.length === 0 || down >= Math.floor((members.length - 1) / 2) + (rng.chance(0.2) ? 1 : 0)) return;
      // Half the time prefer a node whose fsync is in flight: its crash loses or tears the batch.
      const syncing = up.filter((h) => h.pending.length > 0);
      const victim =
        syncing.length > 0 && rng.chance(0.5) ? rng.pick(syncing) : leader && rng.chance(0.5) ? leader : rng.pick(up);
      this.ctx.fault(victim.pending.length > 0 ? "crash-mid-fsync" : victim === leader ? "crash-leader" : "crash");
      this.cluster.crash(victim);
      this.later(rng.int(2 * TICK, 15 * TICK), () => this.cluster.restart(victim));
    } else if (roll < 0.3) {
      if (this.ctx.network.partitioned) return;
      const ids = members.map((h) => h.id);
      const side = ids.filter(() => rng.chance(0.4));
      if (side.length === 0 || side.length === ids.length) return;
      this.ctx.fault("partition");
      this.ctx.log(() => `partition: [${side.join(",")}] | [${ids.filter((i) => !side.includes(i)).join(",")}]`);
      this.ctx.network.partition(
        side,
        ids.filter((i) => !side.includes(i)),
      );
      this.later(rng.int(5 * TICK, 30 * TICK), () => this.healNetwork());
    } else if (roll < 0.38) {
      if (this.ctx.network.partitioned || !leader) return;
      this.ctx.fault("isolate-leader");
      this.ctx.log(() => `partition isolates leader ${leader.id}`);
      this.ctx.network.partition(
        [leader.id],
        members.map((h) => h.id).filter((i) => i !== leader.id),
      );
      this.later(rng.int(5 * TICK, 30 * TICK), () => this.healNetwork());
    } else if (roll < 0.46) {
      if (members.length < 2) return;
      const a = rng.pick(members).id;
      const b = rng.pick(members.filter((h) => h.id !== a)).id;
      this.ctx.fault("one-way-cut");
      this.ctx.log(() => `one-way cut ${a} → ${b}`);
      this.ctx.network.cutLink(a, b);
      this.later(rng.int(5 * TICK, 30 * TICK), () => this.healNetwork());
    } else if (roll < 0.58) {
      this.ctx.fault("network-weather");
      const spiky = rng.chance(0.5);
      this.ctx.network.profile = {
        minDelay: rng.int(1, 10),
        maxDelay: rng.int(10, 80),
        spikeRate: spiky ? rng.next() * 0.1 : 0,
        spikeDelay: rng.int(100, 6 * TICK),
        lossRate: rng.chance(0.5) ? rng.next() * 0.2 : 0,
        duplicateRate: rng.chance(0.5) ? rng.next() * 0.1 : 0,
      };
      this.ctx.log(
        () =>
          `network weather: loss ${(this.ctx.network.profile.lossRate * 100).toFixed(0)}%, ` +
          `duplicates ${(this.ctx.network.profile.duplicateRate * 100).toFixed(0)}%, delay ${this.ctx.network.profile.minDelay}-${this.ctx.network.profile.maxDelay}` +
          `${spiky ? " with spikes" : ""}`,
      );
      this.later(rng.int(10 * TICK, 40 * TICK), () => (this.ctx.network.profile = calmNetwork));
    } else if (roll < 0.68) {
      if (up.length === 0) return;
      const h = rng.pick(up);
      this.ctx.fault("slow-disk");
      h.disk = { minLatency: rng.int(5, 50), maxLatency: rng.int(50, 4 * TICK), tornRate: 0.5 };
      this.ctx.log(() => `${h.id}'s disk turns slow (fsync up to ${h.disk.maxLatency} units)`);
      this.later(rng.int(10 * TICK, 40 * TICK), () => (h.disk = fastDisk));
    } else if (roll < 0.76) {
      if (up.length === 0) return;
      const h = rng.pick(up);
      this.ctx.fault("clock-drift");
      h.tickPeriod = rng.int(TICK / 2, 2 * TICK);
      this.ctx.log(() => `${h.id}'s clock now ticks every ${h.tickPeriod} units`);
    } else if (roll < 0.86) {
      if (!leader) return;
      const voters = leader
        .node!.status()
        .confState.voters.filter((id) => id !== leader.id && this.cluster.get(id)?.up);
      if (voters.length === 0) return;
      const to = rng.pick(voters);
      try {
        leader.node!.transferLeadership(to);
      } catch (e) {
        if (e instanceof NotLeaderError || e instanceof ProposalDroppedError) return;
        throw e;
      }
      this.ctx.fault("transfer-leadership");
      this.ctx.log(() => `${leader.id} transfers leadership to ${to}`);
      this.cluster.afterInput(leader);
    } else if (this.opts.membership) {
      if (leader) this.changeMembership(leader);
    }
  }

  private changeMembership(leader: Host): void {
    const rng = this.ctx.rng;
    const cs = leader.node!.status().confState;
    if (cs.votersOutgoing.length > 0) return; // joint: the leader leaves it by itself
    const spare = this.opts.spareIds[this.nextSpare];
    const options: (() => { cc: ConfChange; newHost?: NodeId; kind: string } | null)[] = [
      () =>
        spare
          ? { cc: { changes: [{ kind: "addLearner", nodeId: spare }] }, newHost: spare, kind: "add-learner" }
          : null,
      () =>
        cs.learners.length > 0
          ? { cc: { changes: [{ kind: "addVoter", nodeId: rng.pick(cs.learners) }] }, kind: "promote-learner" }
          : null,
      () =>
        cs.voters.length > 3
          ? { cc: { changes: [{ kind: "removeNode", nodeId: rng.pick(cs.voters) }] }, kind: "remove-voter" }
          : null,
      () => {
        // A joint change: swap a voter for a learner (or a brand-new node).
        const incoming = cs.learners.length > 0 ? rng.pick(cs.learners) : spare;
        if (!incoming || cs.voters.length < 3) return null;
        const outgoing = rng.pick(cs.voters);
        return {
          cc: {
            changes: [
              { kind: "addVoter", nodeId: incoming },
              { kind: "removeNode", nodeId: outgoing },
            ],
          },
          newHost: incoming === spare ? spare : undefined,
          kind: "joint-swap",
        };
      },
    ];
    const plan = rng.pick(options)();
    if (!plan) return;
    try {
      leader.node!.proposeConfChange(plan.cc);
    } catch (e) {
      if (e instanceof NotLeaderError || e instanceof ProposalDroppedError || e instanceof ConfChangeError) return;
      throw e;
    }
    this.ctx.fault(plan.kind);
    this.ctx.log(
      () => `${leader.id} proposes ${plan.kind}: ${plan.cc.changes.map((c) => `${c.kind} ${c.nodeId}`).join(" + ")}`,
    );
    if (plan.newHost) {
      this.nextSpare++;
      // A new member starts with an EMPTY storage and learns everything (a snapshot first) from the leader.
      this.cluster.addHost(plan.newHost, null, TICK);
    }
    this.cluster.afterInput(leader);
  }

  /**
   * A leader that crashes (or is cut off) right after its election, before its no-op and the entries it
   * inherited have spread, leaves divergent logs behind: the raw material of Raft's Figure 8.
   */
  newLeader(host: Host): void {
    const rng = this.ctx.rng;
    if (!this.active || !rng.chance(this.opts.newLeaderStrikeRate)) return;
    const delay = rng.int(0, 30);
    const inc = host.incarnation;
    const isolate = rng.chance(0.5);
    this.later(delay, () => {
      if (!host.up || host.incarnation !== inc || host.node!.role !== "leader") return;
      if (isolate) {
        if (this.ctx.network.partitioned) return;
        this.ctx.fault("isolate-new-leader");
        this.ctx.log(() => `new leader ${host.id} is cut off right after its election`);
        const others = [...this.cluster.hosts.keys()].filter((id) => id !== host.id);
        this.ctx.network.partition([host.id], others);
        this.later(rng.int(3 * TICK, 20 * TICK), () => this.healNetwork());
      } else {
        this.ctx.fault("crash-new-leader");
        this.cluster.crash(host);
        this.later(rng.int(2 * TICK, 15 * TICK), () => this.cluster.restart(host));
      }
    });
  }

  private healNetwork(): void {
    if (!this.ctx.network.partitioned) return;
    this.ctx.log(() => "the network heals");
    this.ctx.network.healAll();
  }

  /** End of the fault phase: heal the network, fix disks and clocks, restart every crashed member. */
  heal(): void {
    this.active = false;
    this.ctx.network.healAll();
    this.ctx.network.profile = calmNetwork;
    for (const h of this.cluster.hosts.values()) {
      h.disk = fastDisk;
      h.tickPeriod = 100;
      if (!h.up && !h.retired) this.cluster.restart(h);
    }
  }
}
