// A simulated member's clock: monotonic time that runs at the member's own rate (bounded drift) and restarts
// with each incarnation, timers on the simulation's event queue, and "once this turn's work is done" as an
// event at the current instant. A crash kills the incarnation: its timers never fire. A paused member (a long
// GC, SIGSTOP, an overloaded machine) runs nothing until the pause ends; its clock keeps running meanwhile, so
// it wakes up to find its timers and deadlines long past, as a real process does.

import type { Clock, Timer } from "../src/host/world.js";
import type { EventQueue } from "./event-queue.js";

export interface SimTime {
  readonly queue: EventQueue<() => void>;
  /** The simulation's global time. */
  now: number;
}

/** Bounds of a member clock's rate against real (global) time; leases assume drift within them. */
export const MAX_CLOCK_DRIFT = 0.05;

export class SimClock implements Clock {
  /** The member's clock at global time `since`. */
  private base: number;
  private since: number;

  constructor(
    private readonly time: SimTime,
    /** Member-clock milliseconds per global millisecond. */
    private rate: number,
    /** Whether the incarnation this clock belongs to still runs. */
    private readonly alive: () => boolean,
    /** Global time until which the member is paused (events wait for it). */
    private readonly pausedUntil: () => number,
    /** Epoch milliseconds of the wall clock at global time 0. */
    private readonly wallOrigin: number,
  ) {
    this.base = 0;
    this.since = time.now;
  }

  now(): number {
    return this.base + (this.time.now - this.since) * this.rate;
  }

  wallNow(): number {
    return Math.floor(this.wallOrigin + this.time.now);
  }

  /** Changes the rate from now on (clock drift). */
  setRate(rate: number): void {
    this.base = this.now();
    this.since = this.time.now;
    this.rate = rate;
  }

  setTimer(ms: number, fn: () => void): Timer {
    let cancelled = false;
    this.at(this.time.now + Math.max(0, ms) / this.rate, () => {
      if (!cancelled) fn();
    });
    return { cancel: () => (cancelled = true) };
  }

  defer(fn: () => void): void {
    this.at(this.time.now, fn);
  }

  /**
   * A run of a long job is taken to last 10 ms (about what the default snapshot run costs at a million keys):
   * what arrives meanwhile is handled before the next run.
   */
  continueLater(fn: () => void): void {
    this.setTimer(10, fn);
  }

  /** Runs `fn` at global time `t` in this incarnation (later if the member is paused then). */
  at(t: number, fn: () => void): void {
    const run = (): void => {
      if (!this.alive()) return;
      const until = this.pausedUntil();
      if (until > this.time.now) {
        this.time.queue.push(until, run);
        return;
      }
      fn();
    };
    this.time.queue.push(t, run);
  }
}
