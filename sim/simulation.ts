// One simulated run: a cluster of real RaftNodes running the real coordination state machine, KV and
// lock/election clients, and a fault phase followed by a liveness phase, all driven by one seeded PRNG through
// a discrete-event queue. `runSeed(seed)` is a pure function of its options: the same seed gives the same
// result, byte for byte.

import { NotLeaderError, ProposalDroppedError } from "../src/raft/errors.js";
import type { NodeId } from "../src/raft/types.js";
import { Cluster, TICK, type ClusterHooks, type Host, type SimContext, type SimStats } from "./cluster.js";
import { EventQueue } from "./event-queue.js";
import { encodeCommand } from "../src/statemachine/index.js";
import { CoordinationChecker } from "./coordination-checker.js";
import { CoordinationClients } from "./coordination-clients.js";
import { valueBytes } from "./entry-data.js";
import { checkElectionHistories, checkKvHistory, checkLockHistories } from "./history.js";
import { InvariantChecker, InvariantViolation } from "./invariants.js";
import { KvClients } from "./kv-clients.js";
import { Nemesis } from "./nemesis.js";
import { Network } from "./network.js";
import { Prng } from "./prng.js";
import type { MachineFactory } from "./replica.js";
import { Requests } from "./requests.js";

export interface SimOptions {
  seed: number;
  /** 3 or 5 founding voters. */
  nodes: number;
  /** Ticks of faults before the liveness phase. */
  faultTicks?: number;
  /** Ticks the healed cluster has to elect a leader and commit a new proposal. */
  livenessTicks?: number;
  /** Receives the narrative / trace lines as they happen. */
  onLog?: (time: number, line: string) => void;
  /** Test hook: called once the cluster exists, before the run (e.g. to corrupt state on purpose). */
  tamper?: (sim: { cluster: Cluster; ctx: SimContext }) => void;
  /** Test hook: sees every RaftNode created, including on restarts (to break the core on purpose). */
  onNodeCreated?: (host: Host) => void;
  /** Test hook: how hosts build their state machine (default: the real one). */
  machine?: MachineFactory;
}

/**
 * What a seed counts, in the order the summary adds them up: one list, so a seed's result and the summary
 * cannot drift apart. kvOpsChecked / linearizableKeys / unknownKeys: KV operations checked for
 * linearizability and the keys found linearizable / too hard for the search budget; electionChanges:
 * leadership changes of the client-level elections (not Raft's).
 */
export const SEED_COUNTERS = [
  "steps",
  "virtualTicks",
  "elections",
  "committed",
  "writesAcked",
  "readsCompleted",
  "kvOpsChecked",
  "linearizableKeys",
  "unknownKeys",
  "lockGrants",
  "lockReleases",
  "electionChanges",
  "fencedAccepted",
  "fencedRefused",
  "resourceAccepted",
  "resourceRefused",
  "leaseExpiries",
  "outputsCompared",
  "snapshotsTaken",
  "snapshotsInstalled",
  "tornWrites",
  "invariantChecks",
] as const;
export type SeedCounters = Record<(typeof SEED_COUNTERS)[number], number>;

export interface SeedResult extends SeedCounters {
  seed: number;
  nodes: number;
  membership: boolean;
  faults: Record<string, number>;
  violation: { invariant: string; message: string } | null;
}

/** A run that goes on far past its budget is stuck in the simulator itself: fail loudly. */
const MAX_STEPS = 2_000_000;

