// Set checker (Jepsen's "set" workload): clients add unique elements, then one final read returns the set.
//
// With `ok` adds (acknowledged), `info` adds (unknown) and `fail` adds (certainly not applied), and the final
// read as a list (so duplicates are visible):
// - lost:        acknowledged (`ok`) but absent from the read — acknowledged writes must survive;
// - unexpected:  present in the read but never attempted, or whose every attempt definitely failed;
// - duplicated:  present more than once in the read — a set holds each element once;
// - recovered:   `info` adds that turned out applied; `indeterminate`: `info` adds absent (both are fine).
// Elements are compared by canonical JSON. An element attempted several times counts as its best outcome
// (ok > info > fail).

import { CheckerInputError } from "./errors.js";
import { canonicalJson } from "./models.js";

export type AddOutcome = "ok" | "info" | "fail";

export interface SetAdd {
  readonly element: unknown;
  readonly outcome: AddOutcome;
}

export interface SetHistory {
  readonly adds: readonly SetAdd[];
  readonly finalRead: readonly unknown[];
}

export interface SetResult {
  readonly valid: boolean;
  readonly lost: unknown[];
  readonly unexpected: unknown[];
  readonly duplicated: Array<{ readonly element: unknown; readonly count: number }>;
  readonly recovered: unknown[];
  readonly indeterminate: unknown[];
  readonly okCount: number;
}

const RANK: Record<AddOutcome, number> = { fail: 0, info: 1, ok: 2 };

export function checkSet(history: SetHistory): SetResult {
  if (!Array.isArray(history.adds)) throw new CheckerInputError("set", `"adds" must be an array of {element, outcome}`);
  if (!Array.isArray(history.finalRead)) throw new CheckerInputError("set", `"finalRead" must be an array of elements`);

  const attempted = new Map<string, { element: unknown; outcome: AddOutcome }>();
  (history.adds as readonly SetAdd[]).forEach((add: SetAdd, i: number) => {
    const outcome = (add as { outcome?: unknown } | null)?.outcome;
    if (typeof outcome !== "string" || !Object.hasOwn(RANK, outcome)) {
      throw new CheckerInputError(
        "set",
        `adds[${i}] must be {element, outcome: "ok" | "info" | "fail"}, got ${canonicalJson(add)}`,
      );
    }
    const id = canonicalJson(add.element);
    const seen = attempted.get(id);
    if (seen === undefined || RANK[add.outcome] > RANK[seen.outcome])
      attempted.set(id, { element: add.element, outcome: add.outcome });
  });

  const readCounts = new Map<string, { element: unknown; count: number }>();
  for (const element of history.finalRead) {
    const id = canonicalJson(element);
    const seen = readCounts.get(id);
    if (seen === undefined) readCounts.set(id, { element, count: 1 });
    else seen.count++;
  }

  const result = {
    lost: [] as unknown[],
    unexpected: [] as unknown[],
    duplicated: [] as SetResult["duplicated"],
    recovered: [] as unknown[],
    indeterminate: [] as unknown[],
  };
  let okCount = 0;
  for (const [id, { element, outcome }] of attempted) {
    const present = readCounts.has(id);
    if (outcome === "ok") {
      okCount++;
      if (!present) result.lost.push(element);
    } else if (outcome === "info") {
      (present ? result.recovered : result.indeterminate).push(element);
    }
  }
  for (const [id, { element, count }] of readCounts) {
    const attempt = attempted.get(id);
    if (attempt === undefined || attempt.outcome === "fail") result.unexpected.push(element);
    if (count > 1) result.duplicated.push({ element, count });
  }
  return {
    ...result,
    okCount,
    valid: result.lost.length === 0 && result.unexpected.length === 0 && result.duplicated.length === 0,
  };
}
