import { describe, expect, it } from "vitest";
import { CompactedError, UnavailableError } from "../../src/raft/errors.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { EntryType, entrySize, type Entry } from "../../src/raft/types.js";

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array([index]) });

describe("MemoryStorage", () => {
  it("bootstraps a new cluster at (1,1) with its voters", () => {
    const s = MemoryStorage.bootstrap(["a", "b", "c"]);
    expect(s.firstIndex()).toBe(2);
    expect(s.lastIndex()).toBe(1);
    expect(s.term(1)).toBe(1);
    expect(s.initialState().confState.voters).toEqual(["a", "b", "c"]);
  });

  it("appends, truncates a conflicting suffix, and bounds entries by bytes", () => {
    const s = MemoryStorage.bootstrap(["a"]);
    s.append([ent(2, 1), ent(3, 1), ent(4, 1)]);
    s.append([ent(3, 2)]);
    expect(s.lastIndex()).toBe(3);
    expect(s.term(3)).toBe(2);
    expect(s.entries(2, 4).map((e) => e.term)).toEqual([1, 2]);
    expect(s.entries(2, 4, 1)).toHaveLength(1); // at least one entry even over the byte limit
  });

  it("compacts behind a snapshot and reports compacted and unavailable indices", () => {
    const s = MemoryStorage.bootstrap(["a"]);
    s.append([ent(2, 1), ent(3, 1), ent(4, 2)]);
    s.createSnapshot(3, s.initialState().confState, new Uint8Array([9]));
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.term(3)).toBe(1);
    expect(() => s.term(2)).toThrow(CompactedError);
    expect(() => s.entries(3, 5)).toThrow(CompactedError);
    expect(() => s.entries(4, 6)).toThrow(UnavailableError);
    expect(s.snapshot().metadata).toMatchObject({ index: 3, term: 1 });
  });

  it("refuses to append with a gap", () => {
    const s = MemoryStorage.bootstrap(["a"]);
    expect(() => s.append([ent(5, 1)])).toThrow(/missing log entry/);
  });

  it("released entries read back through the reader, with their terms kept, across appends, conflicts and compactions", () => {
    // The same random operations on a log that releases entries and on one that holds everything; the reader is
    // the durable copy (here: every entry ever appended, by index and term).
    for (let seed = 1; seed <= 30; seed++) {
      let x = seed;
      const rnd = (n: number): number => {
        x = (x * 1103515245 + 12345) >>> 0;
        return (x >>> 8) % n;
      };
      const durable = new Map<string, Entry>();
      const held = MemoryStorage.bootstrap(["a"]);
      const releasing = MemoryStorage.bootstrap(["a"]);
      let reads = 0;
      const read = (lo: number, hi: number, maxBytes: number): Entry[] => {
        reads++;
        const out: Entry[] = [];
        let bytes = 0;
        for (let i = lo; i < hi; i++) {
          const e = durable.get(`${i}/${releasing.term(i)}`)!;
          bytes += entrySize(e);
          if (out.length > 0 && bytes > maxBytes) break;
          out.push(e);
        }
        return out;
      };
      let term = 1;
      for (let step = 0; step < 300; step++) {
        const op = rnd(10);
        const last = held.lastIndex();
        if (op < 5 || last < held.firstIndex()) {
          const from = op === 0 && last >= held.firstIndex() ? held.firstIndex() + rnd(last - held.firstIndex() + 1) : last + 1;
          if (from <= last) term++;
          const batch = Array.from({ length: 1 + rnd(4) }, (_, k) => ent(from + k, term));
          for (const e of batch) durable.set(`${e.index}/${e.term}`, e);
          held.append(batch);
          releasing.append(batch);
        } else if (op < 8) {
          releasing.releaseEntries(rnd(3) * 4 * (entrySize(ent(1, 1)) + 0), read);
        } else if (op === 8) {
          const at = held.firstIndex() + rnd(last - held.firstIndex() + 1);
          for (const s of [held, releasing]) {
            s.createSnapshot(at, s.initialState().confState, new Uint8Array());
            s.compact(at);
          }
        } else {
          // The reader is not asked for entries below the first index, nor above the last.
          expect(() => releasing.entries(releasing.firstIndex() - 1, releasing.lastIndex() + 1)).toThrow(CompactedError);
          expect(() => releasing.entries(releasing.firstIndex(), releasing.lastIndex() + 2)).toThrow(UnavailableError);
        }
        expect([releasing.firstIndex(), releasing.lastIndex()]).toEqual([held.firstIndex(), held.lastIndex()]);
        for (let i = held.firstIndex() - 1; i <= held.lastIndex(); i++) expect(releasing.term(i)).toBe(held.term(i));
        const lo = held.firstIndex();
        const hi = held.lastIndex() + 1;
        if (lo < hi) {
          expect(releasing.entries(lo, hi)).toEqual(held.entries(lo, hi));
          const maxBytes = rnd(5) * entrySize(ent(1, 1));
          const from = lo + rnd(hi - lo);
          expect(releasing.entries(from, hi, maxBytes)).toEqual(held.entries(from, hi, maxBytes));
        }
        let heldBytes = 0;
        for (let i = releasing.firstIndex(); i <= releasing.lastIndex(); i++) heldBytes += entrySize(held.entries(i, i + 1)[0]);
        expect(releasing.heldBytes()).toBeLessThanOrEqual(heldBytes);
        expect(held.heldBytes()).toBe(heldBytes);
      }
      expect(reads, `seed ${seed}: released entries were read back`).toBeGreaterThan(0);
    }
  });

  it("releaseEntries(keepBytes) keeps the newest entries up to keepBytes", () => {
    const s = MemoryStorage.bootstrap(["a"]);
    s.append([ent(2, 1), ent(3, 1), ent(4, 2), ent(5, 2)]);
    const size = entrySize(ent(2, 1));
    expect(s.heldBytes()).toBe(4 * size);
    s.releaseEntries(2 * size, () => [ent(2, 1), ent(3, 1)]);
    expect(s.heldBytes()).toBe(2 * size);
    expect(s.firstIndex()).toBe(2);
    expect([s.term(2), s.term(3), s.term(4)]).toEqual([1, 1, 2]);
    expect(s.entries(2, 6).map((e) => e.index)).toEqual([2, 3, 4, 5]);
    s.releaseEntries(0, () => []);
    expect(s.heldBytes()).toBe(0);
    expect(s.lastIndex()).toBe(5);
  });
});
