import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import v8 from "node:v8";
import { IdleCollector, shrinkPackBuffer, type IdleCollectorOptions } from "../../src/server/idle-gc.js";

// Looks are driven by hand (a synchronous test: the collector's own interval cannot fire in between).
// A look every 100 ms; the full collection after a quiet second (10 looks) by default.
describe("IdleCollector", () => {
  const looks = (idle: IdleCollector, n: number, step: () => void = () => {}) => {
    for (let i = 0; i < n; i++) {
      step();
      idle.checkIdle();
    }
  };

  it("collects once the watched progress (nearly) stops moving for a second, not while it moves", () => {
    let progress = 0;
    const collected: number[] = [];
    const idle = new IdleCollector(() => progress, { onCollected: (ms) => collected.push(ms), youngGenerationBytes: () => 32 << 20 });
    idle.checkIdle();
    expect(collected).toEqual([]); // not armed: nothing to return
    idle.arm();
    looks(idle, 30, () => (progress += 100)); // busy
    expect(collected).toEqual([]);
    expect(idle.youngCollections).toBe(0); // none while busy either
    looks(idle, 9);
    expect(collected).toEqual([]); // quiet 0.9 s
    idle.checkIdle();
    expect(collected).toHaveLength(1); // quiet 1 s
    looks(idle, 10);
    expect(idle.collections).toBe(1); // once per arm
    idle.arm();
    idle.stop(); // cancels
    looks(idle, 20);
    expect(idle.collections).toBe(1);
  });

  it("work spread thin still restarts the quiet second: at most 10 operations in it", () => {
    let progress = 0;
    const idle = new IdleCollector(() => progress, { youngGenerationBytes: () => 32 << 20 });
    idle.arm();
    looks(idle, 50, () => (progress += 3)); // 30 per second: each look quiet, the seconds not
    expect(idle.collections).toBe(0);
    looks(idle, 20, () => (progress += 1)); // 10 in a second: a few clients' keep-alives are quiet
    expect(idle.collections).toBe(1);
    idle.stop();
  });

  it("takes a young collection at each quiet look, from the first, until the young generation shrank", () => {
    let progress = 0;
    let youngBytes = 32 << 20;
    const idle = new IdleCollector(() => progress, { youngGenerationBytes: () => youngBytes });
    idle.arm();
    looks(idle, 5);
    expect(idle.youngCollections).toBe(5); // before the full collection: V8 keeps the generation meanwhile
    expect(idle.collections).toBe(0);
    progress += 100; // busy
    idle.checkIdle(); // takes none
    expect(idle.youngCollections).toBe(5);
    looks(idle, 10);
    expect(idle.collections).toBe(1);
    expect(idle.youngCollections).toBe(15);
    let shrink = true;
    const idle2 = new IdleCollector(() => progress, {
      // V8 shrinks the generation at the collection taken between the two reads
      youngGenerationBytes: () => (shrink ? ((shrink = false), youngBytes) : (youngBytes = 1 << 20)),
    });
    idle.stop();
    idle2.arm();
    idle2.checkIdle();
    expect(idle2.youngCollections).toBe(1);
    looks(idle2, 10);
    expect(idle2.youngCollections).toBe(1); // done: only the full collection was left
    expect(idle2.collections).toBe(1);
    idle2.checkIdle();
    expect(idle2.collections).toBe(1); // then stopped until armed again
  });

  it("gives up the young collections after 30 where the generation does not shrink, and after the full collection tries 30 more", () => {
    let progress = 0;
    const idle = new IdleCollector(() => progress, { youngGenerationBytes: () => 32 << 20 });
    idle.arm();
    looks(idle, 40, () => (progress += 3)); // light work: quiet looks, never a quiet second
    expect(idle.youngCollections).toBe(30);
    expect(idle.collections).toBe(0);
    looks(idle, 10);
    expect(idle.collections).toBe(1);
    looks(idle, 40);
    expect(idle.youngCollections).toBe(60);
    idle.stop();
  });

  it("a snapshot while waiting asks for a full collection again", () => {
    let progress = 0;
    const idle = new IdleCollector(() => progress, { youngGenerationBytes: () => 32 << 20 });
    idle.arm();
    looks(idle, 10);
    expect(idle.collections).toBe(1);
    progress += 100; // busy
    idle.arm(); // a new burst wrote another snapshot
    idle.checkIdle(); // busy
    looks(idle, 10);
    expect(idle.collections).toBe(2);
    idle.stop();
  });

  it("a burst of work arms it with no snapshot, once per burstOps of busy seconds' progress; a trickle does not", () => {
    let progress = 0;
    const idle = new IdleCollector(() => progress, { burstOps: 1000, youngGenerationBytes: () => 32 << 20 });
    for (let i = 0; i < 100; i++) {
      progress += 49; // under a twentieth of a burst in each second: a trickle
      idle.checkBurst();
    }
    looks(idle, 20);
    expect(idle.collections).toBe(0); // 4,900 in all, never armed
    progress += 999;
    idle.checkBurst();
    looks(idle, 20);
    expect(idle.collections).toBe(0); // a busy second, short of a burst
    progress += 50;
    idle.checkBurst(); // busy again: 1,049 since the last arm (none yet)
    looks(idle, 20);
    expect(idle.collections).toBe(1);
    idle.checkBurst();
    looks(idle, 20);
    expect(idle.collections).toBe(1); // no progress since: not armed again
    progress += 600;
    idle.checkBurst();
    idle.arm(); // a snapshot: the next burst counts from here
    looks(idle, 20);
    expect(idle.collections).toBe(2);
    progress += 999;
    idle.checkBurst();
    looks(idle, 20);
    expect(idle.collections).toBe(2);
    progress += 50;
    idle.checkBurst();
    looks(idle, 20);
    expect(idle.collections).toBe(3);
    idle.stop();
  });
});

