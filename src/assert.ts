// Assertions of invariants in production code (TigerBeetle's habit): a broken invariant means this process's
// state can no longer be trusted, so it fails loudly instead of carrying on. Shared by every layer; never
// caught to be ignored.

/** A broken invariant. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = "InvariantError";
  }
}

/** Throws InvariantError unless `cond` holds; a function message is only built on failure (hot paths). */
export function assert(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new InvariantError(typeof message === "string" ? message : message());
}
