// How long V8's young collections take for a member-like survival pattern, alone and beside busy processes:
// docs/benchmarks.md, "Where the stalls under load come from". One process keeps `keys` keys in sharded Maps (the
// key store's layout), then runs puts for `seconds`: each makes ~3 KB of garbage (a decoded request, small
// objects) and keeps one log entry (the newest 14,000) and one history event (the newest 10,000), as a member at
// put c=256 does. `hogs` busy processes share the cores meanwhile, bounded by the same time.
//
//   node --single-threaded-gc bench/young-collections.mjs [keys=1000000] [seconds=20] [hogs=0]
//
// Prints one JSON line: the young collections' count and their p50, p90 and maximum in ms (perf_hooks' gc entries,
// wall time, so a collection preempted mid-way counts its wait).

import { spawn } from "node:child_process";
import console from "node:console";
import { PerformanceObserver, constants, performance } from "node:perf_hooks";
import process from "node:process";
import { setTimeout } from "node:timers";

const [keys, seconds, hogs] = [1_000_000, 20, 0].map((d, i) => Number(process.argv[2 + i] ?? d));
if (![keys, seconds, hogs].every((n) => Number.isInteger(n) && n >= 0) || seconds === 0) {
  console.error(
    `usage: young-collections.mjs [keys >= 0] [seconds >= 1] [hogs >= 0]; got ${process.argv.slice(2).join(" ")}`,
  );
  process.exit(2);
}

const children = Array.from({ length: hogs }, () =>
  spawn(process.execPath, ["-e", `const end = Date.now() + ${(seconds + 2) * 1000}; while (Date.now() < end);`], {
    stdio: "ignore",
  }),
);

const key = (i) => "bench-key-" + String(i).padStart(8, "0");
const shards = Array.from({ length: 16 }, () => new Map());
for (let i = 0; i < keys; i++) shards[i & 15].set(key(i), i);

const young = [];
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) young.push(e.duration);
});
observer.observe({ entryTypes: ["gc"] });

const log = [];
const history = [];
let rng = 12345;
let puts = 0;
const end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  for (let j = 0; j < 1000; j++) {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    const i = rng % 1_000_000;
    const k = key(i);
    const shard = shards[i & 15];
    if (!shard.has(k)) shard.set(k, i);
    const request = { op: "put", key: k, value: new Uint8Array(256), lease: 0, ctx: { key: k, i } };
    const scratch = [];
    for (let t = 0; t < 20; t++) scratch.push({ t, s: k + t });
    log.push({ term: 2, index: puts, data: request.value });
    if (log.length > 14_000) log.shift();
    history.push({ revision: puts, key: k, kind: scratch.length });
    if (history.length > 10_000) history.shift();
    puts++;
  }
}

// The observer's last entries arrive in a later turn.
setTimeout(() => {
  observer.disconnect();
  for (const c of children) c.kill();
  young.sort((a, b) => a - b);
  const at = (q) => Math.round(young[Math.min(young.length - 1, Math.floor(q * young.length))] * 10) / 10;
  console.log(
    JSON.stringify({ keys, seconds, hogs, puts, young: young.length, p50_ms: at(0.5), p90_ms: at(0.9), max_ms: at(1) }),
  );
}, 100);
