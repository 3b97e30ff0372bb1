// Clock-fault preload for member processes: `node --import ./clock-skew.mjs …` with
// CONCORD_JEPSEN_CLOCK_FILE=<path to a JSON control file>. Used only by the Jepsen-style suite.
//
// The control file holds { "offsetMs": n, "rate": r, "strobeMs": p, "strobeDeltaMs": d } and is re-read every
// 100 ms, so the nemesis changes a running member's clocks by rewriting it:
// - wall clock (Date.now, new Date()): real + offsetMs, plus ±strobeDeltaMs alternating every strobeMs (a
//   strobing clock may jump backwards, as NTP steps do);
// - monotonic clock (performance.now): advances at `rate` × real speed, plus every forward jump of offsetMs
//   (a paused-then-resumed VM sees such jumps). It never goes backwards: a monotonic clock that did would be a
//   fault no real kernel produces, and the server is entitled to assume it.
// With no control file the preload changes nothing.
import fs from "node:fs";
import process from "node:process";
import { setInterval } from "node:timers";
import { performance } from "node:perf_hooks";

const file = process.env.CONCORD_JEPSEN_CLOCK_FILE;
if (file) {
  const realDateNow = Date.now.bind(Date);
  const realPerfNow = performance.now.bind(performance);
  const RealDate = Date;
  let settings = { offsetMs: 0, rate: 1, strobeMs: 0, strobeDeltaMs: 0 };
  // The monotonic clock is piecewise linear: virtual = segmentVirtual + (real - segmentReal) * rate.
  let segmentReal = realPerfNow();
  let segmentVirtual = segmentReal;
  let lastMonotonic = segmentVirtual;
  let appliedForwardOffset = 0;

  const monotonic = () => {
    const v = segmentVirtual + (realPerfNow() - segmentReal) * settings.rate;
    lastMonotonic = Math.max(lastMonotonic, v);
    return lastMonotonic;
  };
  const wall = () => {
    let t = realDateNow() + settings.offsetMs;
    if (settings.strobeMs > 0 && Math.floor(realPerfNow() / settings.strobeMs) % 2 === 1) t += settings.strobeDeltaMs;
    return Math.round(t);
  };
  const reload = () => {
    let next;
    try {
      next = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      return; // Missing or half-written: keep the current settings.
    }
    const num = (v, d) => (typeof v === "number" && Number.isFinite(v) ? v : d);
    const updated = {
      offsetMs: num(next.offsetMs, 0),
      rate: Math.min(Math.max(num(next.rate, 1), 0.1), 10),
      strobeMs: Math.max(num(next.strobeMs, 0), 0),
      strobeDeltaMs: num(next.strobeDeltaMs, 0),
    };
    const now = monotonic();
    segmentReal = realPerfNow();
    segmentVirtual = now + Math.max(0, updated.offsetMs - appliedForwardOffset);
    appliedForwardOffset = Math.max(appliedForwardOffset, updated.offsetMs);
    settings = updated;
  };
  reload();
  setInterval(reload, 100).unref();

  performance.now = monotonic;
  Date.now = wall;
  // `new Date()` without arguments reads the wall clock too.
  globalThis.Date = class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(wall());
      else super(...args);
    }
    static now() {
      return wall();
    }
  };
}
