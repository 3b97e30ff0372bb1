import { nodeFileSystem } from "../../src/storage/node-file-system.js";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DurableStorage } from "../../src/storage/durable-storage.js";
import type { FileHandle, FileSystem } from "../../src/storage/file-system.js";
import {
  StorageCorruptionError,
  StorageFailedError,
  StorageInputError,
  StorageLockedError,
  StorageVersionError,
} from "../../src/storage/errors.js";
import { RecordKind, decodeRecord } from "../../src/storage/record.js";
import { scanSegment } from "../../src/storage/segment-scan.js";
import { snapshotFileName } from "../../src/storage/snapshot-file.js";
import type { MemoryStorage } from "../../src/raft/storage.js";
import { captureLogger, entry, logState, removeDir, runWorkload, snapshotAt, storageFrom, tempDir, type LogState, type WorkloadOp } from "./helpers.js";

/** The log's range and entries after each operation, by a MemoryStorage that holds every entry (no WAL). */
function modelLogs(start: LogState, ops: WorkloadOp[]): Pick<LogState, "firstIndex" | "lastIndex" | "entries">[] {
  const m = storageFrom(start, undefined);
  return ops.map((op) => {
    if (op.snapshotAt !== undefined) {
      m.createSnapshot(op.snapshotAt, m.initialState().confState, new Uint8Array());
      m.compact(op.snapshotAt);
    } else {
      if (op.snapshot && op.snapshot.metadata.index > m.snapshot().metadata.index) m.applySnapshot(op.snapshot);
      m.append(op.entries);
    }
    const { firstIndex, lastIndex, entries } = logState(m);
    return { firstIndex, lastIndex, entries };
  });
}

const dirs: string[] = [];
const open = (dir: string, opts: Parameters<typeof DurableStorage.open>[2] = {}) =>
  DurableStorage.open(nodeFileSystem, dir, { logger: captureLogger(), ...opts });
