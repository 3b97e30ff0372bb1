// The state machine a server runs: the KV store with locks and elections installed, limits from config.
import { createCoordinationStateMachine, restoreCoordinationStateMachine, type Coordination } from "../locks/index.js";
import type { ServerConfig } from "./config.js";

export function createServerStateMachine(config: ServerConfig, snapshot?: Uint8Array): Coordination {
  const options = {
    limits: { maxKeyBytes: config.maxKeyBytes, maxValueBytes: config.maxValueBytes, quotaBytes: config.quotaBytes },
  };
  return snapshot ? restoreCoordinationStateMachine(snapshot, options) : createCoordinationStateMachine(options);
}
