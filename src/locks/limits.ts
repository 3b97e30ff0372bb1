// Size and count limits of locks and elections. Like the state machine's limits they take part in apply(),
// so every replica must run with the same values.

import { invalidArgument, type CommandError } from "../statemachine/errors.js";

export interface CoordinationLimits {
  /** Longest lock or election name, in UTF-8 bytes. */
  maxNameBytes: number;
  /** Largest election value, in bytes. */
  maxValueBytes: number;
  /** Largest semaphore limit. */
  maxSemaphoreLimit: number;
  /** Most waiters queued on one lock, and most candidates queued in one election. */
  maxQueueLength: number;
  /** Leadership changes kept per election for observe(); older ones answer COMPACTED. */
  electionHistory: number;
  /** Elections without candidates kept (with their history) before the longest-idle one is forgotten. */
  maxIdleElections: number;
}

export const DEFAULT_COORDINATION_LIMITS: Readonly<CoordinationLimits> = Object.freeze({
  maxNameBytes: 4096,
  maxValueBytes: 64 * 1024,
  maxSemaphoreLimit: 1_000_000,
  maxQueueLength: 100_000,
  electionHistory: 1000,
  maxIdleElections: 10_000,
});

export function resolveCoordinationLimits(
  overrides: Partial<CoordinationLimits> = {},
): CoordinationLimits | CommandError {
  const limits: CoordinationLimits = { ...DEFAULT_COORDINATION_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      return invalidArgument(`coordinationLimits.${name}`, "a positive safe integer", value);
    }
  }
  return limits;
}
