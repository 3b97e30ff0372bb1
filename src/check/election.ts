// Election agreement: observers of one election agree on who led, and no leadership token names two leaders.
//
// Each observer reports, in arrival order, the leaderships it saw: leader, token (the log index at which that
// leader took office; unique and increasing per election) and optionally the proclaimed value. An observer may
// miss leaderships (it only has to see the latest), and may see one leadership several times when its value
// changes (a proclaim keeps the token).
//
// Violations:
// - two-leaders:   one token names two different leaders (across all observers and acknowledged campaigns);
// - out-of-order:  an observer saw a token below one it had already seen (its sequence must be a subsequence
//                  of the global order, which is the order of tokens);
// - not-in-global: when the authoritative global sequence is given (e.g. from the state machine's log), an
//                  observed leadership that is not in it.
// Acknowledged campaign wins (`wins`) are checked like observations for two-leaders.

import { CheckerInputError } from "./errors.js";

export interface Leadership {
  readonly leader: string;
  readonly token: number;
  readonly value?: unknown;
}

export interface ElectionObserver {
  readonly id: string;
  readonly observed: readonly Leadership[];
}

export interface ElectionViolation {
  readonly kind: "two-leaders" | "out-of-order" | "not-in-global";
  readonly observer: string | null;
  readonly leadership: Leadership;
  readonly message: string;
}

export interface ElectionResult {
  readonly valid: boolean;
  readonly violations: ElectionViolation[];
  /** Leaderships by token, in token order: the global order as reconstructed from everything seen. */
  readonly order: Leadership[];
}

function checkLeadership(l: unknown, where: string): asserts l is Leadership {
  const ok =
    l !== null &&
    typeof l === "object" &&
    typeof (l as Leadership).leader === "string" &&
    Number.isSafeInteger((l as Leadership).token);
  if (!ok) throw new CheckerInputError("election", `${where} must be {leader: string, token: integer, value?}`);
}

export function checkElection(input: {
  readonly observers: readonly ElectionObserver[];
  readonly wins?: readonly Leadership[];
  readonly global?: readonly Leadership[];
}): ElectionResult {
  if (!Array.isArray(input.observers)) throw new CheckerInputError("election", `"observers" must be an array`);
  const violations: ElectionViolation[] = [];
  const leaderOf = new Map<number, Leadership>();
  const claim = (l: Leadership, observer: string | null): void => {
    const known = leaderOf.get(l.token);
    if (known === undefined) leaderOf.set(l.token, l);
    else if (known.leader !== l.leader) {
      const by = observer === null ? "an acknowledged campaign" : `observer ${observer}`;
      violations.push({
        kind: "two-leaders",
        observer,
        leadership: l,
        message: `token ${l.token} names ${known.leader} and, by ${by}, ${l.leader}`,
      });
    }
  };

  let globalTokens: Map<number, string> | null = null;
  if (input.global !== undefined) {
    globalTokens = new Map();
    for (const [i, l] of input.global.entries()) {
      checkLeadership(l, `global[${i}]`);
      claim(l, null);
      globalTokens.set(l.token, l.leader);
    }
  }
  for (const [i, l] of (input.wins ?? []).entries()) {
    checkLeadership(l, `wins[${i}]`);
    claim(l, null);
  }
  for (const [o, observer] of input.observers.entries()) {
    if (typeof observer.id !== "string" || !Array.isArray(observer.observed)) {
      throw new CheckerInputError("election", `observers[${o}] must be {id: string, observed: [...]}`);
    }
    let previous = -Infinity;
    for (const [i, l] of observer.observed.entries()) {
      checkLeadership(l, `observers[${o}].observed[${i}]`);
      claim(l, observer.id);
      if (l.token < previous) {
        violations.push({
          kind: "out-of-order",
          observer: observer.id,
          leadership: l,
          message: `observer ${observer.id} saw token ${l.token} after token ${previous}`,
        });
      }
      if (globalTokens !== null && globalTokens.get(l.token) !== l.leader) {
        violations.push({
          kind: "not-in-global",
          observer: observer.id,
          leadership: l,
          message: `observer ${observer.id} saw ${l.leader} with token ${l.token}, which the global order does not contain`,
        });
      }
      previous = Math.max(previous, l.token);
    }
  }
  const order = [...leaderOf.values()].sort((a, b) => a.token - b.token);
  return { valid: violations.length === 0, violations, order };
}
