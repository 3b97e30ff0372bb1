import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import v8 from "node:v8";
import { IdleCollector, shrinkPackBuffer, type IdleCollectorOptions } from "../../src/server/idle-gc.js";

// Checks are driven by hand (a synchronous test: the collector's own interval cannot fire in between).
describe("IdleCollector", () => {
  it("collects once the watched progress (nearly) stops moving, not while it moves", () => {
    let progress = 0;
    const collected: number[] = [];
    const idle = new IdleCollector(() => progress, { onCollected: (ms) => collected.push(ms) });
    idle.checkIdle();
    expect(collected).toEqual([]); // not armed: nothing to return
    idle.arm();
    for (let i = 0; i < 5; i++) {
      progress += 100; // busy
      idle.checkIdle();
    }
    expect(collected).toEqual([]); // busy all along
    idle.checkIdle();
    expect(collected).toHaveLength(1);
    expect(idle.collections).toBe(1);
    idle.checkIdle();
    expect(collected).toHaveLength(1); // once per arm
    idle.arm();
    idle.stop(); // cancels
    idle.checkIdle();
    expect(idle.collections).toBe(1);
    idle.stop();
  });

  it("after the full collection, takes a young collection at each quiet look until the young generation shrank", () => {
    let progress = 0;
    let youngBytes = 32 << 20;
    const idle = new IdleCollector(() => progress, { youngGenerationBytes: () => youngBytes });
    idle.arm();
    idle.checkIdle();
    expect(idle.collections).toBe(1);
    for (let i = 0; i < 5; i++) idle.checkIdle();
    expect(idle.youngCollections).toBe(5); // V8 keeps the generation while the burst's samples weigh
    progress += 100; // busy
    idle.checkIdle(); // work takes none
    expect(idle.youngCollections).toBe(5);
    idle.checkIdle();
    expect(idle.youngCollections).toBe(6);
    youngBytes = 1 << 20; // V8 shrank it at the next one
    idle.checkIdle();
    expect(idle.youngCollections).toBe(7);
    idle.checkIdle();
    expect(idle.youngCollections).toBe(7); // then stopped until armed again
    expect(idle.collections).toBe(1);
  });

  it("gives up the young collections after 30 quiet looks where the generation does not shrink", () => {
    const idle = new IdleCollector(() => 0, { youngGenerationBytes: () => 32 << 20 });
    idle.arm();
    for (let i = 0; i < 40; i++) idle.checkIdle();
    expect(idle.collections).toBe(1);
    expect(idle.youngCollections).toBe(30);
  });

  it("a few keep-alives per look still count as quiet (connected clients' sessions never stop them)", () => {
    let progress = 0;
    const idle = new IdleCollector(() => progress, { youngGenerationBytes: () => 32 << 20 });
    idle.arm();
    progress += 10;
    idle.checkIdle();
    expect(idle.collections).toBe(1);
    progress += 11;
    idle.checkIdle(); // more than that is work
    expect(idle.youngCollections).toBe(0);
    for (let i = 0; i < 5; i++) {
      progress += 3;
      idle.checkIdle();
    }
    expect(idle.youngCollections).toBe(5);
    idle.stop();
  });

  it("a snapshot while waiting for the young collection asks for a full one again", () => {
    let progress = 0;
    const idle = new IdleCollector(() => progress);
    idle.arm();
    idle.checkIdle();
    progress += 100; // busy
    idle.arm(); // a new burst wrote another snapshot
    idle.checkIdle(); // busy
    idle.checkIdle();
    expect(idle.collections).toBe(2);
    expect(idle.youngCollections).toBe(0);
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
  it("compacts a heap whose live part is up to its bound, and leaves a larger one at the plain collection; past its keys it leaves the heap to V8", () => {
    const how: string[] = [];
    const collect = (opts: IdleCollectorOptions) => {
      const idle = new IdleCollector(() => 0, {
        onCollected: (_ms, { compacted }) => how.push(compacted ? "compacted" : "plain"),
        onLeftToV8: (keys) => how.push(`left to V8 at ${keys} keys`),
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
    expect(how).toEqual(["compacted", "plain", "left to V8 at 500001 keys"]);
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
