// Waiting on a running cluster: poll with a deadline, and the two conditions every user of the harness waits for
// (one leader everybody agrees on; a member that has applied an index).

import type { MemberStatus } from "./status.js";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface WaitOptions {
  /** Poll period (ms). */
  everyMs?: number;
  /** Stop waiting (rejects with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

/**
 * Poll `fn` until it returns something other than undefined; a throw counts as "not yet" (its message is kept for
 * the timeout's error). Rejects after `timeoutMs` with an error naming `what`.
 */
export async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined> | T | undefined,
  opts: WaitOptions = {},
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    opts.signal?.throwIfAborted();
    if (performance.now() > deadline) {
      const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await sleep(opts.everyMs ?? 50);
  }
}

/** What the waits read: the members expected to answer, and their /status. */
export interface StatusSource {
  /** Members whose process runs and is not stopped by SIGSTOP. */
  reachable(): string[];
  status(name: string): Promise<MemberStatus>;
}

/**
 * Wait until every reachable member (except `exclude`) answers /status and names the same leader, which is one of
 * them and reports itself leader. Resolves with the leader's name.
 */
export function waitForLeader(
  source: StatusSource,
  timeoutMs = 20_000,
  opts: WaitOptions & { exclude?: readonly string[] } = {},
): Promise<string> {
  return waitUntil(
    "a leader agreed by every running member",
    timeoutMs,
    async () => {
      const names = source.reachable().filter((n) => !opts.exclude?.includes(n));
      if (names.length === 0) throw new Error("no member is running");
      const statuses = await Promise.all(names.map((n) => source.status(n)));
      const leader = statuses[0].leader;
      if (leader === null || !statuses.every((s) => s.leader === leader)) return undefined;
      return statuses.find((s) => s.id === leader)?.role === "leader" ? leader : undefined;
    },
    { everyMs: 100, ...opts },
  );
}

/** Wait until `name` has applied at least `index`; resolves with that status. */
export function waitForApplied(
  source: StatusSource,
  name: string,
  index: number,
  timeoutMs = 20_000,
  opts: WaitOptions = {},
): Promise<MemberStatus> {
  return waitUntil(
    `${name} to apply index ${index}`,
    timeoutMs,
    async () => {
      const s = await source.status(name);
      return s.applied >= index ? s : undefined;
    },
    { everyMs: 100, ...opts },
  );
}
