// A simulation's shared context with its defaults: an empty event queue at time 0, a calm network, fresh
// checkers and statistics, hooks that do nothing. A seeded run (simulation.ts) and a scripted one (scenario.ts)
// override the hooks they use.

import type { SimContext } from "./cluster.js";
import { CoordinationChecker } from "./coordination-checker.js";
import { EventQueue } from "./event-queue.js";
import { InvariantChecker } from "./invariants.js";
import { Network } from "./network.js";
import type { Prng } from "./prng.js";

type Hooks = "log" | "tracing" | "fault" | "onNewLeader" | "onProposed" | "onInheritedApplied" | "onCommitted" | "fail";

export function newSimContext(rng: Prng, hooks: Partial<Pick<SimContext, Hooks>>): SimContext {
  return {
    queue: new EventQueue<() => void>(),
    now: 0,
    rng,
    network: new Network(rng.fork()),
    checker: new InvariantChecker(),
    coordination: new CoordinationChecker(),
    stats: { steps: 0, elections: 0, faults: new Map(), snapshotsTaken: 0, snapshotsAcrossTurns: 0, snapshotsAppliedMeanwhile: 0, snapshotsAbandoned: 0, snapshotsInstalled: 0, installsAcrossTurns: 0, restarts: 0, fatalStops: 0 },
    tracing: false,
    log: () => {},
    fault: () => {},
    onNewLeader: () => {},
    onProposed: () => {},
    onInheritedApplied: () => {},
    onCommitted: () => {},
    fail: () => {},
    ...hooks,
  };
}
