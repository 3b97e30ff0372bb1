// One simulated run: a cluster of production hosts (src/host), KV, lock, election and watch clients speaking the
// client protocol, and a fault phase followed by a liveness phase, all driven by one seeded PRNG through a
// discrete-event queue. The hosts' code is asynchronous (promises), so after every event the promise jobs it
// released run to completion before the next event, as in a real event loop. `runSeed(seed)` is a pure
// function of its options: the same seed gives the same result, byte for byte.

import { DEFAULT_APPLY_ENTRIES_PER_TURN, DEFAULT_READIES_IN_FLIGHT, DEFAULT_SNAPSHOT_BACKLOG_BYTES, DEFAULT_SNAPSHOT_STEP_BYTES } from "../src/host/host-config.js";
import { SNAPSHOT_PIECE_BYTES } from "../src/statemachine/snapshot.js";
import type { NodeId } from "../src/raft/types.js";
import type { ApplyOutput } from "../src/statemachine/index.js";
import { ClientConnection } from "./client-connection.js";
import { SimCluster, TICK, type HostParams, type SimContext, type SimHost } from "./cluster.js";
import { newSimContext } from "./context.js";
import { CoordinationClients } from "./coordination-clients.js";
import { valueBytes } from "./entry-data.js";
import { checkElectionHistories, checkKvHistory, checkLockHistories, checkWatchHistories } from "./history.js";
import { InvariantViolation } from "./invariants.js";
import { KvClients } from "./kv-clients.js";
import { AuthClients } from "./auth-clients.js";
import type { MachineFactory } from "./machines.js";
import { Nemesis, drawFaultMix } from "./nemesis.js";
import { Prng } from "./prng.js";
import { Session } from "./session.js";
import { WatchClients } from "./watch-clients.js";

export interface SimOptions {
  seed: number;
  /** 3 or 5 founding voters. */
  nodes: number;
  /** Ticks of faults before the liveness phase. */
  faultTicks?: number;
  /** Ticks the healed cluster has to elect a leader and commit a new write. */
  livenessTicks?: number;
  /** Receives the narrative / trace lines as they happen. */
  onLog?: (time: number, line: string) => void;
  /** Test hook: called once the cluster exists, before the run (e.g. to corrupt state on purpose). */
  tamper?: (sim: { cluster: SimCluster; ctx: SimContext }) => void;
  /** Test hook: sees every host started, including on restarts (to break the core on purpose). */
  onHostStarted?: (host: SimHost) => void;
  /** Test hook: how hosts build their state machine (default: the real one). */
  machine?: MachineFactory;
  /** Keep stack traces on errors (replaying one seed); off by default: capturing them dominates failure paths. */
  stackTraces?: boolean;
}

/**
 * What a seed counts, in the order the summary adds them up: one list, so a seed's result and the summary
 * cannot drift apart.
 */
