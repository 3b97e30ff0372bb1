import { describe, expect, it } from "vitest";
import { RaftNode } from "../../src/raft/node.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { EntryType, type Entry } from "../../src/raft/types.js";
import { Disk, recordCount } from "../../sim/disk.js";
import { rawBytes } from "../../sim/entry-data.js";

const entry = (index: number, term: number, v = `v${index}`): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: rawBytes(v),
});

describe("simulated disk", () => {
  it("a torn batch keeps a prefix of its records and never the hard state unless whole", () => {
    const disk = Disk.bootstrapped(MemoryStorage.bootstrap(["n1", "n2", "n3"]));
    const batch = { hardState: { term: 3, vote: null, commit: 3 }, entries: [entry(2, 3), entry(3, 3)] };
    expect(recordCount(batch)).toBe(3);
    disk.write(batch, 2); // both entries, not the hard state
    expect(disk.entries.map((e) => e.index)).toEqual([2, 3]);
    expect(disk.hardState).toEqual({ term: 1, vote: null, commit: 1 });
    disk.write(batch); // the whole batch
    expect(disk.hardState).toEqual({ term: 3, vote: null, commit: 3 });
    expect(disk.maxDurableCommit).toBe(3);
  });

  it("a node restarts from a torn tail that kept a new term's entries but not its hard state", () => {
    const disk = Disk.bootstrapped(MemoryStorage.bootstrap(["n1", "n2", "n3"]));
    disk.write({ hardState: { term: 2, vote: "n2", commit: 1 }, entries: [entry(2, 2)] });
    disk.write({ hardState: { term: 3, vote: null, commit: 3 }, entries: [entry(3, 3), entry(4, 3)] }, 2);
    const node = new RaftNode({ id: "n1", rng: () => 0.5, applied: 1 }, disk.recover());
    expect(node.status().term).toBe(3);
    expect(node.status().lastIndex).toBe(4);
    expect(node.status().commit).toBe(1);
  });

  it("truncates a conflicting suffix and refuses a gap with a clear error", () => {
    const disk = Disk.bootstrapped(MemoryStorage.bootstrap(["n1"]));
    disk.write({ entries: [entry(2, 2), entry(3, 2), entry(4, 2)] });
    disk.write({ entries: [entry(3, 3, "x")] });
    expect(disk.entries.map((e) => `${e.index}/${e.term}`)).toEqual(["2/2", "3/3"]);
    expect(() => disk.write({ entries: [entry(6, 3)] })).toThrow(/gap before entry 6/);
  });

  it("a host snapshot drops entries below the kept tail and recovery starts from it", () => {
    const disk = Disk.bootstrapped(MemoryStorage.bootstrap(["n1"]));
    disk.write({ hardState: { term: 2, vote: "n1", commit: 5 }, entries: [2, 3, 4, 5].map((i) => entry(i, 2)) });
    const live = disk.recover();
    const snap = live.createSnapshot(
      4,
      { voters: ["n1"], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      new Uint8Array(),
    );
    disk.saveHostSnapshot(snap, 4);
    expect(disk.entries.map((e) => e.index)).toEqual([4, 5]);
    const again = disk.recover();
    expect(again.firstIndex()).toBe(5);
    expect(again.lastIndex()).toBe(5);
    expect(again.initialState().hardState.commit).toBe(5);
  });
});
