// The client histories, checked after the run with the project's own checkers (src/check):
// - KV: the JSONL-shaped history of put/get/cas, paired and checked for linearizability against the register
//   model, one partition per key (P-compositionality). The search has a step budget, not a time budget, so the
//   verdict is the same on every machine; a history too hard for the budget is "unknown" and counted, not failed.
// - Locks: every plain lock's acknowledged grants and releases and its fenced resource's writes through
//   checkLockSafety (unique tokens, real-time token order, mutual exclusion as acknowledged, fencing).
// - Elections: acknowledged wins, the committed order and every node's observe stream through checkElection
//   (no token names two leaders; each stream is in token order and only holds committed leaderships).

import {
  checkElection,
  checkLinearizability,
  checkLockSafety,
  checkWatchOrder,
  eventsFromObjects,
  formatFailure,
  pairOperations,
  registerModel,
} from "../src/check/index.js";
import type { CoordinationClients } from "./coordination-clients.js";
import type { FencedResource } from "./fenced-resource.js";
import { InvariantViolation } from "./invariants.js";
import type { HistoryLine } from "./kv-clients.js";
import type { WatchClients } from "./watch-clients.js";

/** Search steps per seed: far above what a healthy seed's history needs. */
const MAX_SEARCH_STEPS = 2_000_000;

export interface KvVerdict {
  operations: number;
  linearizableKeys: number;
  unknownKeys: number;
}

export function checkKvHistory(history: readonly HistoryLine[]): KvVerdict {
  const paired = pairOperations(eventsFromObjects(history));
  const result = checkLinearizability(paired, { model: registerModel, budget: { maxSteps: MAX_SEARCH_STEPS } });
  if (result.verdict === "not-linearizable") {
    const lines = formatFailure(result.failure!);
    throw new InvariantViolation("linearizability", lines.slice(0, 12).join("\n    "));
  }
  return {
    operations: result.operations,
    linearizableKeys: result.partitions.filter((p) => p.verdict === "linearizable").length,
    unknownKeys: result.partitions.filter((p) => p.verdict === "unknown").length,
  };
}

export function checkLockHistories(resources: Iterable<FencedResource>): void {
  for (const r of resources) {
    const verdict = checkLockSafety({ grants: r.grants, writes: r.writes });
    if (!verdict.valid) {
      throw new InvariantViolation(
        "lock safety",
        `${r.lock}: ${verdict.violations
          .slice(0, 3)
          .map((v) => v.message)
          .join("; ")}`,
      );
    }
  }
}

export function checkElectionHistories(clients: CoordinationClients): void {
  for (const e of clients.electionHistories()) {
    const verdict = checkElection({ observers: e.observers, wins: e.wins, global: e.global });
    if (!verdict.valid) {
      throw new InvariantViolation(
        "election agreement",
        `${e.name}: ${verdict.violations
          .slice(0, 3)
          .map((v) => v.message)
          .join("; ")}`,
      );
    }
  }
}

/** Every watch stream against the committed changes: in order, once, nothing uncommitted, no gaps. */
export function checkWatchHistories(watches: WatchClients): void {
  const verdict = checkWatchOrder({ committed: watches.changes, watchers: watches.watchers });
  if (!verdict.valid) {
    throw new InvariantViolation(
      "watch order",
      verdict.violations
        .slice(0, 3)
        .map((v) => v.message)
        .join("; "),
    );
  }
}
