// When a member snapshots (snapshot-policy.ts): the Raft thesis' size rule, and turns among the members, so that
// members applying the same entries do not all snapshot at the same index.

import { describe, expect, it } from "vitest";
import { snapshotDue, type SnapshotThresholds } from "../../src/host/snapshot-policy.js";

const T = { snapshotEntries: 1000, snapshotBytes: 1 << 30 };

/**
 * Three members applying the same entries in batches of `step(i)` indexes, each looking after every batch as the
 * replica does (a look that finds none due moves its looked-at index on). Returns where each started a snapshot.
 */
function simulate(
  t: SnapshotThresholds,
  step: (i: number) => number,
  until: number,
): { rank: number; index: number; from: number }[] {
  const starts: { rank: number; index: number; from: number }[] = [];
  const last = [0, 0, 0];
  const lookedAt = [0, 0, 0];
  for (let index = 0, i = 0; index < until; i++) {
    const from = index;
    index += step(i);
    for (let rank = 0; rank < 3; rank++) {
      const p = {
        appliedIndex: index,
        lastSnapshotIndex: last[rank],
        appliedBytes: index - last[rank],
        lastSnapshotBytes: 0,
        lookedAtIndex: lookedAt[rank],
      };
      if (!snapshotDue(p, t, { rank, members: 3 })) {
        lookedAt[rank] = index;
        continue;
      }
      expect(snapshotDue(p, t, { rank, members: 3 })).toBe(true); // a second look before the start sees the same
      starts.push({ rank, index, from });
      last[rank] = index;
    }
  }
  return starts;
}

describe("snapshotDue", () => {
  it("alone: after snapshotEntries entries once the log since is as large as the last snapshot, or after snapshotBytes", () => {
    const p = {
      appliedIndex: 1500,
      lastSnapshotIndex: 500,
      appliedBytes: 100,
      lastSnapshotBytes: 100,
      lookedAtIndex: 1499,
    };
    expect(snapshotDue(p, T)).toBe(true);
    expect(snapshotDue({ ...p, appliedIndex: 1499 }, T)).toBe(false);
    expect(snapshotDue({ ...p, lastSnapshotBytes: 101 }, T)).toBe(false);
    expect(snapshotDue({ ...p, appliedIndex: 600, appliedBytes: 1 << 30 }, T)).toBe(true);
    expect(snapshotDue({ ...p, appliedIndex: 500 }, T)).toBe(false);
  });

  it("three members applying the same entries take turns: one per span of snapshotEntries, each within two spans of due", () => {
    const starts = simulate(T, () => 7, 20_000);
    const last = [0, 0, 0];
    for (const s of starts) {
      expect(s.index - (last[s.rank] + T.snapshotEntries)).toBeLessThanOrEqual(2 * T.snapshotEntries + 7); // steps of 7
      last[s.rank] = s.index;
    }
    expect(new Set(starts.map((s) => s.rank))).toEqual(new Set([0, 1, 2]));
    const spans = starts.map((s) => Math.floor(s.index / T.snapshotEntries));
    expect(new Set(spans).size).toBe(spans.length); // never two starts in one span
    for (const s of starts) expect(Math.floor(s.index / T.snapshotEntries) % 3).toBe(s.rank);
  });

  it("a batch that jumps over a whole span of the member's still gives it its turn", () => {
    const t = { snapshotEntries: 50, snapshotBytes: 1 << 30 };
    // Rank 1's spans are 50–99, 200–249, …; a batch applied from 40 to 1,064 lands in span 21, rank 0's.
    const p = { appliedIndex: 1064, lastSnapshotIndex: 0, appliedBytes: 1064, lastSnapshotBytes: 0, lookedAtIndex: 40 };
    expect(snapshotDue(p, t, { rank: 1, members: 3 })).toBe(true);
    // Looking only at where it landed (as if it had looked at 1,063) it would have waited two spans more.
    expect(snapshotDue({ ...p, lookedAtIndex: 1063 }, t, { rank: 1, members: 3 })).toBe(false);

    // Batches of 1,024 entries over spans of 50: every member snapshots within a batch of being due.
    const starts = simulate(t, () => 1024, 30_000);
    for (const rank of [0, 1, 2]) {
      const own = starts.filter((s) => s.rank === rank);
      expect(own.length).toBeGreaterThanOrEqual(28);
      for (let i = 1; i < own.length; i++) expect(own[i].index - own[i - 1].index).toBe(1024);
    }
  });

  it("the member's span applied before it was due does not count: it waits for its next", () => {
    // Rank 0 snapshotted at 100 (span 0), so it is due at 1,100. A batch from 900 to 1,110 passed the end of
    // span 0 (rank 0's) and became due in span 1 (rank 1's): starting there would start alongside rank 1.
    const p = {
      appliedIndex: 1110,
      lastSnapshotIndex: 100,
      appliedBytes: 1010,
      lastSnapshotBytes: 0,
      lookedAtIndex: 900,
    };
    expect(snapshotDue(p, T, { rank: 0, members: 3 })).toBe(false);
    expect(snapshotDue({ ...p, appliedIndex: 3005, appliedBytes: 2905 }, T, { rank: 0, members: 3 })).toBe(true); // span 3
    // By the bytes rule the index it became due at is not known: the indexes since the last look count.
    const byBytes = { ...p, appliedIndex: 700, appliedBytes: 1 << 30, lookedAtIndex: 600 };
    expect(snapshotDue(byBytes, T, { rank: 0, members: 3 })).toBe(true);
    expect(snapshotDue({ ...byBytes, appliedIndex: 1700, lookedAtIndex: 1600 }, T, { rank: 0, members: 3 })).toBe(
      false,
    );
  });

  it("uneven batches, some longer than the members' spans together: starts only after due, none missed", () => {
    const t = { snapshotEntries: 100, snapshotBytes: 1 << 30 };
    let seed = 7;
    const steps = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 1 + (seed % 400);
    };
    const starts = simulate(t, steps, 100_000);
    const last = [0, 0, 0];
    for (const s of starts) {
      expect(s.index - last[s.rank]).toBeGreaterThanOrEqual(t.snapshotEntries);
      // It started in the batch that applied one of its own spans' indexes, past the point it was due.
      const firstCounted = Math.max(s.from, last[s.rank] + t.snapshotEntries - 1) + 1;
      let met = false;
      for (let i = firstCounted; i <= s.index && !met; i++) met = Math.floor(i / t.snapshotEntries) % 3 === s.rank;
      expect(met).toBe(true);
      last[s.rank] = s.index;
    }
    for (const rank of [0, 1, 2]) expect(starts.filter((s) => s.rank === rank).length).toBeGreaterThan(100);
  });
});
