// Workloads by name.

import { ElectionWorkload } from "./election.js";
import { LockWorkload } from "./lock.js";
import { RegisterWorkload } from "./register.js";
import { SetWorkload } from "./set.js";
import { WatchWorkload } from "./watch.js";
import type { Workload } from "./workload.js";

export const WORKLOAD_NAMES = ["register", "set", "lock", "election", "watch"] as const;

export function makeWorkload(name: string): Workload {
  switch (name) {
    case "register":
      return new RegisterWorkload();
    case "set":
      return new SetWorkload();
    case "lock":
      return new LockWorkload();
    case "election":
      return new ElectionWorkload();
    case "watch":
      return new WatchWorkload();
    default:
      throw new TypeError(`unknown workload ${JSON.stringify(name)}; accepted: ${WORKLOAD_NAMES.join(", ")}`);
  }
}