export const SEED_COUNTERS = [
  "steps",
  "events",
  "virtualTicks",
  "elections",
  "committed",
  "restarts",
  "fatalStops",
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
  "keepAlives",
  "leaseExpiriesChecked",
  "watchEvents",
  "watchResumes",
  "authRevocations",
  "authWritesRefused",
  "outputsCompared",
  "snapshotsTaken",
  "snapshotsAcrossTurns",
  "snapshotsAppliedMeanwhile",
  "snapshotsAbandoned",
  "snapshotsInstalled",
  "installsAcrossTurns",
  "tornWrites",
  "walReadsBack",
  "failedSyncs",
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
const MAX_EVENTS = 5_000_000;

/** Runs the promise jobs an event released, to completion (a macrotask runs only once the microtasks are done). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The hosts' configuration, drawn per seed: timing, pipelining depth, batch limits, snapshot thresholds. */
function drawParams(rng: Prng, seed: number): HostParams {
  return {
    clusterId: "sim",
    tickMs: TICK,
    // Elections after 5 or 10 ticks: faster ones fit more terms (and more interleavings) into a fault.
    electionTicks: rng.pick([5, 10]),
    heartbeatTicks: 1,
    snapshotEntries: rng.int(6, 22),
    snapshotBytes: rng.pick([4096, 16384, 1 << 20]),
    readiesInFlight: rng.pick([1, 2, 4, DEFAULT_READIES_IN_FLIGHT]),
    raft: {
      // The member's defaults in most seeds; the other paths must be just as safe.
      preVote: rng.chance(0.8),
      checkQuorum: rng.chance(0.8),
      maxInflight: rng.pick([2, 8, 256]),
      maxInflightBytes: rng.pick([0, 0, 2048]),
      // One-entry batches in some seeds: an old entry and a new leader's no-op travel in different messages.
      maxBatchEntries: rng.pick([1, 1, 4, 64, 1024]),
      maxBatchBytes: rng.pick([1 << 20, 1 << 20, 256]),
    },
    storage: {
      segmentBytes: rng.pick([1024, 4096, 65536]),
      keepSegments: rng.int(0, 2),
      keepSnapshots: rng.int(1, 2),
      // Three seeds in four hold only a few entries in memory: catch-ups and applies then read the WAL back. Not
      // drawn from `rng`, so every seed's path stays what it was before the log released entries.
      memoryLogBytes: [0, 512, 2048, 4 << 20][seed % 4],
    },
    requestTimeoutMs: 10 * TICK,
    maxRequestBytes: 1 << 20,
    maxInflightPerConnection: 64,
    maxConnections: 64,
    maxBufferedBytes: rng.pick([4096, 1 << 20]),
  };
}

export async function runSeed(opts: SimOptions): Promise<SeedResult> {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = opts.stackTraces ? 20 : 0;
  try {
    return await run(opts);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

async function run(opts: SimOptions): Promise<SeedResult> {
  const { seed, nodes } = opts;
  if (nodes !== 3 && nodes !== 5) throw new RangeError(`runSeed: nodes must be 3 or 5, got ${nodes}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`runSeed: seed must be an integer in [0, 2^32), got ${seed}`);
  const rng = new Prng(seed);
  const faultTicks = opts.faultTicks ?? rng.int(80, 180);
  const livenessTicks = opts.livenessTicks ?? 200;
  const membership = rng.chance(0.4);
  const params = drawParams(rng, seed);
  // A snapshot taken a record per turn, a few records per turn, or at once: drawn by a PRNG of its own, so that
  // the other draws stay what they were.
  params.snapshotStepBytes = new Prng(seed ^ 0x5eed_5a9).pick([1, 1, 2048, DEFAULT_SNAPSHOT_STEP_BYTES]);
  // Pieces of a few records (a snapshot spans many, written while the next fill: released ones are reused) or the
  // production size; a PRNG of its own too.
  params.snapshotPieceBytes = new Prng(seed ^ 0x91ece5).pick([64, 512, 4096, SNAPSHOT_PIECE_BYTES]);
  // Readies of a few committed entries, each full one followed by a turn's wait (a member catching up applies a
  // batch per turn), or the production limit; a PRNG of its own too.
  params.applyEntriesPerTurn = new Prng(seed ^ 0xa991e5).pick([4, 32, DEFAULT_APPLY_ENTRIES_PER_TURN]);
  // A snapshot job that waits for its file's writes after a piece or two, after a few pieces, or the production
  // bound (never reached by the simulator's small states); a PRNG of its own too.
  params.snapshotBacklogBytes = new Prng(seed ^ 0xbac_106).pick([128, 4096, DEFAULT_SNAPSHOT_BACKLOG_BYTES]);
  const onLog = opts.onLog;
  let failure: unknown;
  let nemesis: Nemesis | undefined;
  const sinks: { committed: (output: ApplyOutput) => void }[] = [];
  const ctx: SimContext = newSimContext(rng, {
    tracing: onLog !== undefined,
    log: onLog ? (line) => onLog(ctx.now, line()) : () => {},
    fault: (kind) => ctx.stats.faults.set(kind, (ctx.stats.faults.get(kind) ?? 0) + 1),
    onNewLeader: (host) => nemesis?.newLeader(host),
    onProposed: (host) => nemesis?.proposed(host),
    onInheritedApplied: (host) => nemesis?.inheritedApplied(host),
    onCommitted: (_index, output) => {
      for (const sink of sinks) sink.committed(output);
    },
    fail: (e) => (failure ??= e),
  });
  const stats = ctx.stats;
  const kv = new KvClients(ctx, rng.int(1, 3), rng.int(2, 4));
  const coordination = new CoordinationClients(ctx, ctx.coordination, rng.int(1, 2));
  const watches = new WatchClients(ctx, 1);
  // Runtime auth in about half the seeds: a revoked user's writes must stay out once the revocation is acknowledged.
  // Decided by a PRNG of its own, so that the seeds without it draw exactly what they drew before it existed.
  const auth = new Prng(seed ^ 0x5eed_a17).chance(0.5) ? new AuthClients(ctx) : undefined;
  sinks.push(coordination, watches, ...(auth ? [auth] : []));
  const cluster = new SimCluster(ctx, { params, machine: opts.machine, onHostStarted: opts.onHostStarted });
  const ids: NodeId[] = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  const spareIds: NodeId[] = Array.from({ length: 4 }, (_, i) => `n${nodes + 1 + i}`);
  const result: SeedResult = {
    seed,
    nodes,
    membership,
    faults: {},
    violation: null,
    ...(Object.fromEntries((SEED_COUNTERS as readonly string[]).map((k) => [k, 0])) as SeedCounters),
  };
  const faultEnd = faultTicks * TICK;
  const deadline = faultEnd + livenessTicks * TICK;
  let live = false;
  let events = 0;
  try {
    for (const id of ids) cluster.addHost(id, ids, 1 + (rng.next() * 2 - 1) * 0.01);
    opts.tamper?.({ cluster, ctx });
    const faults = new Nemesis(
      ctx,
      cluster,
      {
        minGap: 2 * TICK,
        maxGap: 12 * TICK,
        membership,
        newLeaderStrikeRate: rng.pick([0.02, 0.1, 0.4, 0.8]),
        proposalStrikeRate: rng.pick([0, 0, 0.01, 0.03]),
        inheritedStrikeRate: rng.pick([0, 0.2, 0.6]),
        spareIds,
      },
      drawFaultMix(rng, membership),
    );
    nemesis = faults;
    kv.start(cluster, faultEnd);
    coordination.start(cluster, faultEnd);
    watches.start(cluster, faultEnd);
    auth?.start(cluster, faultEnd);
    faults.start();
    ctx.queue.push(faultEnd, () => {
      ctx.log(() => "faults stop: the network heals, disks and clocks recover, stopped members restart");
      faults.heal();
      void probeLiveness(ctx, cluster, deadline).then(
        () => (live = true),
        (e) => (failure = e),
      );
    });
    // Errors thrown inside the hosts' promise jobs (a broken invariant, an assertion) surface here.
    const onRejection = (e: unknown) => (failure ??= e);
    process.on("unhandledRejection", onRejection);
    try {
      while (!live && failure === undefined) {
        const next = ctx.queue.pop();
        if (!next || next.time > deadline) break;
        ctx.now = next.time;
        next.event();
        events++;
        await settle();
        if (events > MAX_EVENTS) throw new Error(`seed ${seed}: over ${MAX_EVENTS} events; the simulator is looping`);
      }
    } finally {
      process.off("unhandledRejection", onRejection);
    }
    if (failure !== undefined) throw failure;
    if (!live) {
      const leader = cluster.leader();
      throw new InvariantViolation(
        "liveness",
        `no leader committed a new write within ${livenessTicks} ticks after the faults healed (leader: ${leader ? `${leader.id} term ${leader.replica.term}` : "none"})`,
      );
    }
    const verdict = checkKvHistory(kv.history);
    result.kvOpsChecked = verdict.operations;
    result.linearizableKeys = verdict.linearizableKeys;
    result.unknownKeys = verdict.unknownKeys;
    checkLockHistories(coordination.resources.values());
    checkElectionHistories(coordination);
    coordination.checkLeases();
    checkWatchHistories(watches);
    auth?.check();
  } catch (e) {
    const err = e as Error;
    // A host asserting (InvariantError) or throwing where it must not is a finding too.
    result.violation = e instanceof InvariantViolation ? { invariant: e.invariant, message: e.message } : { invariant: `exception (${err?.name})`, message: err?.stack || `${err?.name}: ${err?.message}` || String(e) };
    ctx.log(() => `VIOLATION ${result.violation!.message}`);
  }
  const cs = ctx.coordination.stats();
  let tornWrites = 0;
  let failedSyncs = 0;
  let walReadsBack = 0;
  for (const h of cluster.hosts.values()) {
    walReadsBack += h.disk.stats.walReadsBack;
    tornWrites += h.disk.stats.tornFiles;
    failedSyncs += h.disk.stats.failedSyncs;
  }
  Object.assign(result, {
    steps: stats.steps,
    events,
    virtualTicks: Math.round(ctx.now / TICK),
    faults: Object.fromEntries([...stats.faults.entries()].sort(([a], [b]) => a.localeCompare(b))),
    elections: stats.elections,
    committed: ctx.checker.committedCount(),
    restarts: stats.restarts,
    fatalStops: stats.fatalStops,
    writesAcked: kv.acked,
    readsCompleted: kv.reads,
    lockGrants: cs.grants,
    lockReleases: cs.releases + cs.leaseEndReleases,
    electionChanges: cs.leaderChanges,
    fencedAccepted: cs.fencedAccepted,
    fencedRefused: cs.fencedRefused,
    outputsCompared: cs.outputsCompared,
    resourceAccepted: coordination.counts.resourceAccepted,
    resourceRefused: coordination.counts.resourceRefused,
    keepAlives: coordination.counts.keepAlives,
    leaseExpiriesChecked: coordination.counts.leaseExpiriesChecked,
    watchEvents: watches.eventsReceived,
    watchResumes: watches.resumes,
    authRevocations: auth?.revocations ?? 0,
    authWritesRefused: auth?.writesRefused ?? 0,
    snapshotsTaken: stats.snapshotsTaken,
    snapshotsAcrossTurns: stats.snapshotsAcrossTurns,
    snapshotsAppliedMeanwhile: stats.snapshotsAppliedMeanwhile,
    snapshotsAbandoned: stats.snapshotsAbandoned,
    snapshotsInstalled: stats.snapshotsInstalled,
    installsAcrossTurns: stats.installsAcrossTurns,
    tornWrites,
    walReadsBack,
    failedSyncs,
    invariantChecks: ctx.checker.checks + ctx.coordination.checks,
  } satisfies Partial<SeedResult>);
  return result;
}

/**
 * After the heal: a client writes a marker (through any member, with its session) until one is acknowledged;
 * then every member of the configuration must apply it too (no member left stuck behind).
 */
async function probeLiveness(ctx: SimContext, cluster: SimCluster, deadline: number): Promise<void> {
  const conn = new ClientConnection(ctx, cluster, "probe");
  const session = new Session(conn);
  for (let n = 1; ctx.now < deadline; n++) {
    const marker = `live/${n}`;
    const w = await session.write("put", { key: marker, value: valueBytes(n) });
    if (w.kind !== "ok") {
      ctx.log(() => `liveness: ${marker} not acknowledged (${w.kind}: ${w.error.code} ${w.error.message})`);
      continue;
    }
    ctx.log(() => `liveness: ${marker} acknowledged`);
    for (;;) {
      const leader = cluster.leader();
      const cs = leader?.replica.status().confState;
      const behind = cs
        ? [...cs.voters, ...cs.learners].map((id) => cluster.get(id)).filter((h): h is SimHost => h !== undefined && !h.retired && !(h.up && h.replica.sm.get(marker) !== undefined))
        : [];
      if (cs && behind.length === 0) {
        ctx.log(() => `liveness: every member applied ${marker}; the cluster is live`);
        session.close();
        return;
      }
      if (ctx.now + TICK > deadline) {
        throw new InvariantViolation("liveness", `${marker} was acknowledged, but ${behind.map((h) => `${h.id} (${h.up ? `up, applied ${h.replica.appliedTo}` : "down"})`).join(", ") || "no leader"} did not apply it in time`);
      }
      await conn.sleep(TICK);
    }
  }
  throw new InvariantViolation("liveness", "no write was acknowledged after the faults healed");
}
