// Linearizability checking: Wing & Gong's search with Lowe's memoisation, arranged as Porcupine does it.
//
// - P-compositionality: a history is linearizable iff each key's sub-history is, so keys are checked apart.
// - Each operation contributes a call entry (at its invoke) and, when it completed `ok`, a return entry (at its
//   completion), threaded in real-time order through a doubly linked list. Walking the list from its head, the
//   calls met before the first return are exactly the operations that may be linearized next. Linearizing one
//   "lifts" its call and return out of the list; backtracking puts them back (LIFO, so splicing is exact).
// - Reaching a return entry means that operation had to be linearized already: a dead end, so backtrack.
// - `info` operations have no return entry: they may be linearized anywhere after their invoke, or never. The
//   search succeeds once every `ok` operation is linearized.
// - Memoisation: a (set of linearized operations, model state) pair reached once is never explored again; the
//   rest of the search from it depends on nothing else. Sets are bitsets, found by two Zobrist hashes.
// - A step budget and a time budget turn an exhausting search into the verdict `unknown`.

import { assert } from "../assert.js";
import { CheckerInputError, ModelInputError } from "./errors.js";
import type { Operation, PairedHistory } from "./history.js";
import type { Model } from "./models.js";

export type Verdict = "linearizable" | "not-linearizable" | "unknown";

export interface Budget {
  /** Search steps (candidate operations tried) over all partitions; default unlimited. */
  readonly maxSteps?: number;
  /** Wall-clock budget over all partitions; default unlimited. */
  readonly timeMs?: number;
  /** The clock for `timeMs`, in milliseconds; default `performance.now`. Injected by deterministic callers. */
  readonly now?: () => number;
}

export interface CheckOptions<S> {
  readonly model: Model<S>;
  readonly initial?: unknown;
  readonly budget?: Budget;
}

/** A pending operation at the point where the search got stuck, and why it could not be the next one. */
export interface ConcurrentOperation {
  readonly op: Operation;
  /** "rejected" — illegal from the state after the prefix; "explored" — legal, but every continuation failed. */
  readonly outcome: "rejected" | "explored";
}

/**
 * The minimal non-linearizable window of one key: the longest linearizable prefix the search found, the
 * operation that had to take effect next but could not, and the operations concurrent with it at that point.
 */
export interface FailureReport {
  readonly key: string | null;
  /** The longest linearizable prefix, in linearization order. */
  readonly linearized: readonly Operation[];
  /** The model state after that prefix, described by the model. */
  readonly stateAfter: string;
  /** The operation whose completion the search reached before it could be linearized. */
  readonly blocked: Operation;
  readonly blockedOutcome: "rejected" | "explored";
  /** The other operations that could have gone next (invoked, not linearized, before `blocked` completed). */
  readonly concurrent: readonly ConcurrentOperation[];
  /** History lines spanning the blocked operation and the operations concurrent with it. */
  readonly window: { readonly firstLine: number; readonly lastLine: number };
}

export interface PartitionResult {
  readonly key: string | null;
  /** Operations searched (after dropping those that constrain nothing). */
  readonly operations: number;
  readonly verdict: Verdict;
  readonly steps: number;
  /** Distinct (linearized set, state) pairs memoised. */
  readonly cachedStates: number;
  readonly failure?: FailureReport;
}

export interface CheckResult {
  readonly verdict: Verdict;
  readonly partitions: readonly PartitionResult[];
  /** The first failing partition's report, when the verdict is `not-linearizable`. */
  readonly failure?: FailureReport;
  readonly operations: number;
  readonly steps: number;
}

const NIL = -1;
const CLOCK_CHECK_INTERVAL = 1024;

/** Checks a paired history (or its operations) against a model. Throws ModelInputError on ops the model rejects. */
export function checkLinearizability<S>(
  history: PairedHistory | readonly Operation[],
  options: CheckOptions<S>,
): CheckResult {
  const { model } = options;
  const operations = Array.isArray(history) ? (history as readonly Operation[]) : (history as PairedHistory).operations;
  const initial = model.init(options.initial ?? null);
  for (const op of operations) {
    const problem = model.validate(op);
    if (problem !== null) throw new ModelInputError(model.name, problem, op.invokeLine);
  }

  const partitions = new Map<string | null, Operation[]>();
  for (const op of operations) {
    if (model.irrelevant(op)) continue;
    const key = op.key ?? null;
    let ops = partitions.get(key);
    if (ops === undefined) partitions.set(key, (ops = []));
    ops.push(op);
  }

  const meter = new BudgetMeter(options.budget ?? {});
  const results: PartitionResult[] = [];
  for (const [key, ops] of partitions) {
    results.push(
      meter.exhausted() ? unknownPartition(key, ops.length) : searchPartition(key, ops, model, initial, meter),
    );
  }
  const failed = results.find((r) => r.verdict === "not-linearizable");
  const verdict: Verdict =
    failed !== undefined
      ? "not-linearizable"
      : results.some((r) => r.verdict === "unknown")
        ? "unknown"
        : "linearizable";
  const result: { -readonly [K in keyof CheckResult]: CheckResult[K] } = {
    verdict,
    partitions: results,
    operations: operations.length,
    steps: meter.steps,
  };
  if (failed?.failure !== undefined) result.failure = failed.failure;
  return result;
}