const fresh = (label: string): string => {
  const d = tempDir(label);
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

describe("DurableStorage basics", () => {
  it("bootstraps, persists entries and hard state, and recovers them after a restart", async () => {
    const dir = fresh("basic");
    const a = await open(dir);
    expect(a.isNew).toBe(true);
    await a.bootstrap(["n1", "n2", "n3"]);
    expect(a.log.firstIndex()).toBe(2);
    expect(a.log.term(1)).toBe(1);
    await a.save({ term: 2, vote: "n1", commit: 1 }, [entry(2, 2), entry(3, 2, [7, 8, 9])], undefined);
    const before = logState(a.log);
    await a.close();

    const b = await open(dir);
    expect(b.isNew).toBe(false);
    expect(logState(b.log)).toEqual(before);
    expect(b.hardState).toEqual({ term: 2, vote: "n1", commit: 1 });
    expect(b.snapshot?.metadata.confState.voters).toEqual(["n1", "n2", "n3"]);
    expect(b.log.initialState().confState.voters).toEqual(["n1", "n2", "n3"]);
    expect(Array.from(b.log.entries(3, 4)[0].data)).toEqual([7, 8, 9]);
    await b.close();
  });

  it("records a conflict truncation durably, across restarts", async () => {
    const dir = fresh("conflict");
    const a = await open(dir);
    await a.bootstrap(["n1"]);
    await a.save(
      { term: 2, vote: null, commit: 1 },
      [2, 3, 4, 5].map((i) => entry(i, 2)),
      undefined,
    );
    await a.close();

    const b = await open(dir);
    // A new leader of term 3 overwrites the uncommitted suffix from index 4.
    await b.save(
      { term: 3, vote: null, commit: 3 },
      [entry(4, 3, [44]), entry(5, 3, [55]), entry(6, 3, [66])],
      undefined,
    );
    await b.close();

    const c = await open(dir);
    expect(c.log.lastIndex()).toBe(6);
    expect(c.log.entries(2, 7).map((e) => [e.index, e.term])).toEqual([
      [2, 2],
      [3, 2],
      [4, 3],
      [5, 3],
      [6, 3],
    ]);
    // A shorter overwrite also drops what followed it.
    await c.save(undefined, [entry(3, 4, [33])], undefined);
    await c.close();

    const d = await open(dir);
    expect(d.log.lastIndex()).toBe(3);
    expect(d.log.entries(2, 4).map((e) => [e.index, e.term])).toEqual([
      [2, 2],
      [3, 4],
    ]);
    expect(d.hardState).toEqual({ term: 3, vote: null, commit: 3 });
    await d.close();
  });

  it("installs a leader's snapshot: the log is replaced, and stays replaced after a restart", async () => {
    const dir = fresh("install");
    const a = await open(dir);
    await a.bootstrap(["n1", "n2"]);
    await a.save(
      { term: 2, vote: null, commit: 1 },
      [2, 3, 4].map((i) => entry(i, 2)),
      undefined,
    );
    const snap = {
      metadata: { index: 10, term: 3, confState: { ...a.log.initialState().confState, voters: ["n1", "n2", "n3"] } },
      data: new Uint8Array([1, 2, 3]),
    };
    await a.save({ term: 3, vote: null, commit: 10 }, [entry(11, 3)], snap);
    expect(a.log.firstIndex()).toBe(11);
    expect(a.log.lastIndex()).toBe(11);
    const before = logState(a.log);
    await a.close();
    const b = await open(dir);
    expect(logState(b.log)).toEqual(before);
    expect(Array.from(b.snapshot!.data)).toEqual([1, 2, 3]);
    expect(b.log.initialState().confState.voters).toEqual(["n1", "n2", "n3"]);
    await b.close();
  });

  // memoryLogBytes: the log holds only the newest entries up to it and reads the others back from the WAL; with
  // 0 or 100 bytes almost every entry is read back, so the final states below (read through the log) prove the
  // WAL locations right, conflicts, compactions and installs included. A reopen replays the WAL independently.
  for (const [seed, memoryLogBytes] of [
    [7, undefined],
    [8, 0],
    [9, 100],
    [10, undefined],
    [11, 0],
    [12, 300],
  ] as const) {
    it(`recovers exactly the live state after a random workload with rolls, snapshots and cleanup (seed ${seed}, memoryLogBytes ${memoryLogBytes ?? "default"})`, async () => {
      const dir = fresh(`workload${seed}`);
      const a = await open(dir, { segmentBytes: 1024, keepSegments: seed % 3, memoryLogBytes });
      await a.bootstrap(["n1"]);
      const start = logState(a.log);
      const { ops, after } = await runWorkload(a, seed, 300);
      // Every state read through the log (released entries from the WAL) is the one a log holding everything has.
      expect(after.map(({ firstIndex, lastIndex, entries }) => ({ firstIndex, lastIndex, entries }))).toEqual(modelLogs(start, ops));
      if (memoryLogBytes !== undefined) expect(a.stats.releasedReads).toBeGreaterThan(0);
      else expect(a.stats.releasedReads).toBe(0);
      await a.close();
      const b = await open(dir, { segmentBytes: 1024, memoryLogBytes });
      expect(logState(b.log)).toEqual(after.at(-1));
      // Reopen after more work on the recovered instance: recovery composes.
      const more = await runWorkload(b, seed + 100, 100);
      await b.close();
      const c = await open(dir);
      expect(logState(c.log)).toEqual(more.after.at(-1));
      await c.close();
    });
  }

  it("writes snapshots atomically, compacts the log and removes covered WAL segments, keeping a tail", async () => {
    const dir = fresh("snapshot");
    const walDir = path.join(dir, "wal");
    const a = await open(dir, { segmentBytes: 2048, keepSegments: 2, keepSnapshots: 2 });
    await a.bootstrap(["n1"]);
    let last = 1;
    for (let b = 0; b < 60; b++) {
      await a.save(
        { term: 2, vote: null, commit: last },
        Array.from({ length: 5 }, (_, k) => entry(last + 1 + k, 2, new Uint8Array(40).fill(k))),
        undefined,
      );
      last += 5;
    }
    const segmentsBefore = fs.readdirSync(walDir).length;
    expect(segmentsBefore).toBeGreaterThan(6);
    const snap = snapshotAt(a.log, 250, a.log.initialState().confState, new Uint8Array([42]));
    await a.saveSnapshot(snap);
    expect(a.log.firstIndex()).toBe(251);
    expect(a.snapshot?.metadata.index).toBe(250);
    const segmentsAfter = fs.readdirSync(walDir).length;
    expect(segmentsAfter).toBeLessThan(segmentsBefore);
    expect(fs.readdirSync(path.join(dir, "snap")).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    const state = logState(a.log);
    // Two more snapshots: only the newest two snapshot files remain.
    await a.saveSnapshot(snapshotAt(a.log, 260, a.log.initialState().confState, new Uint8Array([43])));
    await a.saveSnapshot(snapshotAt(a.log, 270, a.log.initialState().confState, new Uint8Array([44])));
    expect(fs.readdirSync(path.join(dir, "snap")).sort()).toEqual([snapshotFileName(2, 260), snapshotFileName(2, 270)]);
    await a.close();

    const b = await open(dir, { segmentBytes: 2048 });
    expect(b.snapshot?.metadata.index).toBe(270);
    // A durable snapshot's bytes live on disk and are read back on demand (for a lagging follower).
    expect(Object.getOwnPropertyDescriptor(b.log.snapshot(), "data")?.get).toBeDefined();
    expect([...b.log.snapshot().data]).toEqual([44]);
    expect([...b.snapshot!.data]).toEqual([44]);
    expect(b.log.firstIndex()).toBe(271);
    expect(b.log.lastIndex()).toBe(state.lastIndex);
    expect(logState(b.log).entries).toEqual(state.entries.slice(20));
    await b.close();
  });

  it("keeps order when saves, a local snapshot and an installed snapshot share group commits", async () => {
    const dir = fresh("mixed");
    const a = await open(dir, { segmentBytes: 2048, keepSegments: 0 });
    await a.bootstrap(["n1"]);
    const pending: Promise<void>[] = [];
    for (let i = 2; i <= 201; i++)
      pending.push(a.save({ term: 2, vote: null, commit: i - 1 }, [entry(i, 2)], undefined));
    await pending[150];
    pending.push(a.saveSnapshot(snapshotAt(a.log, 120, a.log.initialState().confState, new Uint8Array([1]))));
    for (let i = 202; i <= 260; i++) pending.push(a.save(undefined, [entry(i, 2)], undefined));
    const confState = a.log.initialState().confState;
    pending.push(
      a.save({ term: 3, vote: null, commit: 400 }, [entry(401, 3)], {
        metadata: { index: 400, term: 3, confState },
        data: new Uint8Array([4]),
      }),
    );
    for (let i = 402; i <= 420; i++) pending.push(a.save(undefined, [entry(i, 3)], undefined));
    await Promise.all(pending);
    expect(a.stats.fsyncs).toBeLessThan(pending.length);
    expect(a.log.firstIndex()).toBe(401);
    expect(a.log.lastIndex()).toBe(420);
    const live = logState(a.log);
    await a.close();
    const b = await open(dir);
    expect(logState(b.log)).toEqual(live);
    expect(b.snapshot?.metadata.index).toBe(400);
    await b.close();
  });

  it("group-commits concurrent saves: N overlapping saves share fewer fsyncs, in order", async () => {
    const dir = fresh("group");
    const a = await open(dir);
    await a.bootstrap(["n1"]);
    const fsyncsBefore = a.stats.fsyncs;
    const n = 200;
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: n }, (_, k) =>
        a.save({ term: 2, vote: null, commit: 1 }, [entry(2 + k, 2)], undefined).then(() => done.push(k)),
      ),
    );
    const fsyncs = a.stats.fsyncs - fsyncsBefore;
    expect(fsyncs).toBeLessThan(n / 4);
    expect(a.stats.maxSavesPerFsync).toBeGreaterThan(10);
    expect(done).toEqual(Array.from({ length: n }, (_, k) => k)); // resolved in call order
    expect(a.log.lastIndex()).toBe(n + 1);
    await a.close();
    const b = await open(dir);
    expect(b.log.lastIndex()).toBe(n + 1);
    await b.close();
  });
});

