// A nemesis injects one kind of fault: `start` breaks something and says what, `stop` repairs what it broke.
// The schedule alternates quiet and faulty periods; `heal` (at the end) undoes everything any nemesis did.

import type { ClusterDriver } from "../drivers/driver.js";
import type { History } from "../history.js";
import type { Rng } from "../util.js";

export interface NemesisContext {
  readonly driver: ClusterDriver;
  readonly rng: Rng;
  readonly history: History;
  log(message: string): void;
}

export interface Nemesis {
  readonly name: string;
  /** Injects the fault; resolves with a description for the timeline. */
  start(ctx: NemesisContext): Promise<string>;
  /** Repairs it; resolves with a description. */
  stop(ctx: NemesisContext): Promise<string>;
}
