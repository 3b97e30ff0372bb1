import { assert } from "../assert.js";
import type { ReadState } from "../raft/types.js";

interface ReadWaiter {
  resolve(): void;
  reject(e: Error): void;
}

/**
 * Linearizable reads: every read of one event-loop turn shares one ReadIndex request (one ctx), and so one
 * heartbeat round; when its ReadState arrives the batch waits until the state machine has applied that index,
 * then every read in it runs against local state.
 *
 * A follower's request, or the leader's answer, can be lost on the way (a peer connection being re-established
 * drops what is sent meanwhile) with no change of leader to fail the reads: a request unanswered after
 * `retryTicks` ticks is sent again with its ctx (etcd retries after 500 ms). The leader ignores a ctx it still
 * holds, and the answer that comes second finds nothing to release.
 */
export class ReadBarrier {
  private seq = 0;
  /** Reads collected this turn, not yet given a ctx. */
  private collecting: ReadWaiter[] = [];
  /** Requested rounds by ctx, with the ticks since they were (last) requested. */
  private readonly requested = new Map<string, { waiters: ReadWaiter[]; ticks: number }>();
  /** Rounds with a known index, waiting for apply, in index order. */
  private waitingApply: { index: number; waiters: ReadWaiter[] }[] = [];

  constructor(
    private readonly prefix: string,
    private readonly retryTicks: number,
  ) {}

  /** Resolves when a read may run linearizably. Call `flush` once per turn to issue the ReadIndex. */
  wait(): Promise<void> {
    return new Promise((resolve, reject) => this.collecting.push({ resolve, reject }));
  }

  /** Issue one ReadIndex for every read collected; `readIndex` throws when no leader is known. */
  flush(readIndex: (ctx: string) => void): void {
    if (this.collecting.length === 0) return;
    const batch = this.collecting;
    this.collecting = [];
    const ctx = `${this.prefix}:${++this.seq}`;
    try {
      readIndex(ctx);
      this.requested.set(ctx, { waiters: batch, ticks: 0 });
    } catch (e) {
      for (const w of batch) w.reject(e as Error);
    }
  }

  /** One tick passed: requests unanswered for `retryTicks` ticks are sent again (`readIndex` as for flush). */
  tick(readIndex: (ctx: string) => void): void {
    for (const [ctx, round] of this.requested) {
      if (++round.ticks < this.retryTicks) continue;
      round.ticks = 0;
      try {
        readIndex(ctx);
      } catch (e) {
        this.requested.delete(ctx);
        for (const w of round.waiters) w.reject(e as Error);
      }
    }
  }

  hasCollected(): boolean {
    return this.collecting.length > 0;
  }

  onReadState(rs: ReadState, applied: number): void {
    const batch = this.requested.get(rs.ctx)?.waiters;
    if (!batch) return;
    this.requested.delete(rs.ctx);
    if (applied >= rs.index) {
      release(batch, rs.index, applied);
      return;
    }
    this.waitingApply.push({ index: rs.index, waiters: batch });
    this.waitingApply.sort((a, b) => a.index - b.index);
  }

  onApplied(applied: number): void {
    let n = 0;
    while (n < this.waitingApply.length && this.waitingApply[n].index <= applied) {
      release(this.waitingApply[n].waiters, this.waitingApply[n].index, applied);
      n++;
    }
    if (n > 0) this.waitingApply = this.waitingApply.slice(n);
  }

  /** Leadership changed: outstanding ReadIndex requests may never be answered; fail them (retryable). */
  failRequested(error: Error): void {
    for (const { waiters } of this.requested.values()) for (const w of waiters) w.reject(error);
    this.requested.clear();
  }

  failAll(error: Error): void {
    this.failRequested(error);
    for (const w of this.collecting) w.reject(error);
    this.collecting = [];
    for (const r of this.waitingApply) for (const w of r.waiters) w.reject(error);
    this.waitingApply = [];
  }
}

/** Lets reads run: only once the state machine has applied their read index (that is what makes them linearizable). */
function release(waiters: ReadWaiter[], readIndex: number, applied: number): void {
  assert(applied >= readIndex, () => `answering reads at read index ${readIndex} with only ${applied} applied`);
  for (const w of waiters) w.resolve();
}