describe("segments", () => {
  it("reuses an empty segment left by a crash right after a roll, and still starts it with the hard state", async () => {
    const dir = fresh("emptyseg");
    const a = await open(dir);
    await a.bootstrap(["n1"]);
    await a.save({ term: 4, vote: "n1", commit: 1 }, [entry(2, 4)], undefined);
    await a.close();
    const empty = path.join(dir, "wal", "0000000000000002.wal");
    fs.writeFileSync(empty, "");
    const b = await open(dir);
    await b.save(undefined, [entry(3, 4)], undefined);
    await b.close();
    const records = scanSegment(fs.readFileSync(empty), true).records;
    expect(records.map((r) => r.kind)).toEqual([RecordKind.HardState, RecordKind.Entries]);
    expect(decodeRecord(records[0].kind, records[0].payload)).toMatchObject({
      hardState: { term: 4, vote: "n1", commit: 1 },
    });
    const c = await open(dir);
    expect(c.log.lastIndex()).toBe(3);
    expect(c.hardState).toEqual({ term: 4, vote: "n1", commit: 1 });
    await c.close();
  });
  it("preallocates segments with zeros ahead of the records, and a restart writes after the records, not at the file's end", async () => {
    const dir = fresh("prealloc");
    const segmentBytes = 64 * 1024;
    const a = await open(dir, { segmentBytes });
    await a.bootstrap(["n1"]);
    await a.save({ term: 2, vote: "n1", commit: 1 }, [entry(2, 2, [1, 2, 3])], undefined);
    await a.close();
    const file = path.join(dir, "wal", "0000000000000001.wal");
    const first = fs.readFileSync(file);
    const firstEnd = scanSegment(first, true).validBytes;
    // The whole segment is allocated (the runway is capped at the segment size), zeros after the records.
    expect(first.length).toBe(segmentBytes);
    expect(first.subarray(firstEnd).every((b) => b === 0)).toBe(true);

    const b = await open(dir, { segmentBytes });
    await b.save({ term: 2, vote: "n1", commit: 2 }, [entry(3, 2, [4, 5])], undefined);
    await b.close();
    const second = fs.readFileSync(file);
    expect(second.length).toBe(segmentBytes);
    expect(second.subarray(0, firstEnd)).toEqual(first.subarray(0, firstEnd));
    expect(scanSegment(second, true).validBytes).toBeGreaterThan(firstEnd);

    const c = await open(dir, { segmentBytes });
    expect(c.log.lastIndex()).toBe(3);
    expect(Array.from(c.log.entries(3, 4)[0].data)).toEqual([4, 5]);
    expect(c.hardState).toEqual({ term: 2, vote: "n1", commit: 2 });
    await c.close();
  });
});

