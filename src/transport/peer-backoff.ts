// Reconnect delays: exponential with full-range jitter, so that nodes restarted together do not reconnect in
// lockstep. Pure: randomness is injected (tests pass a seeded function).

import { assert } from "../assert.js";

export interface BackoffOptions {
  /** First delay before jitter (ms). */
  initialMs?: number;
  /** Cap on the delay before jitter (ms). */
  maxMs?: number;
  /** Each delay is base * (1 ± jitter), uniformly. 0.5 means ±50%. */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private baseMs: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 50;
    this.maxMs = options.maxMs ?? 2000;
    this.jitter = options.jitter ?? 0.5;
    this.random = options.random ?? Math.random;
    assert(this.initialMs > 0 && this.maxMs >= this.initialMs, "backoff needs 0 < initialMs <= maxMs");
    assert(this.jitter >= 0 && this.jitter < 1, "backoff jitter must be in [0, 1)");
    this.baseMs = this.initialMs;
  }

  /** The delay before the next attempt; each call doubles the base up to maxMs. */
  next(): number {
    const base = this.baseMs;
    this.baseMs = Math.min(this.maxMs, this.baseMs * 2);
    const delay = base * (1 + this.jitter * (2 * this.random() - 1));
    return Math.max(1, Math.round(delay));
  }

  /** After a successful connection the next failure starts again from initialMs. */
  reset(): void {
    this.baseMs = this.initialMs;
  }
}
