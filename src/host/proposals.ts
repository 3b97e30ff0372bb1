import { assert } from "../assert.js";
import type { Outcome } from "../statemachine/commands.js";

/** Why a proposal's outcome is unknown or refused; all of these are retryable by a client with a session. */
export class ProposalError extends Error {
  constructor(
    readonly code: "PROPOSAL_LOST" | "TIMEOUT" | "NOT_LEADER" | "UNAVAILABLE" | "SHUTTING_DOWN",
    message: string,
  ) {
    super(message);
    this.name = "ProposalError";
  }
}

interface Waiter {
  term: number;
  /** When it fails with TIMEOUT (clock ms; Infinity: never), and what it is called in that error. */
  deadline: number;
  what: string;
  resolve(outcome: Outcome): void;
  reject(error: ProposalError): void;
}

/**
 * Proposals waiting for their entry to be applied, by log index. An entry applied at that index with another
 * term means the proposal was overwritten by a new leader: it certainly did not happen (PROPOSAL_LOST).
 * Not a Map per term or a promise per entry on the hot path: one waiter object per client request, and no timer:
 * a timed proposal fails with TIMEOUT at the first `expire` at or after its deadline (the host's tick).
 *
 * Invariant: timed waiters are in deadline order in the map (its order is insertion order, and every deadline is
 * the time of its add plus the same `timeoutMs`), so `expire` stops at the first timed waiter not yet due.
 */
export class PendingProposals {
  private readonly byIndex = new Map<number, Waiter>();
  private lastDeadline = -Infinity;

  /**
   * `timeoutMs`: how long a timed proposal may wait for its outcome. `failed` is told the code of every proposal
   * that fails while waiting (lost, timed out, or failed at shutdown).
   */
  constructor(
    private readonly timeoutMs: number,
    private readonly failed: (code: ProposalError["code"]) => void = () => {},
  ) {}

  /**
   * Waits for the entry proposed at `index` in `term`. Given `now` (the clock's ms), it fails with TIMEOUT
   * `timeoutMs` later (its outcome then unknown: `what` names it in the error); without, it waits until applied,
   * lost or failed at shutdown.
   */
  add(index: number, term: number, now?: number, what = "the proposal"): Promise<Outcome> {
    let deadline = Infinity;
    if (now !== undefined) {
      deadline = now + this.timeoutMs;
      assert(deadline >= this.lastDeadline, "pending proposals: a deadline before an earlier one (the clock went back)");
      this.lastDeadline = deadline;
    }
    // A waiter already at this index proposed an entry a new leader's replaced, and this member, leading again,
    // proposes at that index once more: the old proposal certainly did not happen. Deleted before the new one is
    // set, so the map's order stays the order of adds.
    const replaced = this.byIndex.get(index);
    if (replaced !== undefined) {
      this.byIndex.delete(index);
      this.lose(index, replaced);
    }
    return new Promise<Outcome>((resolve, reject) => this.byIndex.set(index, { term, deadline, what, resolve, reject }));
  }

  /** Fails with TIMEOUT every timed proposal whose deadline is at or before `now`. */
  expire(now: number): void {
    for (const [index, w] of this.byIndex) {
      if (w.deadline === Infinity) continue;
      if (w.deadline > now) return;
      this.byIndex.delete(index);
      this.failed("TIMEOUT");
      w.reject(
        new ProposalError(
          "TIMEOUT",
          `${w.what} was not applied within ${this.timeoutMs} ms; its outcome is unknown (retry with the same session seq)`,
        ),
      );
    }
  }

  /** The entry at `index` (of `term`) was applied with `outcome` (undefined for a no-op or conf change). */
  applied(index: number, term: number, outcome: Outcome | undefined): void {
    const w = this.byIndex.get(index);
    if (!w) return;
    this.byIndex.delete(index);
    if (w.term !== term) this.lose(index, w);
    else w.resolve(outcome ?? { ok: true, value: null });
  }

  private lose(index: number, w: Waiter): void {
    this.failed("PROPOSAL_LOST");
    w.reject(new ProposalError("PROPOSAL_LOST", `the proposal at index ${index} was replaced by a new leader's entry; retry`));
  }

  /** Fail everything still waiting (shutdown). */
  failAll(error: ProposalError): void {
    for (const w of this.byIndex.values()) {
      this.failed(error.code);
      w.reject(error);
    }
    this.byIndex.clear();
  }

  get size(): number {
    return this.byIndex.size;
  }
}
