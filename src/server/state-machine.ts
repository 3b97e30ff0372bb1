// The state machine a server runs: the KV store with locks and elections installed, limits from config.
//
// Not the storage quota: it is replicated state. Every replica starts from the default, and a leader proposes its
// --quota-bytes (HostConfig.quotaBytes, Replica), so members never judge one entry against different quotas — not
// founding members bootstrapping with different flags, nor one replaying its log after a restart with another.
// A snapshot is restored into the empty one this builds (StateMachine.beginRestore, run by the replica).
import { createCoordinationStateMachine, type Coordination } from "../locks/index.js";
import type { ServerConfig } from "./config.js";

export function createServerStateMachine(config: ServerConfig): Coordination {
  return createCoordinationStateMachine({ limits: { maxKeyBytes: config.maxKeyBytes, maxValueBytes: config.maxValueBytes } });
}