describe("IdleCollector's young collections, in this process's V8", () => {
  it("return a young generation grown by a burst within seconds of going quiet (V8 alone keeps it longer)", async () => {
    const youngBytes = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space")!.space_size;
    const burst = () => {
      const kept: object[] = [];
      for (let i = 0; i < 3_000_000; i++) {
        const o = { i, s: `x${i}` };
        if (i % 30 === 0) kept.push(o);
      }
      return kept.length;
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    burst();
    const grown = youngBytes();
    expect(grown).toBeGreaterThanOrEqual(8 << 20); // the burst grew it (16-32 MiB)
    // Quiet for 2.5 s without the collector: V8 keeps it (its allocation rate still counts the burst).
    await sleep(2500);
    expect(youngBytes()).toBe(grown);
    // With it: the full collection at the first quiet look, then young ones every 100 ms until V8 shrinks it.
    const idle = new IdleCollector(() => 0, { idleMs: 100 });
    idle.arm();
    const t0 = performance.now();
    while (youngBytes() >= grown && performance.now() - t0 < 5000) await sleep(50);
    idle.stop();
    expect(idle.collections).toBe(1);
    expect(youngBytes()).toBeLessThan(grown);
    expect(idle.youngCollections).toBeLessThan(30);
  });
});

describe("IdleCollector's full collection", () => {
  it("compacts a heap whose live part is up to its bound, and leaves a larger one at the plain collection; past its keys it leaves the heap (and the pack) to V8", () => {
    const how: string[] = [];
    const collect = (opts: IdleCollectorOptions) => {
      const idle = new IdleCollector(() => 0, {
        pack: () => {
          how.push("pack");
          return 7;
        },
        onCollected: (_ms, { compacted, packedBytes }) => how.push(`${compacted ? "compacted" : "plain"}, ${packedBytes} packed`),
        onLeftToV8: (keys) => how.push(`left to V8 at ${keys} keys`),
        idleMs: 100, // at the first quiet look
        ...opts,
      });
      idle.arm();
      idle.checkIdle();
      idle.stop();
      return idle.collections;
    };
    expect(collect({ compactUpToHeapBytes: Number.MAX_SAFE_INTEGER, keys: () => 500_000 })).toBe(1);
    expect(collect({ compactUpToHeapBytes: 0 })).toBe(1);
    expect(collect({ keys: () => 500_001 })).toBe(0);
    // The pack runs at the first quiet look (here the collection's too), and only where the collection is taken.
    expect(how).toEqual(["pack", "compacted, 7 packed", "pack", "plain, 7 packed", "left to V8 at 500001 keys"]);
  });
});

describe("IdleCollector's full collection, in this process's V8", () => {
  it("returns the pages a burst's garbage emptied to the OS (Node 22 and later pool them until a memory-reducing collection)", async () => {
    const rss = () => process.memoryUsage.rss();
    const before = rss();
    let burst: { i: number; s: string; a: number[] }[] | null = [];
    for (let i = 0; i < 1_500_000; i++) burst.push({ i, s: `x${i}`, a: [i] });
    const kept = burst.filter((_, i) => i % 20 === 0);
    burst = null;
    const grown = rss();
    expect(grown - before).toBeGreaterThan(100 << 20);
    const idle = new IdleCollector(() => 0, { idleMs: 100, compactUpToHeapBytes: Number.MAX_SAFE_INTEGER });
    idle.arm();
    idle.checkIdle();
    idle.stop();
    expect(idle.collections).toBe(1);
    await new Promise((r) => setTimeout(r, 300)); // where V8 sweeps on helper threads (not members: MEMBER_NODE_FLAGS)
    // Measured (MiB, before / grown / after): Node 20 55 / 305 / 97; Node 24 63 / 306 / 73, and with the
    // compacting collection in its place 103 / 326 / 325 (its pages stay pooled until V8's memory reducer, 8 s on).
    expect(grown - rss()).toBeGreaterThan(0.5 * (grown - before));
    expect(kept.length).toBe(75_000);
  });
});

describe("shrinkPackBuffer", () => {
  it("lets msgpackr's scratch buffer, grown by one large message, go (it is shared by every Packr)", () => {
    const mine = new Packr({ useRecords: false });
    mine.pack(new Uint8Array(5 << 20));
    expect(mine.pack({ small: 1 }).buffer.byteLength).toBeGreaterThan(5 << 20); // what costs members 8–12 MiB
    shrinkPackBuffer();
    const after = mine.pack({ small: 1 });
    expect(after.buffer.byteLength).toBeLessThanOrEqual(8192);
    expect(mine.unpack(after)).toEqual({ small: 1 });
  });
});
