// Storage benchmark: `npm run bench:storage`.
//
// 1. Raw fsync rate of the disk under os.tmpdir(): `dd oflag=dsync` (when dd exists) and an equivalent Node
//    loop (append 256 bytes + fdatasync).
// 2. DurableStorage.save throughput for batches of 1, 16 and 256 entries of 256 bytes: one save at a time
//    (each awaited: one write + one fdatasync per batch) and with 8 saves in flight (group commit).
// 3. What a batch costs before the disk: encoding + CRC-32C.
// 4. Recovery time of a 1,000,000-entry WAL and of a 100 MB snapshot.
// 5. One-entry saves (each awaited) while a 256 MB snapshot file is saved, against the same loop alone: the
//    longest and the 99th-percentile save. The snapshot's dirty pages reach the disk as it is written (a sync
//    every few MiB, snapshot-file.ts), so a WAL fsync meanwhile does not wait behind all of them at its end.
// Every loop is bounded in time and count; temp directories are removed. Prints a table and one JSON line.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Latencies, percentile } from "../cli/latencies.js";
import { crc32c } from "../src/storage/crc32c.js";
import { DurableStorage } from "../src/storage/durable-storage.js";
import { nodeFileSystem } from "../src/storage/node-file-system.js";
import { encodeEntries } from "../src/storage/record.js";
import type { Entry } from "../src/raft/types.js";

const ENTRY_BYTES = 256;
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 2000);
const quietLogger = { warn: () => {} };
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "concord-bench-storage-"));
const now = (): number => performance.now();
const round = (n: number): number => Math.round(n);

function rawFsyncNodeLoop(runMs = RUN_MS): number {
  const file = path.join(tmpRoot, "raw-fsync");
  const fd = fs.openSync(file, "w");
  const buf = Buffer.alloc(ENTRY_BYTES, 7);
  let n = 0;
  const t0 = now();
  while (now() - t0 < runMs && n < 50_000) {
    fs.writeSync(fd, buf);
    fs.fdatasyncSync(fd);
    n++;
  }
  const rate = n / ((now() - t0) / 1000);
  fs.closeSync(fd);
  fs.rmSync(file);
  return rate;
}

function rawFsyncDd(): number | undefined {
  const file = path.join(tmpRoot, "raw-dd");
  const count = 2000;
  try {
    const out = execFileSync(
      "dd",
      ["if=/dev/zero", `of=${file}`, `bs=${ENTRY_BYTES}`, `count=${count}`, "oflag=dsync"],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 60_000,
      },
    );
    void out;
  } catch {
    return undefined;
  }
  // dd reports on stderr; execFileSync discards it on success, so time it ourselves instead.
  const t0 = now();
  execFileSync("dd", ["if=/dev/zero", `of=${file}`, `bs=${ENTRY_BYTES}`, `count=${count}`, "oflag=dsync"], {
    stdio: "ignore",
    timeout: 60_000,
  });
  const rate = count / ((now() - t0) / 1000);
  fs.rmSync(file, { force: true });
  return rate;
}

const makeEntries = (first: number, count: number, term: number, payload: Uint8Array): Entry[] =>
  Array.from({ length: count }, (_, k) => ({ index: first + k, term, type: 0, data: payload }));

interface SaveResult {
  batch: number;
  inflight: number;
  batchesPerSec: number;
  entriesPerSec: number;
  fsyncsPerSec: number;
}

