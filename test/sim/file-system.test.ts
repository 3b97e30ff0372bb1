// The simulated disk: its page-cache rules on their own, then the real DurableStorage over it, crashed at random
// moments of a random workload (and with failing fsyncs): recovery must give exactly what was acknowledged, or
// what the operation in flight may legitimately leave (its records' prefix, or all of it).

import { describe, expect, it } from "vitest";
import { DurableStorage } from "../../src/storage/durable-storage.js";
import { StorageFailedError } from "../../src/storage/errors.js";
import { EventQueue } from "../../sim/event-queue.js";
import { SimFileSystem } from "../../sim/file-system.js";
import { Prng } from "../../sim/prng.js";
import { captureLogger, logState, runWorkload, type LogState } from "../storage/helpers.js";

/** A disk on its own event queue; `run` executes events (and the promise callbacks they release) in order. */
function simDisk(seed: number, latency = () => 0) {
  const queue = new EventQueue<() => void>();
  let now = 0;
  const rng = new Prng(seed);
  const fs = new SimFileSystem(rng.fork(), (at, fn) => queue.push(at, fn), () => now, latency);
  const settle = () => new Promise<void>((r) => setImmediate(r));
  return {
    fs,
    rng,
    /** Runs events until `until` resolves to true or `max` events ran; returns the events run. */
    async run(max: number, stop: () => boolean = () => false): Promise<number> {
      let n = 0;
      await settle();
      while (n < max && !stop()) {
        const next = queue.pop();
        if (!next) break;
        now = next.time;
        next.event();
        n++;
        await settle();
      }
      return n;
    },
  };
}

/** Awaits `p` while running the disk's events. */
async function drive<T>(d: ReturnType<typeof simDisk>, p: Promise<T>): Promise<T> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await d.run(1_000_000, () => settled);
  return p;
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("simulated disk: page-cache rules", () => {
  it("a crash loses unsynced writes (or keeps a prefix, maybe torn) and never loses synced ones", async () => {
    const kept = new Set<string>();
    for (let seed = 1; seed <= 200; seed++) {
      const d = simDisk(seed);
      d.fs.mkdirSync("/d");
      d.fs.syncDirSync("/");
      d.fs.writeFileSync("/d/f", bytes("durable"));
      d.fs.syncDirSync("/d");
      const h = await drive(d, d.fs.open("/d/f", "readWrite"));
      await drive(d, h.write([bytes("-more")], 7));
      expect(text(d.fs.readFile("/d/f"))).toBe("durable-more"); // reads see the cache
      d.fs.crash();
      const after = text(d.fs.readFile("/d/f"));
      expect(after.startsWith("durable")).toBe(true);
      expect("durable-more".startsWith(after.replace(/\0+$/, ""))).toBe(true);
      kept.add(after.length === 7 ? "lost" : after === "durable-more" ? "kept" : "torn");
    }
    expect(kept).toEqual(new Set(["lost", "kept", "torn"]));
  });

  it("a torn write over bytes the file already has keeps whole sectors: new ones up to a boundary, old after", async () => {
    const outcomes = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const d = simDisk(seed);
      d.fs.mkdirSync("/d");
      d.fs.syncDirSync("/");
      d.fs.writeFileSync("/d/f", new Uint8Array(2048).fill(1)); // written and synced: the WAL's preallocated space
      d.fs.syncDirSync("/d");
      const h = await drive(d, d.fs.open("/d/f", "readWrite"));
      await drive(d, h.write([new Uint8Array(1000).fill(2)], 300)); // 300..1300: across the boundaries 512 and 1024
      d.fs.crash();
      const after = d.fs.readFile("/d/f");
      expect(after.length).toBe(2048);
      const newUpTo = 300 + after.subarray(300, 1300).findIndex((b) => b !== 2);
      const end = newUpTo < 300 ? 1300 : newUpTo;
      expect([300, 512, 1024, 1300]).toContain(end); // a sector boundary (or nothing, or all of it) …
      expect(after.subarray(end, 2048).every((b) => b === 1)).toBe(true); // … then the old bytes
      outcomes.add(end);
    }
    expect(outcomes).toEqual(new Set([300, 512, 1024, 1300]));
  });

  it("a directory entry is durable only once its directory is synced; a rename is atomic", async () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 100; seed++) {
      const d = simDisk(seed);
      d.fs.mkdirSync("/d");
      d.fs.syncDirSync("/");
      d.fs.writeFileSync("/d/a.tmp", bytes("x"));
      d.fs.renameSync("/d/a.tmp", "/d/a");
      d.fs.crash();
      const names = d.fs.list("/d").join(",");
      expect(["", "a.tmp", "a"]).toContain(names);
      outcomes.add(names);
      d.fs.writeFileSync("/d/b", bytes("y"));
      d.fs.syncDirSync("/d");
      d.fs.crash();
      expect(d.fs.list("/d")).toContain("b");
    }
    expect(outcomes).toEqual(new Set(["", "a.tmp", "a"]));
  });

  it("a failed fsync drops the unsynced data even though reads returned it", async () => {
    const d = simDisk(7);
    d.fs.mkdirSync("/d");
    d.fs.writeFileSync("/d/f", bytes("old"));
    d.fs.syncDirSync("/d");
    d.fs.syncFailureRate = 1;
    const h = await drive(d, d.fs.open("/d/f", "readWrite"));
    await drive(d, h.write([bytes("new")], 3));
    expect(text(d.fs.readFile("/d/f"))).toBe("oldnew");
    await expect(drive(d, h.sync())).rejects.toThrow(/EIO/);
    expect(text(d.fs.readFile("/d/f"))).toBe("old");
    expect(d.fs.stats.failedSyncs).toBe(1);
  });

  it("a crash drops calls in progress: they never complete", async () => {
    const d = simDisk(3, () => 50);
    d.fs.mkdirSync("/d");
    let done = false;
    void d.fs.open("/d/f", "truncate").then(() => (done = true));
    d.fs.crash();
    await d.run(100);
    expect(done).toBe(false);
  });
});