describe("data directory", () => {
  it("refuses a second open of a locked directory, naming the live pid, and takes over a dead pid's lock", async () => {
    const dir = fresh("lock");
    const a = await open(dir);
    const err = await open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageLockedError);
    expect((err as StorageLockedError).pid).toBe(process.pid);
    expect((err as Error).message).toContain(String(process.pid));
    await a.close();

    // A lock left by a process that no longer exists (pid far above pid_max) is stale.
    fs.writeFileSync(path.join(dir, "LOCK"), "4194999\n");
    const b = await open(dir);
    expect(fs.readFileSync(path.join(dir, "LOCK"), "utf8").trim()).toBe(String(process.pid));
    await b.close();
    expect(fs.existsSync(path.join(dir, "LOCK"))).toBe(false);

    // A live process other than us: pid 1 always exists.
    fs.writeFileSync(path.join(dir, "LOCK"), "1\n");
    const locked = await open(dir).catch((e: unknown) => e);
    expect(locked).toBeInstanceOf(StorageLockedError);
    expect((locked as Error).message).toContain("process 1");
  });

  it("writes VERSION 1 and refuses unknown versions, naming what is supported", async () => {
    const dir = fresh("version");
    const a = await open(dir);
    await a.close();
    expect(fs.readFileSync(path.join(dir, "VERSION"), "utf8")).toBe("1\n");
    fs.writeFileSync(path.join(dir, "VERSION"), "7\n");
    const err = await open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageVersionError);
    expect((err as Error).message).toMatch(/version "7".*supports version 1/);
    expect(fs.existsSync(path.join(dir, "LOCK"))).toBe(false); // the lock is released on a failed open
  });

  it("refuses a directory with data but no VERSION", async () => {
    const dir = fresh("noversion");
    const a = await open(dir);
    await a.bootstrap(["n1"]);
    await a.close();
    fs.rmSync(path.join(dir, "VERSION"));
    await expect(open(dir)).rejects.toThrow(/VERSION is missing/);
  });
});

