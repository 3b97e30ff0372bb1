// Event-loop stalls of real members while they snapshot a large state (not a test): a local 3-member cluster is
// loaded with `--keys` keys of 256 bytes (puts at concurrency 256), then keeps overwriting them until every member
// has taken `--snapshots` snapshots at full size. Every 250 ms each member's /metrics is read for
// nodejs_eventloop_lag_max_seconds (prom-client's monitorEventLoopDelay, reset at each read), and each member's
// log for its snapshots. Prints the longest stall per member under load, over the windows in which it was taking
// or saving a snapshot at full size, and in 10 s without load after (with the pause of the idle collection it
// logged then); its resident memory at the end; and the term (elections). Bounded: stops after `--max-seconds`.
//
//   npm run bench:snapshot-stall -- [--keys 1000000] [--snapshots 1] [--max-seconds 900] [--root <source tree>]
//                                   [--catch-up | --restart] [--trace]
//
// A control runs beside the members: a Node process that does nothing but measure its own event-loop delay the same
// way. Its stalls are the machine's (CPU contention, the hypervisor), not Concord's: read the members' against it.
//
// --root runs the members from another source tree (e.g. an export of an older commit, to compare).
// --catch-up: a follower is stopped before the load and started again after it, once the others have compacted
// their logs past it: it recovers from its own (small) snapshot and catches up by the leader's full-size one. The
// longest stall per member while it does is reported, with how long it took.
// --restart: once the load is over, a follower holding the full state is stopped (SIGTERM) and started again: it
// recovers from its own full-size snapshot and WAL, then catches up by entries. Reported the same way.
// --trace (with either): the catching-up member's and the leader's readings over 40 ms and their log lines meanwhile, in
// time order, with their collector's pauses of 20 ms or more (bench/gc-pauses.mjs, preloaded).

import { spawn } from "node:child_process";
import fs from "node:fs";
import readline from "node:readline";
import { sourceCommand } from "../src/harness/command.js";
import { LocalCluster } from "../src/harness/cluster.js";
import { metricValue } from "../src/harness/status.js";
import type { ClientSocket } from "../src/transport/client-socket.js";

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}
const KEYS = Number(arg("keys", "1000000"));
const SNAPSHOTS = Number(arg("snapshots", "1"));
const MAX_SECONDS = Number(arg("max-seconds", "900"));
const ROOT = arg("root", "");
const CATCH_UP = process.argv.includes("--catch-up");
const RESTART = process.argv.includes("--restart");
const TRACE = process.argv.includes("--trace");
if (CATCH_UP && RESTART) throw new Error("--catch-up and --restart are two different runs: give one");
const CONCURRENCY = 256;
const VALUE = new Uint8Array(256).fill(0x61);
const key = (i: number) => `key/${String(i).padStart(7, "0")}`;

interface Window {
  at: number;
  lagMs: number;
}

/** The idle control process: one line per 250 ms, its event loop's longest delay in that window (ms). */
const CONTROL = `
const { monitorEventLoopDelay } = require("node:perf_hooks");
const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
setInterval(() => { console.log(h.max / 1e6); h.reset(); }, 250);
process.stdin.on("end", () => process.exit(0)).resume();
`;
const control = spawn(process.execPath, ["-e", CONTROL], { stdio: ["pipe", "pipe", "inherit"] });
const controlLags: Window[] = [];
readline.createInterface({ input: control.stdout! }).on("line", (l) => controlLags.push({ at: Date.now(), lagMs: Number(l) }));

const started = Date.now();
const cluster = await LocalCluster.start({
  size: 3,
  basePort: 11300,
  logLevel: "info",
  ...(ROOT ? { command: sourceCommand(ROOT) } : {}),
  // With --trace, each member logs its collector's pauses of 20 ms or more (bench/gc-pauses.mjs).
  ...(TRACE ? { env: () => ({ NODE_OPTIONS: `--import ${new URL("./gc-pauses.mjs", import.meta.url).pathname}` }) } : {}),
});
const names = cluster.members().map((m) => m.name);
const lags = new Map<string, Window[]>(names.map((n) => [n, []]));
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    await Promise.all(
      names.map(async (n) => {
        try {
          const text = (await cluster.httpGet(n, "/metrics", 2000)).body;
          const v = metricValue(text, "nodejs_eventloop_lag_max_seconds");
          if (v !== undefined) lags.get(n)!.push({ at: Date.now(), lagMs: v * 1000 });
        } catch {
          // a member too busy to answer within 2 s shows as a gap, and in the next reading's maximum
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 250));
  }
})();

