// A scripted run of production hosts on the simulated world: the same cluster, clients and checks as a seed,
// but driven step by step by a test instead of by the nemesis, for situations a test wants to set up exactly.

import { DEFAULT_READIES_IN_FLIGHT } from "../src/host/host-config.js";
import type { NodeId } from "../src/raft/types.js";
import { ClientConnection } from "./client-connection.js";
import { SimCluster, TICK, type ClusterOptions, type HostParams, type SimContext } from "./cluster.js";
import { newSimContext } from "./context.js";
import { Prng } from "./prng.js";
import { Session } from "./session.js";

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export const SCENARIO_PARAMS: HostParams = {
  clusterId: "scenario",
  tickMs: TICK,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotEntries: 1000,
  snapshotBytes: 1 << 20,
  readiesInFlight: DEFAULT_READIES_IN_FLIGHT,
  storage: { segmentBytes: 65536 },
  requestTimeoutMs: 10 * TICK,
  maxRequestBytes: 1 << 20,
  maxInflightPerConnection: 64,
  maxConnections: 64,
  maxBufferedBytes: 1 << 20,
};

export class Scenario {
  readonly ctx: SimContext;
  readonly cluster: SimCluster;
  readonly lines: string[] = [];
  /** A finding (a broken invariant) reported while running. */
  failure: unknown;

  constructor(ids: NodeId[], params: Partial<HostParams> = {}, seed = 1, hooks: Pick<ClusterOptions, "onHostStarted"> = {}) {
    const ctx: SimContext = newSimContext(new Prng(seed), {
      tracing: true,
      log: (line) => this.lines.push(`${ctx.now.toFixed(1)} ${line()}`),
      fail: (e) => (this.failure ??= e),
    });
    this.ctx = ctx;
    this.cluster = new SimCluster(ctx, { params: { ...SCENARIO_PARAMS, ...params }, ...hooks });
    for (const id of ids) this.cluster.addHost(id, ids, 1);
  }

  /** Lets `ms` of virtual time pass (every event, and the promise jobs it releases); throws any finding. */
  async run(ms: number): Promise<void> {
    const until = this.ctx.now + ms;
    for (;;) {
      await settle();
      if (this.failure !== undefined) throw this.failure;
      const t = this.ctx.queue.peekTime();
      if (t === undefined || t > until) break;
      const next = this.ctx.queue.pop()!;
      this.ctx.now = next.time;
      next.event();
    }
    this.ctx.now = until;
  }

  /** Runs until `cond` holds (checked after every event) or `ms` pass; returns whether it held. */
  async runUntil(cond: () => boolean, ms: number): Promise<boolean> {
    const until = this.ctx.now + ms;
    while (!cond()) {
      await settle();
      if (this.failure !== undefined) throw this.failure;
      const t = this.ctx.queue.peekTime();
      if (t === undefined || t > until) return false;
      const next = this.ctx.queue.pop()!;
      this.ctx.now = next.time;
      next.event();
    }
    return true;
  }

  /** A client with an exactly-once session, connected to members as a simulated client is. */
  client(endpoint: string): { conn: ClientConnection; session: Session } {
    const conn = new ClientConnection(this.ctx, this.cluster, endpoint);
    return { conn, session: new Session(conn) };
  }

  /** Awaits `p` while letting virtual time run (at most `ms`). */
  async settle<T>(p: Promise<T>, ms = 100 * TICK): Promise<T> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    if (!(await this.runUntil(() => done, ms))) throw new Error(`scenario: still waiting after ${ms} ms of virtual time`);
    return p;
  }
}
