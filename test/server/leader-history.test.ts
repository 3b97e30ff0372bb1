import { describe, expect, it } from "vitest";
import { LEADER_HISTORY_LENGTH, LeaderHistory } from "../../src/server/dashboard/leader-history.js";

describe("LeaderHistory", () => {
  it("records each change of leader once, losses included, and keeps the newest", () => {
    const h = new LeaderHistory();
    h.observe(1, null, 10);
    h.observe(2, "n1", 20);
    h.observe(2, "n1", 30); // a role change without a new leader
    h.observe(3, null, 40);
    h.observe(3, "n2", 50);
    expect(h.list()).toEqual([
      { term: 1, leader: null, at: 10 },
      { term: 2, leader: "n1", at: 20 },
      { term: 3, leader: null, at: 40 },
      { term: 3, leader: "n2", at: 50 },
    ]);
    for (let t = 4; t < 4 + 2 * LEADER_HISTORY_LENGTH; t++) h.observe(t, `n${t % 2}`, t * 10);
    expect(h.list()).toHaveLength(LEADER_HISTORY_LENGTH);
    expect(h.list().at(-1)).toEqual({ term: 3 + 2 * LEADER_HISTORY_LENGTH, leader: "n1", at: (3 + 2 * LEADER_HISTORY_LENGTH) * 10 });
  });
});