/** A member's log records whose line contains `marker`, with their ISO times as milliseconds (other lines skipped). */
function logRecords<T>(name: string, marker: string): (T & { msg?: string; time?: number })[] {
  const out = [];
  for (const line of fs.readFileSync(cluster.member(name).logFile, "utf8").split("\n")) {
    if (!line.includes(marker)) continue;
    try {
      const parsed = JSON.parse(line) as T & { msg?: string; time?: number | string };
      out.push({ ...parsed, time: typeof parsed.time === "string" ? Date.parse(parsed.time) : parsed.time });
    } catch {
      continue;
    }
  }
  return out;
}

/** The pauses of the idle collections a member logged (idle-gc.ts), in all and the collection's and the trim's, or
 * that it left its heap to V8. */
function idleCollections(name: string): string[] {
  // Its young-generation records (steps, no pause of a full collection) are not among them.
  return logRecords<{ ms?: number; gcMs?: number; trimMs?: number; keys?: number }>(name, '"msg":"idle: ').flatMap((r) =>
    r.keys !== undefined
      ? [`left to V8 (${r.keys} keys)`]
      : r.ms !== undefined
        ? [`${r.ms} (gc ${r.gcMs ?? "-"}, trim ${r.trimMs ?? "-"})`]
        : [],
  );
}

/** The snapshots a member logged: start and save times, size, turns, waits for the disk and encoding time. */
function snapshots(
  name: string,
): { start: number; end: number; bytes: number; turns?: number; diskWaits?: number; encodeMs?: number; ms: number }[] {
  const out = [];
  let start: number | undefined;
  type Logged = { bytes?: number; turns?: number; diskWaits?: number; encodeMs?: number; ms?: number };
  for (const rec of logRecords<Logged>(name, '"snapshot')) {
    if (rec.msg === "snapshot started") start = rec.time;
    if (rec.msg === "snapshot saved" && rec.time !== undefined) {
      const took = (rec.encodeMs ?? 0) + (rec.ms ?? 0);
      out.push({
        start: start ?? rec.time - took,
        end: rec.time,
        bytes: rec.bytes ?? 0,
        turns: rec.turns,
        diskWaits: rec.diskWaits,
        encodeMs: rec.encodeMs,
        ms: rec.ms ?? 0,
      });
      start = undefined;
    }
  }
  return out;
}

const leader = await cluster.waitForLeader();
const lagging = CATCH_UP || RESTART ? names.find((n) => n !== leader) : undefined;
if (lagging && CATCH_UP) await cluster.stop(lagging);
const clients: ClientSocket[] = [];
for (let i = 0; i < 8; i++) clients.push(await cluster.connect(leader));
let next = 0;
let puts = 0;
let failed = 0;
const fullSize = () => names.filter((n) => n !== lagging || RESTART).every((n) => snapshots(n).filter((s) => s.bytes > KEYS * 256).length >= SNAPSHOTS);
const deadline = started + MAX_SECONDS * 1000;
let lastReport = Date.now();
await Promise.all(
  Array.from({ length: CONCURRENCY }, async (_, w) => {
    const c = clients[w % clients.length];
    for (;;) {
      if (Date.now() > deadline) return;
      if (next >= KEYS && puts % 5000 < CONCURRENCY && fullSize()) return;
      const i = next++ % KEYS;
      try {
        await c.request("put", { key: key(i), value: VALUE }, 30_000);
        puts++;
      } catch (e) {
        // A put that timed out (an election under way) is counted and retried with the next key.
        failed++;
        if (failed === 1 || failed % 1000 === 0) console.error(`put failed (${failed} so far): ${(e as Error).message}`);
      }
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        console.error(`${Math.round((Date.now() - started) / 1000)} s: ${puts} puts`);
      }
    }
  }),
);
const loadEnded = Date.now();
for (const c of clients) c.close();
// The lagging follower starts again and catches up, with no load: until it has applied the leader's commit index.
// With --restart it is stopped first, holding the full state.
let catchUp: { start: number; end: number } | undefined;
if (lagging) {
  if (RESTART) await cluster.stop(lagging);
  const start = Date.now();
  const target = (await cluster.status(leader)).commit;
  await cluster.restart(lagging);
  for (;;) {
    if (Date.now() - start > MAX_SECONDS * 1000) throw new Error(`${lagging} did not catch up in ${MAX_SECONDS} s`);
    await new Promise((r) => setTimeout(r, 250));
    const applied = await cluster.status(lagging).then((st) => st.applied, () => 0);
    if (applied >= target) break;
  }
  catchUp = { start, end: Date.now() };
  console.error(`${lagging} ${RESTART ? "restarted and caught up" : "caught up"} in ${((catchUp.end - start) / 1000).toFixed(1)} s`);
}
// Then 10 s with no load: a quiet member runs its idle collection (idle-gc.ts) after a snapshot, reported apart.
await new Promise((r) => setTimeout(r, 10_000));
sampling = false;
await sampler;
const terms = await Promise.all(names.map(async (n) => (await cluster.status(n)).term));
// Resident memory once settled: after the quiet member's idle collection (logged with its pause) and the freeing
// of the buffers it collected.
const residentMiB = await Promise.all(
  names.map(async (n) => {
    const text = (await cluster.httpGet(n, "/metrics", 5000)).body;
    return Math.round((metricValue(text, "process_resident_memory_bytes") ?? NaN) / 2 ** 20);
  }),
);

