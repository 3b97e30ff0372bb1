// The leader's automatic compaction policy (src/host/auto-compaction.ts), as etcd's revision and periodic modes.

import { describe, expect, it } from "vitest";
import { AutoCompactor } from "../../src/host/auto-compaction.js";

describe("auto-compaction policy", () => {
  it("revision mode keeps the last N revisions, compacting in steps of N/10, at most once a second", () => {
    const c = new AutoCompactor({ mode: "revision", retention: 100 });
    expect(c.due(0, 100, 0)).toBeUndefined(); // nothing beyond the 100 kept
    expect(c.due(0, 109, 0)).toBeUndefined(); // 9 beyond: less than a step of 10
    expect(c.due(0, 110, 0)).toBe(10);
    expect(c.due(500, 200, 10)).toBeUndefined(); // within a second of the last proposal
    expect(c.due(1000, 200, 10)).toBe(100);
    expect(c.due(5000, 205, 100)).toBeUndefined();
  });

  it("periodic mode compacts to the newest revision sampled at least the retention ago", () => {
    const c = new AutoCompactor({ mode: "periodic", retentionMs: 60_000 });
    // Samples every 6 s (a tenth of the retention); revision grows by 10 a second.
    const at = (s: number) => c.due(s * 1000, s * 10, 0);
    for (let s = 0; s < 60; s++) expect(at(s)).toBeUndefined();
    expect(at(60)).toBeUndefined(); // the sample taken at 0 s is now 60 s old: revision 0, nothing to compact
    expect(at(66)).toBe(60); // the one at 6 s
    c.restart(); // a new leader samples afresh
    expect(c.due(70_000, 700, 60)).toBeUndefined();
    expect(c.due(129_000, 1290, 60)).toBeUndefined();
    expect(c.due(130_000, 1300, 60)).toBe(700);
  });
});
