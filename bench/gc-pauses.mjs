// Preloaded into each member by `npm run bench:snapshot-stall -- --trace` (NODE_OPTIONS=--import): every pause of
// V8's collector of 20 ms or more, written to the member's log as a JSON line of its own ({"msg":"gc pause", kind,
// ms, time}) so the trace puts it among the member's readings and log lines. perf_hooks' gc entries, wall time.
// Nothing in src/ changes for it. Plain JavaScript: node loads it as is.
import { PerformanceObserver, constants, performance } from "node:perf_hooks";
import process from "node:process";

const MIN_MS = 20;
const kinds = new Map([
  [constants.NODE_PERFORMANCE_GC_MAJOR, "major"],
  [constants.NODE_PERFORMANCE_GC_MINOR, "minor"],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, "incremental"],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, "weak callbacks"],
]);

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.duration < MIN_MS) continue;
    const line = {
      msg: "gc pause",
      kind: kinds.get(e.detail?.kind) ?? String(e.detail?.kind),
      ms: Math.round(e.duration),
    };
    process.stdout.write(`${JSON.stringify({ ...line, time: Math.round(performance.timeOrigin + e.startTime) })}\n`);
  }
}).observe({ entryTypes: ["gc"] });
