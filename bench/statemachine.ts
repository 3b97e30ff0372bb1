// State machine benchmark (not a test): applied commands per second for put, txn-cas and range on a
// 100,000-key store, memory per key, and snapshot/restore time for 1,000,000 keys of 256 bytes — whole, and taken
// a run at a time as a member takes it (the longest run is how long a member's event loop stops for it).
// Every loop is bounded by a count and by a time budget. Commands are pre-encoded, so the figures include
// decode + validation + apply, as on a follower, but not the client's encoding.
//
//   node --expose-gc --import tsx bench/statemachine.ts [--keys 100000] [--snapshot-keys 1000000]

import { encodeCommand, type Command } from "../src/statemachine/commands.js";
import { contentHash } from "../src/statemachine/hash.js";
import { StateMachine } from "../src/statemachine/state-machine.js";
import { DEFAULT_SNAPSHOT_STEP_BYTES } from "../src/host/host-config.js";

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const KEYS = arg("keys", 100_000);
const SNAPSHOT_KEYS = arg("snapshot-keys", 1_000_000);
const OPS = arg("ops", 100_000);
const TIME_BUDGET_MS = 5_000;

const gc = (globalThis as { gc?: () => void }).gc;
const heap = () => {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const key = (i: number) => `key/${String(i).padStart(7, "0")}`;
function value(i: number, size: number): Uint8Array {
  const v = new Uint8Array(size);
  for (let j = 0; j < size; j++) v[j] = (i * 31 + j) & 0xff;
  return v;
}
/** Deterministic permutation (LCG) so the access order is random-like but reproducible. */
function shuffled(n: number): number[] {
  const a = [...Array(n).keys()];
  let s = 12345;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function timeApply(sm: StateMachine, commands: Uint8Array[]): { ops: number; perSec: number; ms: number } {
  const start = performance.now();
  let n = 0;
  for (const bytes of commands) {
    const { result } = sm.apply(sm.lastApplied + 1, bytes);
    if (!result.ok) throw new Error(`bench command failed: ${result.error.code} ${result.error.message}`);
    n++;
    if ((n & 1023) === 0 && performance.now() - start > TIME_BUDGET_MS) break;
  }
  const ms = performance.now() - start;
  return { ops: n, perSec: Math.round((n / ms) * 1000), ms: Math.round(ms) };
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;
const rows: Record<string, string | number>[] = [];
const json: Record<string, number> = {};

// --- 100,000-key store ------------------------------------------------------------------------------------
// In a function so that the store and the pre-encoded commands are garbage before the snapshot section.
function storeBench(): void {
  const VALUE_BYTES = 64;
  const before = heap();
  const sm = new StateMachine({ limits: { historyRevisions: 1000, historyMaxEvents: 1000 } });
  const fill = shuffled(KEYS).map((i) => encodeCommand({ op: "put", key: key(i), value: value(i, VALUE_BYTES) }));
  const insert = timeApply(sm, fill);
  fill.length = 0;
  const after = heap();
  const bytesPerKey = Math.round((after - before) / KEYS);
  rows.push({
    measure: `put (insert, new keys, ${VALUE_BYTES}B values)`,
    ops: insert.ops,
    "ops/s": insert.perSec,
    ms: insert.ms,
  });
  json.insertPerSec = insert.perSec;
  json.bytesPerKey = bytesPerKey;

  const order = shuffled(KEYS);
  const enc = (c: Command) => encodeCommand(c);
  const puts = Array.from({ length: OPS }, (_, n) =>
    enc({ op: "put", key: key(order[n % KEYS]), value: value(n, VALUE_BYTES) }),
  );
  const put = timeApply(sm, puts);
  rows.push({ measure: `put (update) on ${KEYS} keys`, ops: put.ops, "ops/s": put.perSec, ms: put.ms });
  json.putPerSec = put.perSec;

  // txn-cas: compare each key's current modRevision, then put; one CAS per key so every one succeeds.
  const casKeys = order.slice(0, Math.min(OPS, KEYS)).reverse();
  const cas = casKeys.map((i) =>
    enc({
      op: "txn",
      compare: [{ key: key(i), target: "modRevision", result: "=", value: sm.get(key(i))!.modRevision }],
      success: [{ op: "put", key: key(i), value: value(i + 1, VALUE_BYTES) }],
      failure: [],
    }),
  );
  const txn = timeApply(sm, cas);
  rows.push({ measure: `txn-cas on ${KEYS} keys`, ops: txn.ops, "ops/s": txn.perSec, ms: txn.ms });
  json.txnCasPerSec = txn.perSec;

  const ranges = Array.from({ length: OPS }, (_, n) =>
    enc({ op: "range", key: key(order[n % KEYS]).slice(0, 9), prefix: true, limit: 10 }),
  );
  const range = timeApply(sm, ranges);
  rows.push({
    measure: `range (prefix, limit 10) on ${KEYS} keys`,
    ops: range.ops,
    "ops/s": range.perSec,
    ms: range.ms,
  });
  json.rangePerSec = range.perSec;

  const gets = Array.from({ length: OPS }, (_, n) => enc({ op: "range", key: key(order[n % KEYS]) }));
  const get = timeApply(sm, gets);
  rows.push({ measure: `range (single key) on ${KEYS} keys`, ops: get.ops, "ops/s": get.perSec, ms: get.ms });
  json.getPerSec = get.perSec;
  rows.push({
    measure: `memory per key (${VALUE_BYTES}B value, heap + arrayBuffers)`,
    ops: KEYS,
    "ops/s": "",
    ms: "",
    bytes: bytesPerKey,
  });
}
storeBench();
heap();

// --- 1,000,000 keys of 256 bytes: snapshot and restore -------------------------------------------------------
{
  const big = new StateMachine();
  const t0 = performance.now();
  for (let i = 0; i < SNAPSHOT_KEYS; i++) big.applyCommand(i + 1, { op: "put", key: key(i), value: value(i, 256) });
  const loadMs = performance.now() - t0;
  // What one full V8 collection costs with the million records held: the pause a member's major collections
  // approach (they mark concurrently when there are idle cores; on a loaded 2-core machine there are none).
  const fullGcMs: number[] = [];
  for (let i = 0; gc !== undefined && i < 3; i++) {
    const t = performance.now();
    gc();
    fullGcMs.push(performance.now() - t);
  }
  const heapUsed = process.memoryUsage().heapUsed;

  const t1 = performance.now();
  const bytes = big.snapshot();
  const snapshotMs = performance.now() - t1;
  const t2 = performance.now();
  const hash = contentHash(bytes);
  const hashMs = performance.now() - t2;
  const t3 = performance.now();
  const restored = StateMachine.restore(bytes);
  const restoreMs = performance.now() - t3;
  const again = contentHash(restored.snapshot());
  if (again !== hash) throw new Error("restored state hashes differently");

  rows.push({
    measure: `load ${SNAPSHOT_KEYS} keys x 256B (applyCommand)`,
    ops: SNAPSHOT_KEYS,
    "ops/s": Math.round((SNAPSHOT_KEYS / loadMs) * 1000),
    ms: Math.round(loadMs),
  });
  if (fullGcMs.length > 0) {
    const median = round1([...fullGcMs].sort((a, b) => a - b)[1]);
    rows.push({ measure: `full V8 collection, ${SNAPSHOT_KEYS} keys held (median of 3)`, ops: 3, "ops/s": "", ms: median });
    json.fullGcMs = median;
  }
  rows.push({
    measure: `V8 heap used with ${SNAPSHOT_KEYS} keys held (bytes per key)`,
    ops: SNAPSHOT_KEYS,
    "ops/s": "",
    ms: "",
    bytes: Math.round(heapUsed / SNAPSHOT_KEYS),
  });
  json.heapBytesPerKeyAt1M = Math.round(heapUsed / SNAPSHOT_KEYS);
  rows.push({
    measure: `snapshot ${SNAPSHOT_KEYS} keys (${(bytes.length / 1e6).toFixed(0)} MB)`,
    ops: 1,
    "ops/s": "",
    ms: Math.round(snapshotMs),
  });
  rows.push({
    measure: `content hash of the snapshot`,
    ops: 1,
    "ops/s": "",
    ms: Math.round(hashMs),
    "MB/s": Math.round(bytes.length / 1e3 / hashMs),
  });
  rows.push({ measure: `restore ${SNAPSHOT_KEYS} keys`, ops: 1, "ops/s": "", ms: Math.round(restoreMs) });

  // The same snapshot taken a run at a time, as a member takes it (one run per event-loop turn, with the default
  // budget), with puts applied between the runs: the longest run is how long the member's loop stops.
  // The one-pass snapshot, its copy and the restore above left hundreds of MB of garbage: collected first (with
  // --expose-gc), so that the job's start measures the job and not that collection, as in a member.
  gc?.();
  const t4 = performance.now();
  // Each piece is checked against the whole snapshot as it comes, then released for reuse, as a member's snapshot
  // file releases each piece once written.
  let compared = 0;
  let same = true;
  const job = big.beginSnapshot({
    emit: (piece, release) => {
      same &&= Buffer.compare(piece, bytes.subarray(compared, compared + piece.length)) === 0;
      compared += piece.length;
      release();
    },
  });
  const beginMs = performance.now() - t4;
  const runMs: number[] = [];
  for (let done = false; !done; ) {
    for (let i = 0; i < 100; i++) big.applyCommand(big.lastApplied + 1, { op: "put", key: key((runMs.length * 100 + i) * 7), value: value(i, 256) });
    const t = performance.now();
    done = job.step(DEFAULT_SNAPSHOT_STEP_BYTES);
    runMs.push(performance.now() - t);
  }
  if (!same || compared !== bytes.length) throw new Error("the snapshot taken a run at a time differs from the whole one");
  const sorted = [...runMs].sort((a, b) => a - b);
  const at = (q: number) => round1(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  const totalMs = Math.round(beginMs + runMs.reduce((a, b) => a + b, 0));
  rows.push({ measure: `snapshot ${SNAPSHOT_KEYS} keys over turns: start`, ops: 1, "ops/s": "", ms: round1(beginMs) });
  rows.push({
    measure: `  ${runMs.length} runs of ${DEFAULT_SNAPSHOT_STEP_BYTES >> 20} MiB: median, p99, longest; over 50 ms; total`,
    ops: runMs.length,
    "ops/s": "",
    ms: `${at(0.5)}, ${at(0.99)}, ${at(1)}; ${runMs.filter((m) => m > 50).length}; ${totalMs}`,
  });
  json.chunkedBeginMs = round1(beginMs);
  json.chunkedRuns = runMs.length;
  json.chunkedMedianMs = at(0.5);
  json.chunkedP99Ms = at(0.99);
  json.chunkedLongestMs = at(1);
  json.chunkedRunsOver50Ms = runMs.filter((m) => m > 50).length;
  json.chunkedTotalMs = totalMs;

  // The restore a run at a time, as a member restores a snapshot from the leader or its own at start: the longest
  // run, the last one (it installs the leases, sessions, history and sorted keys) among them, is how long the
  // member's loop stops.
  gc?.();
  const into = new StateMachine();
  const t5 = performance.now();
  const restoreJob = into.beginRestore(bytes);
  const restoreBeginMs = performance.now() - t5;
  const restoreRunMs: number[] = [];
  for (let done = false; !done; ) {
    const t = performance.now();
    done = restoreJob.step(DEFAULT_SNAPSHOT_STEP_BYTES);
    restoreRunMs.push(performance.now() - t);
  }
  if (contentHash(into.snapshot()) !== hash) throw new Error("the state restored a run at a time hashes differently");
  const restoreSorted = [...restoreRunMs].sort((a, b) => a - b);
  const restoreAt = (q: number) => round1(restoreSorted[Math.min(restoreSorted.length - 1, Math.floor(q * restoreSorted.length))]);
  rows.push({
    measure: `restore over turns: start; ${restoreRunMs.length} runs: median, p99, longest, last; over 50 ms; total`,
    ops: restoreRunMs.length,
    "ops/s": "",
    ms: `${round1(restoreBeginMs)}; ${restoreAt(0.5)}, ${restoreAt(0.99)}, ${restoreAt(1)}, ${round1(restoreRunMs[restoreRunMs.length - 1])}; ${restoreRunMs.filter((m) => m > 50).length}; ${Math.round(restoreBeginMs + restoreRunMs.reduce((a, b) => a + b, 0))}`,
  });
  json.restoreBeginMs = round1(restoreBeginMs);
  json.restoreRuns = restoreRunMs.length;
  json.restoreMedianMs = restoreAt(0.5);
  json.restoreLongestMs = restoreAt(1);
  json.restoreLastMs = round1(restoreRunMs[restoreRunMs.length - 1]);
  json.restoreRunsOver50Ms = restoreRunMs.filter((m) => m > 50).length;
  json.snapshotKeys = SNAPSHOT_KEYS;
  json.snapshotBytes = bytes.length;
  json.snapshotMs = Math.round(snapshotMs);
  json.hashMs = Math.round(hashMs);
  json.restoreMs = Math.round(restoreMs);
}

console.table(rows);
console.log(JSON.stringify({ bench: "statemachine", node: process.version, gcExposed: gc !== undefined, ...json }));
