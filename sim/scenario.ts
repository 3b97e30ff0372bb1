// Scripted scenarios: the simulator's cluster, network and invariant checker driven step by step by a test
// instead of by the nemesis — for situations random search rarely reaches (Raft's Figure 8). No client
// workload; nodes never campaign on their own (huge election timeout), only when the script says so.

import type { RaftConfig } from "../src/raft/node.js";
import type { Message, NodeId } from "../src/raft/types.js";
import { Cluster, TICK, type Host, type SimContext, type SimStats } from "./cluster.js";
import { EventQueue } from "./event-queue.js";
import { encodeCommand } from "../src/statemachine/index.js";
import { CoordinationChecker } from "./coordination-checker.js";
import { rawBytes } from "./entry-data.js";
import { InvariantChecker } from "./invariants.js";
import { Network } from "./network.js";
import { Prng } from "./prng.js";

export class Scenario {
  readonly ctx: SimContext;
  readonly cluster: Cluster;
  readonly lines: string[] = [];

  constructor(
    ids: NodeId[],
    raftOptions: Omit<RaftConfig, "id" | "rng" | "applied">,
    onNodeCreated?: (h: Host) => void,
  ) {
    const rng = new Prng(1);
    const stats: SimStats = {
      steps: 0,
      elections: 0,
      faults: new Map(),
      snapshotsTaken: 0,
      snapshotsInstalled: 0,
      tornWrites: 0,
      leaseExpiriesProposed: 0,
    };
    const ctx: SimContext = {
      queue: new EventQueue<() => void>(),
      now: 0,
      rng,
      network: new Network(rng.fork()),
      checker: new InvariantChecker(),
      coordination: new CoordinationChecker(),
      stats,
      log: (line) => this.lines.push(`${ctx.now} ${line()}`),
      fault: () => {},
      onNewLeader: () => {},
    };
    this.ctx = ctx;
    const noHooks = { onApplied: () => {}, onCommitted: () => {}, onReadState: () => {}, onAppliedUpTo: () => {} };
    this.cluster = new Cluster(ctx, noHooks, raftOptions, Number.MAX_SAFE_INTEGER, 0, onNodeCreated);
    for (const id of ids) this.cluster.addHost(id, ids, TICK);
  }

  host(id: NodeId): Host {
    const h = this.cluster.get(id);
    if (!h) throw new Error(`scenario: no host ${id}`);
    return h;
  }

  /** Let virtual time pass; invariant violations surface as exceptions. */
  run(ticks: number): void {
    const until = this.ctx.now + ticks * TICK;
    for (;;) {
      const t = this.ctx.queue.peekTime();
      if (t === undefined || t > until) break;
      const next = this.ctx.queue.pop()!;
      this.ctx.now = next.time;
      next.event();
    }
    this.ctx.now = until;
  }

  campaign(id: NodeId): void {
    const h = this.host(id);
    h.node!.campaign();
    this.cluster.afterInput(h);
  }

  /** Proposes a put of key `scenario/<value>`; see `holds`. */
  propose(id: NodeId, value: string): number {
    const h = this.host(id);
    const index = h.node!.propose(encodeCommand({ op: "put", key: `scenario/${value}`, value: rawBytes(value) }));
    this.cluster.afterInput(h);
    return index;
  }

  /** Whether `id`'s state machine holds the put of `value` (see `propose`). */
  holds(id: NodeId, value: string): boolean {
    return this.host(id).sm.coordination.stateMachine.get(`scenario/${value}`) !== undefined;
  }

  dropIf(pred: ((m: Message) => boolean) | null): void {
    this.ctx.network.dropIf = pred;
  }
}
