// Test harness: a coordination state machine driven at consecutive indexes, with small helpers.

import {
  createCoordinationStateMachine,
  type Coordination,
  type CoordinationEvent,
  type CoordinationOptions,
} from "../../src/locks/index.js";
import type { ApplyOutput, Command, Outcome } from "../../src/statemachine/index.js";

export const bytes = (s: string) => new TextEncoder().encode(s);

export interface Harness {
  c: Coordination;
  run(command: Command): ApplyOutput;
  /** Grants a lease and returns its id (the grant's index). */
  lease(): number;
  /** The extension events of an output, unwrapped. */
  events(out: ApplyOutput): CoordinationEvent[];
}

export function harness(options: CoordinationOptions = {}): Harness {
  const c = createCoordinationStateMachine(options);
  const run = (command: Command) => c.stateMachine.applyCommand(c.stateMachine.lastApplied + 1, command);
  return {
    c,
    run,
    lease: () => value<{ id: number }>(run({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 }).result).id,
    events: (out) => out.events.flatMap((e) => (e.type === "extension" ? [e.event as CoordinationEvent] : [])),
  };
}

export function value<T>(o: Outcome): T {
  if (!o.ok) throw new Error(`expected ok, got ${o.error.code}: ${o.error.message}`);
  return o.value as T;
}

export function errorCode(o: Outcome): string {
  if (o.ok) throw new Error(`expected an error, got ${JSON.stringify(o.value)}`);
  return o.error.code;
}
