// The state machine the simulated hosts run: the real coordination state machine (KV, leases, sessions, locks,
// elections), with short histories; tests substitute one that breaks a rule on purpose (broken-locks.ts).

import { createCoordinationStateMachine, type Coordination, type CoordinationOptions } from "../src/locks/index.js";

/**
 * How a host builds its state machine: the real one, or a test-only wrapper that breaks a rule on purpose. A
 * snapshot is restored into an empty one (the host calls StateMachine.beginRestore).
 */
export interface MachineFactory {
  create(): Coordination;
}

/**
 * The simulator's configuration: short watch and election histories, so snapshots stay small and the
 * COMPACTED paths of observe are exercised too.
 */
export const SIM_MACHINE_OPTIONS: CoordinationOptions = {
  limits: { historyRevisions: 32, historyMaxEvents: 256 },
  coordinationLimits: { electionHistory: 16 },
};

export const realMachine: MachineFactory = {
  create: () => createCoordinationStateMachine(SIM_MACHINE_OPTIONS),
};
