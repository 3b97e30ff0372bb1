import { describe, expect, it } from "vitest";
import { CompactedError, UnavailableError } from "../../src/raft/errors.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { EntryType, type Entry } from "../../src/raft/types.js";

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
});