function unknownPartition(key: string | null, operations: number): PartitionResult {
  return { key, operations, verdict: "unknown", steps: 0, cachedStates: 0 };
}

class BudgetMeter {
  steps = 0;
  private readonly maxSteps: number;
  private readonly deadline: number;
  private readonly now: () => number;
  private out = false;

  constructor(budget: Budget) {
    const { maxSteps, timeMs } = budget;
    if (maxSteps !== undefined && !(Number.isSafeInteger(maxSteps) && maxSteps >= 0)) {
      throw new CheckerInputError(
        "linearizability",
        `budget.maxSteps must be a non-negative integer, got ${String(maxSteps)}`,
      );
    }
    if (timeMs !== undefined && !(typeof timeMs === "number" && timeMs >= 0)) {
      throw new CheckerInputError(
        "linearizability",
        `budget.timeMs must be a non-negative number of milliseconds, got ${String(timeMs)}`,
      );
    }
    this.maxSteps = maxSteps ?? Infinity;
    this.now = budget.now ?? (() => performance.now());
    this.deadline = timeMs === undefined ? Infinity : this.now() + timeMs;
  }

  /** Counts one step; true when the budget is spent. The clock is read only every CLOCK_CHECK_INTERVAL steps. */
  spend(): boolean {
    this.steps++;
    if (this.steps > this.maxSteps) this.out = true;
    else if (this.deadline !== Infinity && this.steps % CLOCK_CHECK_INTERVAL === 0 && this.now() > this.deadline)
      this.out = true;
    return this.out;
  }

  exhausted(): boolean {
    return this.out || this.steps >= this.maxSteps || (this.deadline !== Infinity && this.now() > this.deadline);
  }
}

