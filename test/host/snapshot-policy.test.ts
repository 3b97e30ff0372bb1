// When a member snapshots (snapshot-policy.ts): the Raft thesis' size rule, and turns among the members, so that
// members applying the same entries do not all snapshot at the same index.

import { describe, expect, it } from "vitest";
import { snapshotDue } from "../../src/host/snapshot-policy.js";

const T = { snapshotEntries: 1000, snapshotBytes: 1 << 30 };

describe("snapshotDue", () => {
  it("alone: after snapshotEntries entries once the log since is as large as the last snapshot, or after snapshotBytes", () => {
    const p = { appliedIndex: 1500, lastSnapshotIndex: 500, appliedBytes: 100, lastSnapshotBytes: 100 };
    expect(snapshotDue(p, T)).toBe(true);
    expect(snapshotDue({ ...p, appliedIndex: 1499 }, T)).toBe(false);
    expect(snapshotDue({ ...p, lastSnapshotBytes: 101 }, T)).toBe(false);
    expect(snapshotDue({ ...p, appliedIndex: 600, appliedBytes: 1 << 30 }, T)).toBe(true);
    expect(snapshotDue({ ...p, appliedIndex: 500 }, T)).toBe(false);
  });

  it("three members applying the same entries take turns: one per span of snapshotEntries, each within two spans of due", () => {
    const starts: { rank: number; index: number }[] = [];
    const last = [0, 0, 0];
    for (let index = 1; index <= 20_000; index += 7) {
      for (let rank = 0; rank < 3; rank++) {
        const p = {
          appliedIndex: index,
          lastSnapshotIndex: last[rank],
          appliedBytes: index - last[rank],
          lastSnapshotBytes: 0,
        };
        if (!snapshotDue(p, T, { rank, members: 3 })) continue;
        const dueSince = last[rank] + T.snapshotEntries;
        expect(index - dueSince).toBeLessThanOrEqual(2 * T.snapshotEntries + 7); // the loop steps by 7
        starts.push({ rank, index });
        last[rank] = index;
      }
    }
    expect(new Set(starts.map((s) => s.rank))).toEqual(new Set([0, 1, 2]));
    const spans = starts.map((s) => Math.floor(s.index / T.snapshotEntries));
    expect(new Set(spans).size).toBe(spans.length); // never two starts in one span
    for (const s of starts) expect(Math.floor(s.index / T.snapshotEntries) % 3).toBe(s.rank);
  });
});
