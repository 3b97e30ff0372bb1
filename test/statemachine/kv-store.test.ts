// The key store's layout (kv.ts, value-chunks.ts): records as rows of columns, values in chunks that a sweep
// keeps within about 1.25 times the live bytes, and records read earlier that never change.

import { describe, expect, it } from "vitest";
import type { KeyValue } from "../../src/statemachine/commands.js";
import { KvStore } from "../../src/statemachine/kv.js";

const MiB = 1 << 20;

function record(key: string, round: number, length: number, lease = 0): KeyValue {
  const value = new Uint8Array(length).fill((round * 31 + key.length) & 0xff);
  value[0] = round & 0xff;
  return { key, value, createRevision: 1, modRevision: round + 1, version: round + 1, lease };
}

describe("the key store", () => {
  it("keeps its value chunks within 1.25 times the live values plus slack while values are overwritten", () => {
    const store = new KvStore();
    const keys = Array.from({ length: 20_000 }, (_, i) => `k/${i}`);
    for (const key of keys) store.set(record(key, 0, 1000));
    const early = store.get("k/7")!;
    let peak = 0;
    // 200,000 overwrites of random keys (a fixed LCG): 200 MB written; chunks die slowly and unevenly, so few
    // of them are ever wholly dead and only the sweep frees them.
    let seed = 12345;
    for (let n = 1; n <= 200_000; n++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      store.set(record(keys[seed % keys.length], n, 1000));
      if (n % 1000 === 0) peak = Math.max(peak, store.valueChunkBytes);
    }
    expect(store.valueBytes).toBe(20_000 * 1000);
    // The sweep starts past 1.25 times the live bytes plus 4 MiB of slack and empties the sparsest chunk, a few
    // values per write; the chunk being filled adds up to 1 MiB. Without the sweep the chunks peak at 147 MiB
    // here, for 19 live; with the sweep before (rows in order, at twice the live bytes) at 49 MiB.
    expect(peak).toBeLessThanOrEqual(1.25 * store.valueBytes + 4 * MiB + 2 * MiB);
    // A record read before its value was overwritten and its chunk swept keeps its bytes.
    expect(early.value[0]).toBe(0);
    expect(early.value.every((b, i) => i === 0 || b === ((0 * 31 + 3) & 0xff))).toBe(true);
    for (const key of keys) {
      const kv = store.get(key)!;
      const round = kv.modRevision - 1;
      expect(kv.value.length).toBe(1000);
      expect(kv.value[0]).toBe(round & 0xff);
      expect(kv.value[999]).toBe((round * 31 + key.length) & 0xff);
      expect(kv.version).toBe(round + 1);
    }
  });

  it("sweeps chunks whose values were removed, replaced and written again into reused rows, of mixed sizes", () => {
    // Every stored value's owner is listed in its chunk (value-chunks.ts asserts it when a chunk's owners run out
    // with bytes left): rows freed by removes and reused by other keys, values of every size, the large ones in
    // chunks of their own, and empty ones, all while the sweep runs.
    const store = new KvStore();
    const expected = new Map<string, number>();
    let seed = 99;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const sizes = [0, 1, 40, 256, 1000, 5000];
    for (let n = 1; n <= 100_000; n++) {
      const key = `k/${next() % 20_000}`;
      if (next() % 5 === 0) {
        store.remove(key);
        expected.delete(key);
      } else {
        const pick = next() % 200;
        const length = pick === 0 ? 300_000 : sizes[pick % sizes.length]; // one in 200 over a quarter chunk
        store.set(record(key, n, length));
        expected.set(key, length);
      }
      if (n % 5000 === 0)
        expect(store.valueChunkBytes).toBeLessThanOrEqual(1.25 * store.valueBytes + 4 * MiB + 2 * MiB);
    }
    expect(store.size).toBe(expected.size);
    let live = 0;
    for (const [key, length] of expected) {
      const kv = store.get(key)!;
      const round = kv.modRevision - 1;
      expect(kv.value.length).toBe(length);
      if (length > 0)
        expect([kv.value[0], kv.value[length - 1]]).toEqual([
          round & 0xff,
          length === 1 ? round & 0xff : (round * 31 + key.length) & 0xff,
        ]);
      live += length;
    }
    expect(store.valueBytes).toBe(live);
  });

  // Values moved byte by byte (256 B) and through a view (3,000 B: over value-chunks.ts's BYTE_COPY_UP_TO).
  it.each([
    [256, 10_000],
    [3000, 2000],
  ])(
    "an idle pass (tightenValues) packs %i-byte values out of chunks a quarter dead, which the sweep leaves",
    (length, count) => {
      const store = new KvStore();
      const keys = Array.from({ length: count }, (_, i) => `k/${i}`);
      for (const key of keys) store.set(record(key, 0, length));
      // Overwrites (a fixed LCG), as a benchmark leaves them: within the sweep's bound, up to twice the live bytes
      // plus 4 MiB, but well above the live bytes.
      let seed = 777;
      for (let n = 1; n <= 6 * count; n++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        store.set(record(keys[seed % keys.length], n, length));
      }
      const early = store.get("k/3")!;
      const earlyBytes = early.value.slice();
      const live = store.valueBytes;
      expect(live).toBe(count * length);
      const held = store.valueChunkBytes;
      expect(held).toBeGreaterThan(live + 2 * MiB);
      const freed = store.tightenValues();
      expect(freed).toBe(held - store.valueChunkBytes);
      // What is left: chunks at least three quarters live, and the one being filled (at most 1 MiB).
      expect(store.valueChunkBytes).toBeLessThanOrEqual(live / 0.75 + MiB);
      expect(store.valueBytes).toBe(live);
      expect(early.value).toEqual(earlyBytes); // a record read before keeps its bytes
      for (const key of keys) {
        const kv = store.get(key)!;
        const round = kv.modRevision - 1;
        expect(kv.value[0]).toBe(round & 0xff);
        expect(kv.value.length).toBe(length);
        expect(kv.value[length - 1]).toBe((round * 31 + key.length) & 0xff);
      }
      // Within the slack (1 MiB of dead bytes) it is not worth a pass over the rows.
      expect(store.tightenValues()).toBe(0);
    },
  );

  it("drops chunks once their values are removed, values of their own (over a quarter chunk) too", () => {
    const store = new KvStore();
    for (let i = 0; i < 5000; i++) store.set(record(`small/${i}`, 1, 500));
    for (let i = 0; i < 10; i++) store.set(record(`big/${i}`, 1, 400_000));
    expect(store.valueChunkBytes).toBeGreaterThanOrEqual(5000 * 500 + 10 * 400_000);
    for (let i = 0; i < 5000; i++) expect(store.remove(`small/${i}`)!.value.length).toBe(500);
    for (let i = 0; i < 10; i++) store.remove(`big/${i}`);
    expect(store.size).toBe(0);
    expect(store.valueBytes).toBe(0);
    expect(store.valueChunkBytes).toBeLessThanOrEqual(MiB); // the chunk being filled, at most
    // Rows are reused: the store works on after it emptied, empty values included.
    store.set(record("again", 2, 10));
    store.set({ key: "empty", value: new Uint8Array(0), createRevision: 5, modRevision: 5, version: 1, lease: 9 });
    expect(store.get("again")!.value).toEqual(new Uint8Array(10).fill((2 * 31 + 5) & 0xff).fill(2, 0, 1));
    expect(store.get("empty")).toEqual({
      key: "empty",
      value: new Uint8Array(0),
      createRevision: 5,
      modRevision: 5,
      version: 1,
      lease: 9,
    });
    expect([...store.keysWithPrefix("")]).toEqual(["again", "empty"]);
  });

  it("never aliases the caller's bytes", () => {
    const store = new KvStore();
    const kv = record("k", 1, 8);
    const stored = store.set(kv);
    kv.value.fill(0);
    expect(store.get("k")!.value).toEqual(stored.value);
    expect(stored.value[0]).toBe(1);
  });
});
