// The contract between the runner and a workload: generate operations through the real client until told to
// stop, do the final reads once the nemesis has healed everything, then judge the recorded history.

import type { History } from "../history.js";
import { ConcordError, connectClient, type Client } from "../client.js";
import type { Rng } from "../util.js";
import { sleep, withTimeout } from "../util.js";

export interface WorkloadContext {
  /** Client URLs of the current members (membership changes alter it). */
  endpoints(): string[];
  readonly history: History;
  readonly rng: Rng;
  /** Aborted when the generation phase ends. */
  readonly stop: AbortSignal;
  readonly concurrency: number;
  /** Deadline of one client operation, retries included. */
  readonly opTimeoutMs: number;
  log(message: string): void;
}

export interface Verdict {
  readonly checker: string;
  /** "unknown": the checker ran out of budget — not a pass, not a violation. */
  readonly valid: boolean | "unknown";
  readonly summary: string;
  readonly details?: unknown;
  /** The failing window on the run's clock (ns), highlighted in the report. */
  readonly window?: { fromNs: number; toNs: number };
}

export interface Workload {
  readonly name: string;
  run(ctx: WorkloadContext): Promise<void>;
  /** After the heal: final reads (set), catching up watchers and observers. */
  finish(ctx: WorkloadContext): Promise<void>;
  check(ctx: WorkloadContext): Promise<Verdict[]>;
  /** Workload-specific records saved next to the history (final read, watcher streams, grants…). */
  artifacts(): Record<string, unknown>;
}

/** Server rejections that prove the operation did not take effect; anything else is indeterminate. */
const DEFINITE_FAILURES = new Set([
  "INVALID_ARGUMENT",
  "FENCED",
  "KEY_TOO_LARGE",
  "VALUE_TOO_LARGE",
  "TXN_TOO_LARGE",
  "LEASE_NOT_FOUND",
  "LOCK_NOT_HELD",
  "NOT_ELECTION_LEADER",
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
]);

export function errorCode(e: unknown): string {
  return e instanceof ConcordError ? e.code : e instanceof Error ? e.message.slice(0, 80) : String(e);
}

export function isDefiniteFailure(e: unknown): boolean {
  return e instanceof ConcordError && DEFINITE_FAILURES.has(e.code);
}

/**
 * Connects a client, retrying until it works or `stop` fires (members may be down when a worker starts).
 * `pin`: start at endpoint `pin mod n` and stay on whichever member answers (followLeader off), so reads are
 * served by followers too — every member promises linearizable reads, and this is where a stale one shows.
 */
export async function connectRetrying(ctx: WorkloadContext, opts: { untilStop?: boolean; pin?: number } = {}): Promise<Client | null> {
  for (let attempt = 0; ; attempt++) {
    if (opts.untilStop !== false && ctx.stop.aborted) return null;
    try {
      let endpoints = ctx.endpoints();
      if (opts.pin !== undefined) {
        const k = opts.pin % endpoints.length;
        endpoints = [...endpoints.slice(k), ...endpoints.slice(0, k)];
      }
      const options = { timeoutMs: ctx.opTimeoutMs, backoffMaxMs: 500, ...(opts.pin !== undefined ? { followLeader: false } : {}) };
      return await withTimeout(connectClient(endpoints, options), ctx.opTimeoutMs + 2000, "connect");
    } catch {
      if (attempt > 200) throw new Error("could not connect a client after 200 attempts");
      await sleep(200);
    }
  }
}

/** A short pause between a worker's operations, so histories stay checkable (tens of ops/s per worker). */
export function pace(ctx: WorkloadContext): Promise<void> {
  return sleep(5 + ctx.rng.int(20));
}

/** Runs `body` with a hard deadline beyond the client's own, so a hung call becomes `info`, not a hung run. */
export function guarded<T>(ctx: WorkloadContext, p: Promise<T>, what: string): Promise<T> {
  return withTimeout(p, ctx.opTimeoutMs + 3000, what);
}

/** Maps a history line range to the run's clock, for the report's highlighted window. */
export function windowOfLines(history: History, firstLine: number, lastLine: number): { fromNs: number; toNs: number } {
  const events = history.events;
  const from = events[Math.max(0, firstLine - 1)]?.time ?? 0;
  const to = events[Math.min(events.length - 1, lastLine - 1)]?.time ?? from;
  return { fromNs: from, toNs: to };
}