describe("DurableStorage on the simulated disk", () => {
  async function crashRun(seed: number, syncFailureRate: number): Promise<string> {
    const d = simDisk(seed, () => 0);
    const dir = "/data/n1";
    const open = () => drive(d, DurableStorage.open(d.fs, dir, { logger: captureLogger(), segmentBytes: 1024 }));
    const disk = await open();
    await drive(d, disk.bootstrap(["n1", "n2", "n3"]));
    const boot = logState(disk.log);
    d.fs.latency = () => d.rng.int(0, 5);
    d.fs.syncFailureRate = syncFailureRate;
    const progress: { acked: LogState[]; inFlight: LogState[] } = { acked: [boot], inFlight: [] };
    let failed: unknown;
    const workload = runWorkload(disk, seed, 60, { snapshots: true }, progress);
    workload.catch((e) => (failed = e));
    // Crash after a random number of disk events.
    await d.run(d.rng.int(1, 400), () => failed !== undefined);
    if (failed !== undefined) expect(failed).toBeInstanceOf(StorageFailedError);
    const acked = progress.acked;
    // A failed save must not have reached the disk beyond what its failed fsync dropped.
    const inFlight = failed === undefined ? progress.inFlight : [];
    d.fs.crash();
    d.fs.syncFailureRate = 0;
    const recovered = await open();
    const got = logState(recovered.log);
    // What was acknowledged is there; the operation in flight left nothing, a prefix, or all of it.
    expect([acked.at(-1), ...inFlight]).toContainEqual(got);
    return failed !== undefined ? "failed" : inFlight.length > 0 && !isEqual(got, acked.at(-1)!) ? "in-flight kept" : "acked";
  }

  const isEqual = (a: LogState, b: LogState) => JSON.stringify(a) === JSON.stringify(b);

  it("a crash at a random moment recovers exactly the acknowledged state (or the in-flight operation's records)", async () => {
    const seen = new Set<string>();
    for (let seed = 1; seed <= 60; seed++) seen.add(await crashRun(seed, 0));
    expect(seen).toContain("in-flight kept");
    expect(seen).toContain("acked");
  });

  it("a failed fsync fails that save and every later one, and recovery finds only what was acknowledged", async () => {
    const seen = new Set<string>();
    for (let seed = 100; seed <= 140; seed++) seen.add(await crashRun(seed, 0.05));
    expect(seen).toContain("failed");
  });
});