describe("snapshots on disk", () => {
  it("recovery and the restore's read of the snapshot read the WAL and the snapshot file asynchronously only", async () => {
    const dir = fresh("async-reads");
    const a = await open(dir, { segmentBytes: 64 * 1024 });
    await a.bootstrap(["n1"]);
    let last = 1;
    const saveBatch = async () => {
      await a.save({ term: 2, vote: null, commit: last }, Array.from({ length: 20 }, (_, k) => entry(last + 1 + k, 2, new Uint8Array(500).fill(k))), undefined);
      last += 20;
    };
    for (let b = 0; b < 10; b++) await saveBatch();
    const data = new Uint8Array(9 << 20).map((_, i) => (i * 2654435761) >>> 24);
    await a.saveSnapshot(snapshotAt(a.log, 150, a.log.initialState().confState, data));
    for (let b = 0; b < 10; b++) await saveBatch();
    const state = logState(a.log);
    await a.close();

    // The real file system, with synchronous reads of WAL segments and snapshot files refused.
    const refuseLarge = (read: (p: string, ...rest: number[]) => Uint8Array) => (p: string, ...rest: number[]) => {
      if (/\.(wal|snap)$/.test(p)) throw new Error(`a synchronous read of ${p}`);
      return read(p, ...rest);
    };
    const asyncOnly: FileSystem = {
      ...nodeFileSystem,
      readFile: refuseLarge(nodeFileSystem.readFile),
      readAt: refuseLarge(nodeFileSystem.readAt as (p: string, ...rest: number[]) => Uint8Array),
    };
    const b = await DurableStorage.open(asyncOnly, dir, { logger: captureLogger(), segmentBytes: 64 * 1024 });
    expect(fs.readdirSync(path.join(dir, "wal")).length).toBeGreaterThan(1);
    expect(logState(b.log)).toEqual(state);
    expect(b.snapshot?.metadata.index).toBe(150);
    expect(Buffer.compare(Buffer.from((await b.readSnapshotData())!), Buffer.from(data))).toBe(0);
    await b.close();
  });

  it("deletes an orphan snapshot (renamed, but its WAL marker never made durable) and keeps the old state", async () => {
    const dir = fresh("orphan");
    const a = await open(dir);
    await a.bootstrap(["n1"]);
    await a.save({ term: 2, vote: null, commit: 3 }, [entry(2, 2), entry(3, 2)], undefined);
    const state = logState(a.log);
    await a.close();
    const orphan = path.join(dir, "snap", snapshotFileName(2, 3));
    fs.copyFileSync(path.join(dir, "snap", snapshotFileName(1, 1)), orphan);
    const logger = captureLogger();
    const b = await open(dir, { logger });
    expect(logState(b.log)).toEqual(state);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(logger.warnings.map((w) => w.msg).join()).toMatch(/no WAL marker records/);
    await b.close();
  });

  it("refuses to start when the snapshot the WAL names is damaged or missing", async () => {
    const dir = fresh("badsnap");
    const a = await open(dir);
    await a.bootstrap(["n1"], new Uint8Array(100).fill(5));
    await a.close();
    const file = path.join(dir, "snap", snapshotFileName(1, 1));
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 3] ^= 0x10;
    fs.writeFileSync(file, bytes);
    const err = await open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageCorruptionError);
    expect((err as StorageCorruptionError).file).toBe(file);
    expect((err as Error).message).toMatch(/checksum mismatch/);
    fs.rmSync(file);
    await expect(open(dir)).rejects.toThrow(/its file is missing/);
  });
});

