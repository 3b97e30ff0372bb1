// A simulated host's replicated state machine: the real coordination state machine (KV, leases, sessions,
// locks, elections) exactly as the server drives it. Raft hands the host every committed entry; only Normal
// entries with data are commands (no-ops and conf changes only advance the applied index), as in the server.
// Snapshots are the state machine's own deterministic bytes; an empty snapshot is a fresh machine.

import {
  createCoordinationStateMachine,
  restoreCoordinationStateMachine,
  type Coordination,
  type CoordinationOptions,
} from "../src/locks/index.js";
import type { ApplyOutput } from "../src/statemachine/index.js";

/** How a host builds its state machine: the real one, or a test-only wrapper that breaks a rule on purpose. */
export interface MachineFactory {
  create(): Coordination;
  restore(bytes: Uint8Array): Coordination;
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
  restore: (bytes) => restoreCoordinationStateMachine(bytes, SIM_MACHINE_OPTIONS),
};

export class Replica {
  coordination: Coordination;
  /** Index of the last log entry reflected in the state (commands, no-ops and conf changes alike). */
  appliedIndex = 0;

  constructor(private readonly factory: MachineFactory) {
    this.coordination = factory.create();
  }

  /** Applies a committed entry; `data` null for a no-op or conf change. Returns the command's output. */
  apply(index: number, data: Uint8Array | null): ApplyOutput | null {
    if (index !== this.appliedIndex + 1) {
      throw new Error(`replica: applying index ${index} after ${this.appliedIndex} (entries must be applied in order)`);
    }
    this.appliedIndex = index;
    return data === null ? null : this.coordination.stateMachine.apply(index, data);
  }

  snapshotData(): Uint8Array {
    return this.coordination.stateMachine.snapshot();
  }

  restore(index: number, data: Uint8Array): void {
    this.coordination = data.byteLength === 0 ? this.factory.create() : this.factory.restore(data);
    this.appliedIndex = index;
  }
}
