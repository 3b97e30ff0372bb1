// Test-only: coordination state machines that break one lock rule on purpose, built exactly as
// src/locks/index.ts builds the real one, so the simulator's mutation tests can show its checks catch it.

import { AuthHandler } from "../src/statemachine/auth.js";
import { ElectionHandler } from "../src/locks/elections.js";
import { coordinationOf, type Coordination } from "../src/locks/index.js";
import { resolveCoordinationLimits } from "../src/locks/limits.js";
import { LockHandler } from "../src/locks/locks.js";
import { StateMachine, type CommandHandler } from "../src/statemachine/index.js";
import { SIM_MACHINE_OPTIONS, type MachineFactory } from "./machines.js";

/** A lock handler that grants an acquire without checking that the lease is alive. */
function grantingToAnyLease(locks: LockHandler): CommandHandler {
  return {
    section: locks.section,
    ops: locks.ops,
    opsAllowedWhenFull: locks.opsAllowedWhenFull,
    sizeBytes: () => locks.sizeBytes(),
    apply: (command, ctx) =>
      locks.apply(command, command.op === "lockAcquire" ? { ...ctx, leaseAlive: () => true } : ctx),
    onLeaseEnded: (id, reason, ctx) => locks.onLeaseEnded(id, reason, ctx),
    onApplyEnd: (ctx) => locks.onApplyEnd(ctx),
    snapshot: () => locks.snapshot(),
    restore: (data) => locks.restore(data),
  };
}

interface Breakage {
  grantToDeadLeases: boolean;
  ignoreFences: boolean;
}

function build(breakage: Breakage): Coordination {
  const limits = resolveCoordinationLimits(SIM_MACHINE_OPTIONS.coordinationLimits);
  if ("code" in limits) throw new TypeError(limits.message);
  const locks = new LockHandler(limits);
  const elections = new ElectionHandler(limits);
  const auth = new AuthHandler();
  const stateMachine = new StateMachine({
    limits: SIM_MACHINE_OPTIONS.limits,
    handlers: [breakage.grantToDeadLeases ? grantingToAnyLease(locks) : locks, elections, auth],
    fenceChecker: breakage.ignoreFences ? () => null : locks.fenceChecker,
    authorizer: auth.authorize,
  });
  return coordinationOf(stateMachine, locks, elections, auth);
}

function factory(breakage: Breakage): MachineFactory {
  return {
    create: () => build(breakage),
  };
}

/** Grants an acquire without checking that the lease is alive. */
export const machineGrantingToDeadLeases = factory({ grantToDeadLeases: true, ignoreFences: false });
/** Accepts every fenced write, whatever its token. */
export const machineIgnoringFences = factory({ grantToDeadLeases: false, ignoreFences: true });