describe("entries released from memory (memoryLogBytes)", () => {
  it("holds the newest entries only, reads older ones back from their WAL record, and stops on a record damaged since", async () => {
    const dir = fresh("released");
    const a = await open(dir, { memoryLogBytes: 1000 });
    await a.bootstrap(["n1"]);
    const saved: ReturnType<typeof entry>[] = [];
    for (let s = 0; s < 5; s++) {
      const batch = Array.from({ length: 10 }, (_, k) => entry(2 + s * 10 + k, 2, new Uint8Array(100).fill(s * 10 + k)));
      saved.push(...batch);
      await a.save({ term: 2, vote: null, commit: 1 }, batch, undefined);
    }
    const log = a.log as MemoryStorage;
    // Past 1,000 bytes (124 per entry here) the oldest are released down to 500: 4 entries held of 50.
    expect(log.heldBytes()).toBe(4 * 124);
    expect(a.stats.releasedReads).toBe(0);
    const plain = (es: ReturnType<typeof entry>[]) => es.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString("hex")}`);
    expect(plain(log.entries(2, 52))).toEqual(plain(saved));
    expect(a.stats.releasedReads).toBe(5); // one read per record, not per entry
    expect(plain(log.entries(12, 52, 1))).toEqual(plain([saved[10]])); // a byte limit below one entry still gives one
    expect([log.term(2), log.term(51), log.firstIndex(), log.lastIndex()]).toEqual([2, 2, 2, 51]);

    // Damage the first entries record (its last data byte): reading it back is corruption, named by file and offset.
    const segment = path.join(dir, "wal", fs.readdirSync(path.join(dir, "wal"))[0]);
    const bytes = fs.readFileSync(segment);
    const scan = scanSegment(bytes, true);
    const first = scan.records.find((r) => r.kind === RecordKind.Entries)!;
    const at = first.offset + 9 + first.payload.length - 1;
    fs.writeFileSync(segment, Buffer.concat([bytes.subarray(0, at), Buffer.from([bytes[at] ^ 0xff]), bytes.subarray(at + 1)]));
    const err = (() => {
      try {
        log.entries(2, 3);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StorageCorruptionError);
    expect((err as StorageCorruptionError).file).toBe(segment);
    expect((err as StorageCorruptionError).offset).toBe(first.offset);
    expect((err as Error).message).toMatch(/reading back released log entries from 2: checksum mismatch/);
    await a.close();
  });
});

/**
 * The real file system, with the handles of files under snap/ changed by `change` (the other handles as they are).
 * A handle is a class instance: its methods are bound one by one (spreading it would drop them).
 */
function withSnapshotHandles(change: (h: FileHandle) => Partial<FileHandle>): FileSystem {
  const changed: FileSystem = Object.create(nodeFileSystem) as FileSystem;
  changed.open = async (file, mode) => {
    const h = await nodeFileSystem.open(file, mode);
    if (!file.includes(`${path.sep}snap${path.sep}`)) return h;
    return {
      write: (parts, at) => h.write(parts, at),
      sync: () => h.sync(),
      writeAndSync: (parts, at) => h.writeAndSync(parts, at),
      close: () => h.close(),
      ...change(h),
    };
  };
  return changed;
}

/** The real file system, with writes to snapshot files held until `release()` (a slow, huge snapshot file). */
function gatedSnapshotWrites(): { fs: FileSystem; hold: () => void; release: () => void; held: () => number } {
  let open = true;
  let held = 0;
  const waiting: (() => void)[] = [];
  const gate = (): Promise<void> => (open ? Promise.resolve() : new Promise((r) => (held++, waiting.push(r))));
  return {
    fs: withSnapshotHandles((h) => ({ write: async (parts, at) => (await gate(), h.write(parts, at)) })),
    hold: () => (open = false),
    release: () => ((open = true), waiting.splice(0).forEach((r) => r())),
    held: () => held,
  };
}

/** A storage over gatedSnapshotWrites() in `dir`, bootstrapped, with entries 2..10 of term 2 durable. */
async function gatedStorageWithEntries(dir: string) {
  const gate = gatedSnapshotWrites();
  const a = await DurableStorage.open(gate.fs, dir, { logger: captureLogger() });
  await a.bootstrap(["n1"]);
  await a.save(
    { term: 2, vote: null, commit: 10 },
    Array.from({ length: 9 }, (_, k) => entry(k + 2, 2)),
    undefined,
  );
  return { gate, a };
}

describe("a local snapshot's file is written outside the group commit", () => {
  it("saves issued while the file is written are durable first; the marker follows them, and recovery agrees", async () => {
    const dir = fresh("snapfile-aside");
    const { gate, a } = await gatedStorageWithEntries(dir);
    gate.hold();
    let snapshotDone = false;
    const saving = a
      .saveSnapshot(snapshotAt(a.log, 8, a.log.initialState().confState, new Uint8Array(1000).fill(7)))
      .then(() => (snapshotDone = true));
    await waitFor(() => gate.held() > 0);
    // The file is stuck; entries above the snapshot keep becoming durable.
    for (let i = 11; i <= 20; i++) await a.save({ term: 2, vote: null, commit: i - 1 }, [entry(i, 2)], undefined);
    expect(snapshotDone).toBe(false);
    expect(a.log.lastIndex()).toBe(20);
    expect(a.log.firstIndex()).toBe(2); // not compacted before the marker
    gate.release();
    await saving;
    expect(a.log.firstIndex()).toBe(9);
    expect(a.snapshot?.metadata.index).toBe(8);
    const state = logState(a.log);
    await a.close();
    const b = await open(dir);
    expect(logState(b.log)).toEqual(state);
    expect([...b.snapshot!.data]).toEqual(new Array(1000).fill(7));
    await b.close();
  });

  it("a snapshot installed from the leader meanwhile overtakes it: its file is removed and the log is the installed one", async () => {
    const dir = fresh("snapfile-overtaken");
    const { gate, a } = await gatedStorageWithEntries(dir);
    const confState = a.log.initialState().confState;
    gate.hold();
    const saving = a.saveSnapshot(snapshotAt(a.log, 8, confState, new Uint8Array([1])));
    await waitFor(() => gate.held() > 0);
    const installing = a.save({ term: 3, vote: null, commit: 50 }, [], {
      metadata: { index: 50, term: 3, confState },
      data: new Uint8Array([5]),
    });
    gate.release();
    await Promise.all([saving, installing]);
    expect(a.snapshot?.metadata.index).toBe(50);
    expect(fs.readdirSync(path.join(dir, "snap")).sort()).toEqual([snapshotFileName(1, 1), snapshotFileName(3, 50)]);
    const state = logState(a.log);
    await a.close();
    const b = await open(dir);
    expect(logState(b.log)).toEqual(state);
    await b.close();
  });

  it("a failed snapshot file write fails the storage, as a failed WAL write does", async () => {
    const dir = fresh("snapfile-fails");
    const failing = withSnapshotHandles(() => ({ sync: () => Promise.reject(new Error("EIO: injected")) }));
    const a = await DurableStorage.open(nodeFileSystem, dir, { logger: captureLogger() });
    await a.bootstrap(["n1"]);
    await a.save({ term: 2, vote: null, commit: 5 }, [entry(2, 2), entry(3, 2)], undefined);
    await a.close();
    const b = await DurableStorage.open(failing, dir, { logger: captureLogger() });
    await expect(
      b.saveSnapshot(snapshotAt(b.log, 3, b.log.initialState().confState, new Uint8Array([1]))),
    ).rejects.toThrow(/failed to write snapshot 2-3: EIO: injected/);
    await expect(b.save(undefined, [entry(4, 2)], undefined)).rejects.toThrow(/failed earlier: EIO: injected/);
    await b.close();
  });
});

describe("a local snapshot's file handed its bytes a piece at a time (beginSnapshot)", () => {
  const pieceOf = (i: number) => new Uint8Array(3000 + i).fill(i);

  it("is the pieces in order once finished; the log reads them back from the file, before and after a reopen", async () => {
    const dir = fresh("snapfile-pieces");
    const { gate, a } = await gatedStorageWithEntries(dir);
    const metadata = { index: 8, term: 2, confState: a.log.initialState().confState };
    const file = a.beginSnapshot(metadata);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      pieces.push(pieceOf(i));
      file.append(pieces[i]);
      // Turns pass between the pieces, and saves go on meanwhile.
      if (i % 5 === 0) await a.save({ term: 2, vote: null, commit: 10 }, [entry(11 + i / 5, 2)], undefined);
    }
    expect(gate.held()).toBe(0);
    expect(a.log.firstIndex()).toBe(2); // nothing compacted before finish
    await file.finish();
    expect(a.log.firstIndex()).toBe(9);
    const want = Buffer.concat(pieces);
    expect(Buffer.compare(a.log.snapshot().data, want)).toBe(0);
    const state = logState(a.log);
    await a.close();
    const b = await open(dir);
    expect(logState(b.log)).toEqual(state);
    expect(Buffer.compare(b.snapshot!.data, want)).toBe(0);
    await b.close();
  });

  it("an aborted one leaves no file and compacts nothing; a later one at the same index saves", async () => {
    const dir = fresh("snapfile-abort");
    const { a } = await gatedStorageWithEntries(dir);
    const metadata = { index: 8, term: 2, confState: a.log.initialState().confState };
    const first = a.beginSnapshot(metadata);
    first.append(pieceOf(1));
    const aborted = first.abort();
    await a.save({ term: 2, vote: null, commit: 10 }, [entry(11, 2)], undefined);
    await aborted;
    expect(fs.readdirSync(path.join(dir, "snap"))).toEqual([snapshotFileName(1, 1)]);
    expect(a.log.firstIndex()).toBe(2);
    const second = a.beginSnapshot(metadata);
    second.append(pieceOf(2));
    await second.finish();
    expect([...a.log.snapshot().data]).toEqual([...pieceOf(2)]);
    await a.close();
  });

  it("one begun at the same index while an abandoned one is still removing its file saves", async () => {
    const dir = fresh("snapfile-abort-overlap");
    const { gate, a } = await gatedStorageWithEntries(dir);
    const metadata = { index: 8, term: 2, confState: a.log.initialState().confState };
    gate.hold(); // the abandoned writer's header write waits, so its removal comes after the next writer opened
    const first = a.beginSnapshot(metadata);
    first.append(pieceOf(1));
    const aborted = first.abort();
    await waitFor(() => gate.held() > 0);
    const second = a.beginSnapshot(metadata);
    second.append(pieceOf(2));
    const finished = second.finish();
    gate.release();
    await Promise.all([aborted, finished]);
    expect([...a.log.snapshot().data]).toEqual([...pieceOf(2)]);
    expect(fs.readdirSync(path.join(dir, "snap")).sort()).toEqual([snapshotFileName(1, 1), snapshotFileName(2, 8)].sort());
    await a.close();
  });

  it("closing the storage drops a file still being handed its bytes", async () => {
    const dir = fresh("snapfile-close");
    const { a } = await gatedStorageWithEntries(dir);
    const file = a.beginSnapshot({ index: 8, term: 2, confState: a.log.initialState().confState });
    file.append(pieceOf(3));
    await a.close();
    expect(fs.readdirSync(path.join(dir, "snap"))).toEqual([snapshotFileName(1, 1)]); // removed before close resolved
    const b = await open(dir);
    expect(b.snapshot?.metadata.index).toBe(1);
    expect(b.log.lastIndex()).toBe(10);
    await b.close();
  });

  it("closing the storage waits for the removal of a file aborted just before", async () => {
    const dir = fresh("snapfile-abort-close");
    const { gate, a } = await gatedStorageWithEntries(dir);
    gate.hold(); // the aborted writer's header write waits, so its removal is still to come when close is called
    const file = a.beginSnapshot({ index: 8, term: 2, confState: a.log.initialState().confState });
    file.append(pieceOf(4));
    void file.abort(); // as a member's replica does: it does not wait for the removal
    await waitFor(() => gate.held() > 0);
    let closed = false;
    const closing = a.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false);
    gate.release();
    await closing;
    expect(fs.readdirSync(path.join(dir, "snap"))).toEqual([snapshotFileName(1, 1)]); // removed before close resolved
  });

  it("refuses, at once, a snapshot that is not in the log; a failed piece write fails the storage", async () => {
    const dir = fresh("snapfile-piece-fails");
    const a = await DurableStorage.open(nodeFileSystem, dir, { logger: captureLogger() });
    await a.bootstrap(["n1"]);
    await a.save({ term: 2, vote: null, commit: 5 }, [entry(2, 2), entry(3, 2)], undefined);
    const confState = a.log.initialState().confState;
    expect(() => a.beginSnapshot({ index: 9, term: 2, confState })).toThrow(/past the log's last index/);
    expect(() => a.beginSnapshot({ index: 3, term: 1, confState })).toThrow(/differs from the log's term/);
    await a.close();
    let writes = 0;
    const failing = withSnapshotHandles((h) => ({
      write: (parts, at) => (++writes === 3 ? Promise.reject(new Error("ENOSPC: injected")) : h.write(parts, at)),
    }));
    const b = await DurableStorage.open(failing, dir, { logger: captureLogger() });
    const file = b.beginSnapshot({ index: 3, term: 2, confState });
    for (let i = 0; i < 4; i++) file.append(pieceOf(i));
    await expect(file.finish()).rejects.toThrow(/failed to write snapshot 2-3: ENOSPC: injected/);
    expect(writes).toBe(3); // the pieces after the failed one were not written
    await expect(b.save(undefined, [entry(4, 2)], undefined)).rejects.toThrow(/failed earlier: ENOSPC: injected/);
    expect(() => b.beginSnapshot({ index: 3, term: 2, confState })).toThrow(/failed earlier/);
    await b.close();
    expect(fs.readdirSync(path.join(dir, "snap"))).not.toContain(snapshotFileName(2, 3));
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
}

describe("bad input", () => {
  it("rejects bad options, gaps, non-contiguous entries and malformed hard states with typed errors", async () => {
    await expect(DurableStorage.open(nodeFileSystem, fresh("opts"), { segmentBytes: 10 })).rejects.toThrow(
      /segmentBytes must be an integer >= 1024/,
    );
    const file = path.join(fresh("notadir"), "file");
    fs.writeFileSync(file, "x");
    await expect(DurableStorage.open(nodeFileSystem, file)).rejects.toThrow(/exists but is not a directory/);
    const a = await open(fresh("input"));
    await a.bootstrap(["n1"]);
    await expect(a.save(undefined, [entry(5, 1)], undefined)).rejects.toBeInstanceOf(StorageInputError);
    await expect(a.save(undefined, [entry(2, 1), entry(4, 1)], undefined)).rejects.toThrow(/contiguous/);
    await expect(a.save({ term: -1, vote: null, commit: 0 }, [], undefined)).rejects.toThrow(/hard state must be/);
    await expect(
      a.save(undefined, [{ ...entry(2, 1), data: "x" as unknown as Uint8Array }], undefined),
    ).rejects.toThrow(/Uint8Array/);
    await expect(
      a.saveSnapshot({
        metadata: { index: 9, term: 1, confState: a.log.initialState().confState },
        data: new Uint8Array(),
      }),
    ).rejects.toThrow(/past the log's last index/);
    await expect(a.bootstrap(["n1"])).rejects.toThrow(/already holds state/);
    // Rejected saves changed nothing: a valid one still goes through.
    await a.save(undefined, [entry(2, 1)], undefined);
    expect(a.log.lastIndex()).toBe(2);
    await a.close();
    await expect(a.save(undefined, [entry(3, 1)], undefined)).rejects.toBeInstanceOf(StorageFailedError);
  });
});
