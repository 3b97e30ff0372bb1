import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
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

  it("collects the young generation once quiet for six seconds after the full collection", () => {
    let progress = 0;
    const idle = new IdleCollector(() => progress);
    idle.arm();
    idle.checkIdle();
    expect(idle.collections).toBe(1);
    for (let i = 0; i < 5; i++) idle.checkIdle();
    expect(idle.youngCollections).toBe(0); // quiet 5 s
    progress += 100; // busy
    idle.checkIdle(); // work restarts the wait
    for (let i = 0; i < 5; i++) idle.checkIdle();
    expect(idle.youngCollections).toBe(0);
    idle.checkIdle();
    expect(idle.youngCollections).toBe(1); // quiet 6 s
    idle.checkIdle();
    expect(idle.youngCollections).toBe(1); // then stopped until armed again
    expect(idle.collections).toBe(1);
  });

  it("a few keep-alives per second still count as quiet (connected clients' sessions never stop them)", () => {
    let progress = 0;
    const idle = new IdleCollector(() => progress);
    idle.arm();
    progress += 10;
    idle.checkIdle();
    expect(idle.collections).toBe(1);
    progress += 11;
    idle.checkIdle(); // more than that is work
    for (let i = 0; i < 5; i++) {
      progress += 3;
      idle.checkIdle();
    }
    expect(idle.youngCollections).toBe(0);
    progress += 3;
    idle.checkIdle();
    expect(idle.youngCollections).toBe(1);
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

describe("IdleCollector's full collection", () => {
  it("compacts (twice) a heap up to its bound and collects a larger one once; past its keys it leaves the heap to V8", () => {
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