control.stdin!.end();
const rows = [];
const allBig = names.flatMap((n) => snapshots(n).filter((s) => s.bytes > KEYS * 256));
for (const [i, n] of [...names, "control (idle)"].entries()) {
  const isControl = i === names.length;
  const ws = isControl ? controlLags : lags.get(n)!;
  const snaps = isControl ? [] : snapshots(n);
  // The control's "during snapshots" is during any member's.
  const big = isControl ? allBig : snaps.filter((s) => s.bytes > KEYS * 256);
  // A reading covers the 250 ms (plus the read itself) before it.
  const during = ws.filter((w) => w.at <= loadEnded && big.some((s) => w.at >= s.start && w.at - 1000 <= s.end));
  const loaded = ws.filter((w) => w.at <= loadEnded);
  const catching = catchUp ? ws.filter((w) => w.at > catchUp.start && w.at <= catchUp.end + 250) : [];
  const idle = ws.filter((w) => w.at > (catchUp?.end ?? loadEnded) + 250);
  rows.push({
    member: n,
    readings: ws.length,
    "max stall ms under load": Math.round(Math.max(0, ...loaded.map((w) => w.lagMs))),
    "snapshots (at full size)": isControl ? "-" : `${snaps.length} (${big.length})`,
    "max stall ms during full-size snapshots": Math.round(Math.max(0, ...during.map((w) => w.lagMs))),
    ...(catchUp
      ? {
          [`max stall ms while ${lagging} ${RESTART ? "restarted and caught up" : "caught up"} (${((catchUp.end - catchUp.start) / 1000).toFixed(1)} s)`]: Math.round(
            Math.max(0, ...catching.map((w) => w.lagMs)),
          ),
        }
      : {}),
    "max stall ms in the 10 s after": Math.round(Math.max(0, ...idle.map((w) => w.lagMs))),
    "idle collection ms": isControl ? "-" : idleCollections(n).join(", "),
    "resident MiB at the end": isControl ? "-" : residentMiB[i],
    "full-size snapshot: MB, turns, waits for the disk, encode ms, save ms": (isControl ? [] : big)
      .map((s) => `${Math.round(s.bytes / 1e6)}, ${s.turns ?? "-"}, ${s.diskWaits ?? "-"}, ${s.encodeMs ?? "-"}, ${s.ms}`)
      .join("; "),
  });
}
console.table(rows);
console.log(
  `terms at the end (one election at the start; a higher term means elections during the run): ${terms.join(", ")}`,
);
console.log(
  JSON.stringify({
    bench: "snapshot-stall",
    keys: KEYS,
    puts,
    failed,
    seconds: Math.round((Date.now() - started) / 1000),
    root: ROOT || "this tree",
    ...(catchUp ? { lagging, restart: RESTART, catchUpSeconds: (catchUp.end - catchUp.start) / 1000 } : {}),
    terms,
    rows,
  }),
);
if (TRACE && catchUp && lagging) {
  // What the member that caught up and the leader that brought it up did around their stalls: readings over 40 ms
  // and log lines, in time order, in milliseconds since the member was started again.
  const since = (t: number) => `+${String(Math.round(t - catchUp.start)).padStart(6)} ms`;
  const during = (t: number) => t >= catchUp.start && t <= catchUp.end + 250;
  const events = [lagging, leader].flatMap((name) => [
    ...lags
      .get(name)!
      .filter((w) => during(w.at) && w.lagMs > 40)
      .map((w) => ({ at: w.at, text: `${name} stall reading ${Math.round(w.lagMs)} ms (the 250 ms before)` })),
    ...logRecords<Record<string, unknown>>(name, '"msg"')
      .filter((r) => r.time !== undefined && during(r.time))
      .map((r) => {
        const rest = Object.fromEntries(Object.entries(r).filter(([k]) => !["msg", "time", "level", "pid", "hostname", "name"].includes(k)));
        return { at: r.time!, text: `${name} ${String(r.msg)} ${JSON.stringify(rest)}` };
      }),
  ]);
  events.sort((a, b) => a.at - b.at);
  console.log(`--trace: ${lagging} (catching up) and ${leader} (the leader), from ${lagging}'s start again`);
  for (const e of events) console.log(`${since(e.at)}  ${e.text}`);
}
await cluster.teardown();
