// Public surface of the replicated state machine.
export * from "./commands.js";
export * from "./errors.js";
export { DEFAULT_LIMITS, resolveLimits, type Limits } from "./limits.js";
export type { LeaseEndReason } from "./leases.js";
export type { WatchEvent, WatchFilter } from "./watch-history.js";
export { contentHash, xxh32 } from "./hash.js";
export { SNAPSHOT_FORMAT_VERSION } from "./snapshot.js";
export {
  StateMachine,
  type ApplyContext,
  type ApplyOutput,
  type CommandHandler,
  type FenceChecker,
  type StateMachineEvent,
  type StateMachineOptions,
} from "./state-machine.js";