export function runSeed(opts: SimOptions): SeedResult {
  const { seed, nodes } = opts;
  if (nodes !== 3 && nodes !== 5) throw new RangeError(`runSeed: nodes must be 3 or 5, got ${nodes}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new RangeError(`runSeed: seed must be an integer in [0, 2^32), got ${seed}`);
  const rng = new Prng(seed);
  const faultTicks = opts.faultTicks ?? rng.int(300, 600);
  const livenessTicks = opts.livenessTicks ?? 200;
  const membership = rng.chance(0.3);
  const stats: SimStats = {
    steps: 0,
    elections: 0,
    faults: new Map(),
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    tornWrites: 0,
    leaseExpiriesProposed: 0,
  };
  const onLog = opts.onLog;
  const ctx: SimContext = {
    queue: new EventQueue<() => void>(),
    now: 0,
    rng,
    network: new Network(rng.fork()),
    checker: new InvariantChecker(),
    coordination: new CoordinationChecker(),
    stats,
    log: onLog ? (line) => onLog(ctx.now, line()) : () => {},
    fault: (kind) => stats.faults.set(kind, (stats.faults.get(kind) ?? 0) + 1),
    onNewLeader: (host) => nemesis?.newLeader(host),
  };
  let nemesis: Nemesis | undefined;
  const requests = new Requests(ctx);
  const kv = new KvClients(ctx, requests, rng.int(2, 4), rng.int(3, 5));
  const coordination = new CoordinationClients(ctx, requests, ctx.coordination, rng.int(1, 3));
  const raftOptions = {
    electionTicks: 10,
    heartbeatTicks: 1,
    // The server's defaults in most seeds; the other paths must be just as safe.
    preVote: rng.chance(0.8),
    checkQuorum: rng.chance(0.8),
    maxInflight: rng.pick([2, 8, 256]),
    maxInflightBytes: rng.pick([0, 0, 2048]),
    maxBatchEntries: rng.pick([1, 4, 64, 1024]),
    maxBatchBytes: rng.pick([1 << 20, 1 << 20, 256]),
  };
  const hooks: ClusterHooks = {
    onApplied: (host, e, output) => {
      requests.onApplied(host, e, output);
      coordination.observe(host, output);
    },
    onCommitted: (index, output) => {
      requests.onCommitted(index, output);
      coordination.committed(output);
    },
    onReadState: (host, index, readCtx) => requests.onReadState(host, index, readCtx),
    onAppliedUpTo: (host) => requests.onAppliedUpTo(host),
  };
  const cluster = new Cluster(
    ctx,
    hooks,
    raftOptions,
    // Snapshot every 16..64 applied entries: the real state machine's snapshot costs more than a list's.
    rng.int(16, 64),
    rng.int(0, 5),
    opts.onNodeCreated,
    opts.machine,
  );
  requests.cluster = cluster;
  const ids: NodeId[] = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  const spareIds: NodeId[] = [`n${nodes + 1}`, `n${nodes + 2}`];

  const result: SeedResult = {
    seed,
    nodes,
    membership,
    steps: 0,
    virtualTicks: 0,
    faults: {},
    elections: 0,
    committed: 0,
    writesAcked: 0,
    readsCompleted: 0,
    kvOpsChecked: 0,
    linearizableKeys: 0,
    unknownKeys: 0,
    lockGrants: 0,
    lockReleases: 0,
    electionChanges: 0,
    fencedAccepted: 0,
    fencedRefused: 0,
    resourceAccepted: 0,
    resourceRefused: 0,
    leaseExpiries: 0,
    outputsCompared: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    tornWrites: 0,
    invariantChecks: 0,
    violation: null,
  };
  const faultEnd = faultTicks * TICK;
  const deadline = faultEnd + livenessTicks * TICK;
  let liveAt = -1;
  let stuck: string | null = null;
  try {
    for (const id of ids) cluster.addHost(id, ids, rng.int(TICK - 20, TICK + 20));
    opts.tamper?.({ cluster, ctx });
    const faults = new Nemesis(ctx, cluster, {
      minGap: 2 * TICK,
      maxGap: 12 * TICK,
      membership,
      newLeaderStrikeRate: rng.pick([0.02, 0.1, 0.4]),
      spareIds,
    });
    nemesis = faults;
    kv.start(cluster, faultEnd);
    coordination.start(cluster, faultEnd);
    faults.start();
    ctx.queue.push(faultEnd, () => {
      ctx.log(() => "faults stop: the network heals, disks and clocks recover, crashed nodes restart");
      faults.heal();
      probeLiveness(
        ctx,
        cluster,
        (at) => (liveAt = at),
        deadline,
        (why) => (stuck = why),
      );
    });
    while (liveAt < 0 && stuck === null) {
      const next = ctx.queue.pop();
      if (!next || next.time > deadline) break;
      ctx.now = next.time;
      next.event();
      if (stats.steps > MAX_STEPS) throw new Error(`seed ${seed}: over ${MAX_STEPS} steps; the simulator is looping`);
    }
    if (stuck !== null)
      throw new InvariantViolation("liveness", `members did not catch up within ${livenessTicks} ticks: ${stuck}`);
    if (liveAt < 0) {
      const leader = cluster.leader();
      throw new InvariantViolation(
        "liveness",
        `no leader committed a new proposal within ${livenessTicks} ticks after the faults healed ` +
          `(leader: ${leader ? `${leader.id} term ${leader.node!.term}` : "none"})`,
      );
    }
    const verdict = checkKvHistory(kv.history);
    result.kvOpsChecked = verdict.operations;
    result.linearizableKeys = verdict.linearizableKeys;
    result.unknownKeys = verdict.unknownKeys;
    checkLockHistories(coordination.resources.values());
    checkElectionHistories(coordination);
  } catch (e) {
    if (!(e instanceof InvariantViolation)) {
      // The core asserting (InvariantError) or throwing where it must not is a finding too.
      const err = e as Error;
      result.violation = { invariant: `exception (${err.name})`, message: err.message };
    } else {
      result.violation = { invariant: e.invariant, message: e.message };
    }
    ctx.log(() => `VIOLATION ${result.violation!.message}`);
  }
  result.steps = stats.steps;
  result.virtualTicks = Math.round(ctx.now / TICK);
  result.faults = Object.fromEntries([...stats.faults.entries()].sort(([a], [b]) => a.localeCompare(b)));
  result.elections = stats.elections;
  result.committed = ctx.checker.committedCount();
  result.writesAcked = kv.acked;
  result.readsCompleted = kv.reads;
  const cs = ctx.coordination.stats();
  result.lockGrants = cs.grants;
  result.lockReleases = cs.releases + cs.leaseEndReleases;
  result.electionChanges = cs.leaderChanges;
  result.fencedAccepted = cs.fencedAccepted;
  result.fencedRefused = cs.fencedRefused;
  result.outputsCompared = cs.outputsCompared;
  result.resourceAccepted = coordination.counts.resourceAccepted;
  result.resourceRefused = coordination.counts.resourceRefused;
  result.leaseExpiries = stats.leaseExpiriesProposed;
  result.snapshotsTaken = stats.snapshotsTaken;
  result.snapshotsInstalled = stats.snapshotsInstalled;
  result.tornWrites = stats.tornWrites;
  result.invariantChecks = ctx.checker.checks + ctx.coordination.checks;
  return result;
}

/**
 * After the heal: every tick, propose a marker on whichever node leads, until one is applied on the node that
 * proposed it; then every member of the configuration must apply it too (no follower left stuck behind).
 */
function probeLiveness(
  ctx: SimContext,
  cluster: Cluster,
  done: (at: number) => void,
  deadline: number,
  fail: (why: string) => void,
): void {
  let n = 0;
  const pending = new Map<string, { host: string; index: number }>();
  let committed: { host: string; index: number; marker: string } | null = null;
  const laggards = (): Host[] => {
    const cs = cluster.get(committed!.host)!.confState;
    return [...cs.voters, ...cs.learners]
      .map((id) => cluster.get(id))
      .filter((h): h is Host => h !== undefined && !h.retired && h.sm.appliedIndex < committed!.index);
  };
  const probe = (): void => {
    if (committed === null) {
      for (const [marker, p] of pending) {
        const h = cluster.get(p.host);
        if (h?.up && h.sm.appliedIndex >= p.index && h.sm.coordination.stateMachine.get(marker) !== undefined) {
          committed = { ...p, marker };
          ctx.log(() => `liveness: ${p.host} committed and applied ${marker} at index ${p.index}`);
          break;
        }
      }
    }
    if (committed !== null) {
      const behind = laggards();
      if (behind.length === 0) {
        ctx.log(() => `liveness: every member applied ${committed!.marker}; the cluster is live`);
        done(ctx.now);
        return;
      }
      if (ctx.now + TICK > deadline) {
        fail(
          `${committed.marker} committed at index ${committed.index}, but ` +
            behind.map((h) => `${h.id} (${h.up ? "up" : "down"}) applied only ${h.sm.appliedIndex}`).join(", "),
        );
        return;
      }
    } else {
      const leader = cluster.leader();
      if (leader) {
        const marker = `live/${++n}`;
        try {
          const index = leader.node!.propose(encodeCommand({ op: "put", key: marker, value: valueBytes(n) }));
          pending.set(marker, { host: leader.id, index });
          cluster.afterInput(leader);
        } catch (e) {
          if (!(e instanceof NotLeaderError || e instanceof ProposalDroppedError)) throw e;
        }
      }
    }
    if (ctx.now + TICK <= deadline) ctx.queue.push(ctx.now + TICK, probe);
  };
  ctx.queue.push(ctx.now + TICK, probe);
}
