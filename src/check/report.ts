// Human-readable rendering of a linearizability result, shared by `concord check` and the test suites.

import { formatOperation } from "./history.js";
import type { CheckResult, FailureReport } from "./linearizability.js";

/** How many operations of the linearizable prefix to show before the stuck point. */
const PREFIX_TAIL = 5;

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

export function formatVerdictLine(result: CheckResult, model: string): string {
  const keys = result.partitions.length;
  const failed = result.partitions.filter((p) => p.verdict === "not-linearizable").length;
  const unknown = result.partitions.filter((p) => p.verdict === "unknown").length;
  const detail =
    result.verdict === "not-linearizable"
      ? `${failed} of ${count(keys, "key")} failed`
      : result.verdict === "unknown"
        ? `${unknown} of ${count(keys, "key")} undecided (budget spent)`
        : count(keys, "key");
  return `${result.verdict}: ${model}, ${count(result.operations, "operation")}, ${detail}, ${count(result.steps, "search step")}`;
}

export function formatFailure(failure: FailureReport): string[] {
  const lines: string[] = [];
  if (failure.key !== null) lines.push(`key ${JSON.stringify(failure.key)}`);
  const tail = failure.linearized.slice(-PREFIX_TAIL);
  lines.push(
    `longest linearizable prefix: ${failure.linearized.length} operations${failure.linearized.length > tail.length ? `; the last ${tail.length}:` : ":"}`,
  );
  for (const op of tail) lines.push(`  ${formatOperation(op)}`);
  lines.push(`state after the prefix: ${failure.stateAfter}`);
  const why =
    failure.blockedOutcome === "rejected" ? "illegal in that state" : "legal there, but nothing could follow it";
  lines.push(`stuck: this operation completed but cannot be linearized (${why}):`);
  lines.push(`  ${formatOperation(failure.blocked)}`);
  if (failure.concurrent.length === 0) {
    lines.push("no other operation was pending at that point");
  } else {
    lines.push(`operations concurrent with it (each could have gone next):`);
    for (const c of failure.concurrent) {
      lines.push(
        `  ${formatOperation(c.op)} — ${c.outcome === "rejected" ? "illegal in that state" : "legal, but every continuation failed"}`,
      );
    }
  }
  lines.push(`window: history lines ${failure.window.firstLine}–${failure.window.lastLine}`);
  return lines;
}