async function saveThroughput(batch: number, inflight: number, runMs: number): Promise<SaveResult> {
  const dir = path.join(tmpRoot, `save-${batch}-${inflight}`);
  const disk = await DurableStorage.open(nodeFileSystem, dir, { logger: quietLogger });
  await disk.bootstrap(["n1"]);
  const payload = new Uint8Array(ENTRY_BYTES).fill(1);
  let next = 2;
  let batches = 0;
  const maxBatches = Math.max(200, Math.floor(2_000_000 / batch));
  const fsyncs0 = disk.stats.fsyncs;
  const t0 = now();
  const worker = async (): Promise<void> => {
    while (now() - t0 < runMs && batches < maxBatches) {
      const entries = makeEntries(next, batch, 2, payload);
      next += batch;
      batches++;
      await disk.save(undefined, entries, undefined);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const secs = (now() - t0) / 1000;
  const fsyncs = disk.stats.fsyncs - fsyncs0;
  await disk.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    batch,
    inflight,
    batchesPerSec: batches / secs,
    entriesPerSec: (batches * batch) / secs,
    fsyncsPerSec: fsyncs / secs,
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The disk is shared and its fsync rate drifts by several times within seconds, so the raw loop and the
 * storage are measured in alternating short rounds and compared round by round (median of the ratios).
 */
async function interleaved(
  batch: number,
  inflight: number,
  rounds: number,
): Promise<SaveResult & { rawPerSec: number; ratioToRaw: number }> {
  const runMs = RUN_MS / rounds;
  const results: SaveResult[] = [];
  const raws: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const raw = rawFsyncNodeLoop(runMs);
    const res = await saveThroughput(batch, inflight, runMs);
    raws.push(raw);
    results.push(res);
    ratios.push(res.fsyncsPerSec / raw);
  }
  const pick = (f: (s: SaveResult) => number): number => median(results.map(f));
  return {
    batch,
    inflight,
    batchesPerSec: pick((s) => s.batchesPerSec),
    entriesPerSec: pick((s) => s.entriesPerSec),
    fsyncsPerSec: pick((s) => s.fsyncsPerSec),
    rawPerSec: median(raws),
    ratioToRaw: median(ratios),
  };
}

function cpuCostPerBatch(batch: number): { encodeUs: number; crcMBps: number } {
  const payload = new Uint8Array(ENTRY_BYTES).fill(3);
  const entries = makeEntries(1, batch, 1, payload);
  let n = 0;
  const t0 = now();
  while (now() - t0 < 500 && n < 100_000) {
    encodeEntries(entries);
    n++;
  }
  const encodeUs = ((now() - t0) * 1000) / n;
  const big = Buffer.alloc(32 * 1024 * 1024, 5);
  const t1 = now();
  crc32c(big);
  const crcMBps = 32 / ((now() - t1) / 1000);
  return { encodeUs, crcMBps };
}

async function walRecovery(
  totalEntries: number,
): Promise<{ entries: number; walMB: number; writeSecs: number; recoverSecs: number }> {
  const dir = path.join(tmpRoot, "recover-wal");
  let disk = await DurableStorage.open(nodeFileSystem, dir, { logger: quietLogger });
  await disk.bootstrap(["n1"]);
  const payload = new Uint8Array(ENTRY_BYTES).fill(9);
  const per = 2000;
  const t0 = now();
  for (let next = 2; next < totalEntries + 2; next += per) {
    const count = Math.min(per, totalEntries + 2 - next);
    await disk.save({ term: 2, vote: null, commit: next - 1 }, makeEntries(next, count, 2, payload), undefined);
  }
  const writeSecs = (now() - t0) / 1000;
  await disk.close();
  const walMB =
    fs.readdirSync(path.join(dir, "wal")).reduce((n, f) => n + fs.statSync(path.join(dir, "wal", f)).size, 0) / 1e6;
  const t1 = now();
  disk = await DurableStorage.open(nodeFileSystem, dir, { logger: quietLogger });
  const recoverSecs = (now() - t1) / 1000;
  const entries = disk.log.lastIndex() - disk.log.firstIndex() + 1;
  await disk.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { entries, walMB, writeSecs, recoverSecs };
}

/** A snapshot's bytes: `megabytes` MiB, a byte set every 4 KiB. */
function snapshotData(megabytes: number): Uint8Array {
  const data = new Uint8Array(megabytes * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
  return data;
}

async function snapshotRecovery(
  megabytes: number,
): Promise<{ snapshotMB: number; writeSecs: number; recoverSecs: number }> {
  const dir = path.join(tmpRoot, "recover-snap");
  let disk = await DurableStorage.open(nodeFileSystem, dir, { logger: quietLogger });
  await disk.bootstrap(["n1"]);
  await disk.save({ term: 2, vote: null, commit: 2 }, makeEntries(2, 1, 2, new Uint8Array(8)), undefined);
  const data = snapshotData(megabytes);
  const t0 = now();
  await disk.saveSnapshot({ metadata: { index: 2, term: disk.log.term(2), confState: disk.log.initialState().confState }, data });
  const writeSecs = (now() - t0) / 1000;
  await disk.close();
  const t1 = now();
  disk = await DurableStorage.open(nodeFileSystem, dir, { logger: quietLogger });
  const recoverSecs = (now() - t1) / 1000;
  if (disk.snapshot?.data.length !== data.length) throw new Error("snapshot did not recover");
  await disk.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { snapshotMB: data.length / 1e6, writeSecs, recoverSecs };
}

interface SaveLatencies {
  saves: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * One-entry saves, one at a time: for `runMs` alone, then for at least `runMs` and until a `megabytes` snapshot
 * saved meanwhile is durable. Returns both runs' save latencies and how long the snapshot took.
 */
async function savesBesideSnapshot(megabytes: number, runMs: number): Promise<{ alone: SaveLatencies; beside: SaveLatencies; snapshotSecs: number }> {
  const dir = path.join(tmpRoot, "beside-snap");
  const disk = await DurableStorage.open(nodeFileSystem, dir, { logger: quietLogger });
  await disk.bootstrap(["n1"]);
  const payload = new Uint8Array(ENTRY_BYTES).fill(7);
  let index = 2;
  const loop = async (until: Promise<unknown>): Promise<SaveLatencies> => {
    let done = false;
    void until.then(() => (done = true));
    const ms = new Latencies();
    const end = now() + runMs;
    while (!done || now() < end) {
      const t = now();
      await disk.save({ term: 2, vote: null, commit: index - 1 }, makeEntries(index, 1, 2, payload), undefined);
      ms.add(now() - t);
      index++;
      // A turn between saves, as a member's ready loop takes (the WAL's write is inline: saves chained in
      // microtasks alone would never let the snapshot's I/O callbacks run).
      await new Promise(setImmediate);
      if (ms.n >= 200_000) break; // bounded in count as well as time
    }
    const sorted = ms.sorted();
    return { saves: ms.n, p99Ms: percentile(sorted, 99), maxMs: percentile(sorted, 100) };
  };
  const alone = await loop(Promise.resolve());
  const data = snapshotData(megabytes);
  const t0 = now();
  const snapshot = disk.saveSnapshot({ metadata: { index: 2, term: 2, confState: disk.log.initialState().confState }, data }).then(() => (now() - t0) / 1000);
  const beside = await loop(snapshot);
  const snapshotSecs = await snapshot;
  await disk.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { alone, beside, snapshotSecs };
}

async function main(): Promise<void> {
  try {
    const dd = rawFsyncDd();
    const rawNode = rawFsyncNodeLoop();
    const saves: (SaveResult & { rawPerSec: number; ratioToRaw: number })[] = [];
    for (const batch of [1, 16, 256]) {
      saves.push(await interleaved(batch, 1, 5));
      saves.push(await interleaved(batch, 8, 3));
    }
    const cpu = cpuCostPerBatch(256);
    const wal = await walRecovery(1_000_000);
    const snap = await snapshotRecovery(100);
    const beside = await savesBesideSnapshot(256, 1000);

    console.log(
      `disk: ${tmpRoot} (${os.platform()} ${os.release()}), entries of ${ENTRY_BYTES} bytes, ${RUN_MS} ms per run`,
    );
    console.log(
      `raw fsync: dd oflag=dsync ${dd === undefined ? "n/a" : round(dd)}/s, node write+fdatasync loop ${round(rawNode)}/s`,
    );
    console.log("batch  in-flight  batches/s  entries/s  fsyncs/s  raw fsync/s  fsyncs vs raw (same rounds)");
    for (const s of saves) {
      console.log(
        `${String(s.batch).padStart(5)}  ${String(s.inflight).padStart(9)}  ${String(round(s.batchesPerSec)).padStart(9)}  ` +
          `${String(round(s.entriesPerSec)).padStart(9)}  ${String(round(s.fsyncsPerSec)).padStart(8)}  ` +
          `${String(round(s.rawPerSec)).padStart(11)}  ${(100 * s.ratioToRaw).toFixed(0).padStart(26)}%`,
      );
    }
    const crcUs = (256 * (ENTRY_BYTES + 4)) / cpu.crcMBps; // bytes / (MB/s) = µs
    const seq256 = saves.find((x) => x.batch === 256 && x.inflight === 1)!;
    console.log(
      `cpu per 256-entry batch: encode+frame+crc ${cpu.encodeUs.toFixed(1)} µs (crc32c alone ~${crcUs.toFixed(0)} µs at ` +
        `${round(cpu.crcMBps)} MB/s) = ${((100 * cpu.encodeUs * seq256.batchesPerSec) / 1e6).toFixed(0)}% of one core at the ` +
        `measured ${round(seq256.batchesPerSec)} batches/s`,
    );
    console.log(
      `recovery: ${wal.entries} entries (${wal.walMB.toFixed(0)} MB WAL) in ${wal.recoverSecs.toFixed(2)} s (written in ${wal.writeSecs.toFixed(2)} s)`,
    );
    console.log(
      `recovery: ${snap.snapshotMB.toFixed(0)} MB snapshot in ${snap.recoverSecs.toFixed(2)} s (written in ${snap.writeSecs.toFixed(2)} s)`,
    );
    console.log(
      `one-entry saves: alone p99 ${beside.alone.p99Ms} ms, longest ${beside.alone.maxMs} ms; while a 256 MB snapshot is ` +
        `saved (${beside.snapshotSecs.toFixed(2)} s) p99 ${beside.beside.p99Ms} ms, longest ${beside.beside.maxMs} ms`,
    );
    console.log(
      JSON.stringify({
        bench: "storage",
        entryBytes: ENTRY_BYTES,
        rawFsyncPerSec: { dd: dd === undefined ? null : round(dd), node: round(rawNode) },
        saves: saves.map((s) => ({
          ...s,
          batchesPerSec: round(s.batchesPerSec),
          entriesPerSec: round(s.entriesPerSec),
          fsyncsPerSec: round(s.fsyncsPerSec),
          rawPerSec: round(s.rawPerSec),
          ratioToRaw: Number(s.ratioToRaw.toFixed(2)),
        })),
        encodeUsPer256Batch: Number(cpu.encodeUs.toFixed(1)),
        crc32cMBps: round(cpu.crcMBps),
        walRecovery: {
          entries: wal.entries,
          walMB: Number(wal.walMB.toFixed(1)),
          seconds: Number(wal.recoverSecs.toFixed(3)),
        },
        snapshotRecovery: {
          megabytes: Number(snap.snapshotMB.toFixed(1)),
          seconds: Number(snap.recoverSecs.toFixed(3)),
        },
        savesBesideSnapshot: { ...beside, snapshotSecs: Number(beside.snapshotSecs.toFixed(2)) },
      }),
    );
  } finally {
    fs.rmSync(tmpRoot, { recursive: true, force: true });
  }
}

await main();