/** Deterministic 32-bit hash values per operation index (splitmix32), for Zobrist hashing of linearized sets. */
function zobrist(index: number, salt: number): number {
  let z = (Math.imul(index + 1, 0x9e3779b9) ^ salt) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function searchPartition<S>(
  key: string | null,
  ops: readonly Operation[],
  model: Model<S>,
  initial: S,
  meter: BudgetMeter,
): PartitionResult {
  const n = ops.length;

  // Entries: 2i is the call of ops[i], 2i+1 its return (only for `ok` operations). HEAD is a sentinel.
  const HEAD = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(NIL);
  const prev = new Int32Array(2 * n + 1).fill(NIL);
  const order: Array<{ entry: number; at: number }> = [];
  let remainingOk = 0;
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    order.push({ entry: 2 * i, at: op.invokeIndex });
    if (op.status === "ok") {
      order.push({ entry: 2 * i + 1, at: op.completeIndex });
      remainingOk++;
    }
  }
  order.sort((a, b) => a.at - b.at);
  let last = HEAD;
  for (const { entry } of order) {
    next[last] = entry;
    prev[entry] = last;
    last = entry;
  }
  const hasReturn = (call: number): boolean => ops[call >> 1]!.status === "ok";

  const lift = (call: number): void => {
    next[prev[call]!] = next[call]!;
    if (next[call] !== NIL) prev[next[call]!] = prev[call]!;
    if (hasReturn(call)) {
      const ret = call + 1;
      next[prev[ret]!] = next[ret]!;
      if (next[ret] !== NIL) prev[next[ret]!] = prev[ret]!;
    }
  };
  const unlift = (call: number): void => {
    if (hasReturn(call)) {
      const ret = call + 1;
      next[prev[ret]!] = ret;
      if (next[ret] !== NIL) prev[next[ret]!] = ret;
    }
    next[prev[call]!] = call;
    if (next[call] !== NIL) prev[next[call]!] = call;
  };

  const words = new Uint32Array(Math.ceil(n / 32) || 1);
  const z1 = new Uint32Array(n);
  const z2 = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    z1[i] = zobrist(i, 0x2545f491);
    z2[i] = zobrist(i, 0x6c8e9cf5);
  }
  let h1 = 0;
  let h2 = 0;
  const toggle = (i: number): void => {
    words[i >>> 5]! ^= 1 << (i & 31);
    h1 = (h1 ^ z1[i]!) >>> 0;
    h2 = (h2 ^ z2[i]!) >>> 0;
  };

  // Memo: bucket key (both hashes + state key) → bitsets seen with that state. Equal bitsets confirm a hit.
  const cache = new Map<string, Uint32Array[]>();
  let cachedStates = 0;
  const remember = (stateKey: string): boolean => {
    const bucketKey = `${h1}:${h2}:${stateKey}`;
    let bucket = cache.get(bucketKey);
    if (bucket === undefined) cache.set(bucketKey, (bucket = []));
    else if (bucket.some((seen) => seen.every((w, j) => w === words[j]))) return false;
    bucket.push(words.slice());
    cachedStates++;
    return true;
  };

  const stackCalls: number[] = [];
  const stackStates: S[] = [];
  let state = initial;
  let deepest: { linearized: number[]; state: S; blockedReturn: number } | null = null;
  let stepsHere = 0;

  let entry = next[HEAD]!;
  while (remainingOk > 0) {
    assert(entry !== NIL, "an unlinearized ok operation's return entry is still in the list");
    if ((entry & 1) === 0) {
      stepsHere++;
      if (meter.spend()) return { key, operations: n, verdict: "unknown", steps: stepsHere, cachedStates };
      const i = entry >> 1;
      const result = model.step(state, ops[i]!);
      if (result.ok) {
        toggle(i);
        if (remember(model.key(result.state))) {
          stackCalls.push(entry);
          stackStates.push(state);
          state = result.state;
          if (ops[i]!.status === "ok") remainingOk--;
          lift(entry);
          entry = next[HEAD]!;
          continue;
        }
        toggle(i);
      }
      entry = next[entry]!;
    } else {
      // A return entry: its operation should have been linearized by now. Remember the deepest such point.
      if (deepest === null || stackCalls.length > deepest.linearized.length) {
        deepest = { linearized: stackCalls.map((c) => c >> 1), state, blockedReturn: entry };
      }
      if (stackCalls.length === 0) {
        return {
          key,
          operations: n,
          verdict: "not-linearizable",
          steps: stepsHere,
          cachedStates,
          failure: report(key, ops, model, deepest, next, HEAD),
        };
      }
      const call = stackCalls.pop()!;
      state = stackStates.pop()!;
      const i = call >> 1;
      toggle(i);
      if (ops[i]!.status === "ok") remainingOk++;
      unlift(call);
      entry = next[call]!;
    }
  }
  assert(stackCalls.length <= n, "each operation is linearized at most once");
  return { key, operations: n, verdict: "linearizable", steps: stepsHere, cachedStates };
}

/**
 * Rebuilds the list as it was at the deepest dead end (the full list minus the prefix), to name the operations
 * that were candidates there and say why each could not go next.
 */
function report<S>(
  key: string | null,
  ops: readonly Operation[],
  model: Model<S>,
  deepest: { linearized: number[]; state: S; blockedReturn: number },
  next: Int32Array,
  head: number,
): FailureReport {
  const done = new Set(deepest.linearized);
  const blockedIndex = deepest.blockedReturn >> 1;
  const concurrent: ConcurrentOperation[] = [];
  // After a full backtrack the list is whole again; the candidates are the unlinearized calls before the return.
  for (let e = next[head]!; e !== NIL && e !== deepest.blockedReturn; e = next[e]!) {
    const i = e >> 1;
    if ((e & 1) === 1 || done.has(i) || i === blockedIndex) continue;
    concurrent.push({ op: ops[i]!, outcome: model.step(deepest.state, ops[i]!).ok ? "explored" : "rejected" });
  }
  const blocked = ops[blockedIndex]!;
  assert(
    blocked.status === "ok" && !done.has(blockedIndex),
    "the search is only ever blocked by an unlinearized ok operation",
  );
  const lines = [blocked.invokeLine, blocked.completeLine!, ...concurrent.map((c) => c.op.invokeLine)];
  return {
    key,
    linearized: deepest.linearized.map((i) => ops[i]!),
    stateAfter: model.describe(deepest.state),
    blocked,
    blockedOutcome: model.step(deepest.state, blocked).ok ? "explored" : "rejected",
    concurrent,
    window: { firstLine: Math.min(...lines), lastLine: Math.max(...lines) },
  };
}
