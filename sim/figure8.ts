// Raft's Figure 8 as a scripted scenario on five real RaftNodes: an entry X from term 2 reaches a majority only
// after a later term (3) wrote a different entry Y at the same index; counting replicas of X in term 4 must NOT
// commit it, because the term-3 leader can still win term 5 and overwrite X with Y.
// With a correct core the run is clean and Y ends up committed; with the Figure-8 rule removed the invariant
// checker reports the overwritten committed entry.

import type { Host } from "./cluster.js";
import { Scenario } from "./scenario.js";

export interface Figure8Outcome {
  /** The index where X and Y compete. */
  index: number;
  /** What each live node applied at `index` at the end ("X", "Y" or "-"). */
  appliedAt: Record<string, string>;
  lines: string[];
}

export function runFigure8(onNodeCreated?: (h: Host) => void): Figure8Outcome {
  const ids = ["n1", "n2", "n3", "n4", "n5"];
  // No spontaneous elections; no leases that would ignore the scripted campaigns; one entry per append, so an
  // old entry and the new leader's no-op travel in different messages.
  const s = new Scenario(
    ids,
    { electionTicks: 1000, heartbeatTicks: 1, checkQuorum: false, maxBatchEntries: 1 },
    onNodeCreated,
  );
  const step = (what: string): void => {
    s.lines.push(`-- ${what}`);
  };
  const applied = new Map<string, Map<number, string>>();

  step("n1 leads term 2 and commits 'a' everywhere");
  s.campaign("n1");
  s.run(3);
  s.propose("n1", "a");
  s.run(3);

  step("X reaches only n1 and n2");
  const isolate = new Set(["n3", "n4", "n5"]);
  s.dropIf((m) => (m.from === "n1" && isolate.has(m.to)) || (m.to === "n1" && isolate.has(m.from)));
  const index = s.propose("n1", "X");
  s.run(3);
  s.cluster.crash(s.host("n1"));
  s.dropIf(null);

  step("n5 wins term 3 (n3, n4 vote) and appends its no-op Y at the same index, which reaches nobody");
  s.dropIf((m) => m.from === "n5" && m.type === "app");
  s.campaign("n5");
  s.run(3);
  s.cluster.crash(s.host("n5"));
  s.dropIf(null);

  step("n1 restarts and wins term 4; X reaches n3 and n4, the term-4 no-op only n2");
  s.cluster.restart(s.host("n1"));
  // Appends carrying the term-4 no-op reach n2; elsewhere only those the receiver will reject (so that the
  // leader backs off and sends X alone).
  s.dropIf(
    (m) =>
      m.from === "n1" &&
      m.type === "app" &&
      m.to !== "n2" &&
      m.entries.some((e) => e.term >= 4) &&
      s.host(m.to).storage.lastIndex() >= m.index,
  );
  s.campaign("n1");
  s.run(2);
  s.campaign("n1"); // the first pre-vote round only taught n1 the current term
  s.run(5);
  s.cluster.crash(s.host("n1"));
  s.dropIf(null);

  step("n5 restarts and wins term 5 with n3 and n4 (n2 holds the term-4 no-op and refuses): Y overwrites X");
  s.cluster.restart(s.host("n5"));
  s.campaign("n5");
  s.run(2);
  s.campaign("n5");
  s.run(10);
  s.cluster.restart(s.host("n1"));
  s.run(10);

  for (const id of ids) applied.set(id, new Map());
  const appliedAt: Record<string, string> = {};
  for (const id of ids) {
    const h = s.host(id);
    appliedAt[id] = h.up && h.sm.appliedIndex >= index ? (s.holds(id, "X") ? "X" : "Y") : "-";
  }
  return { index, appliedAt, lines: s.lines };
}
