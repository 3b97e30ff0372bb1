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
  resolve(outcome: Outcome): void;
  reject(error: ProposalError): void;
}

/**
 * Proposals waiting for their entry to be applied, by log index. An entry applied at that index with another
 * term means the proposal was overwritten by a new leader: it certainly did not happen (PROPOSAL_LOST).
 * Not a Map per term or a promise per entry on the hot path: one waiter object per client request.
 */
export class PendingProposals {
  private readonly byIndex = new Map<number, Waiter>();

  /** `failed` is told the code of every proposal that fails while waiting (lost, or failed at shutdown). */
  constructor(private readonly failed: (code: ProposalError["code"]) => void = () => {}) {}

  add(index: number, term: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => this.byIndex.set(index, { term, resolve, reject }));
  }

  /** The entry at `index` (of `term`) was applied with `outcome` (undefined for a no-op or conf change). */
  applied(index: number, term: number, outcome: Outcome | undefined): void {
    const w = this.byIndex.get(index);
    if (!w) return;
    this.byIndex.delete(index);
    if (w.term !== term) {
      this.failed("PROPOSAL_LOST");
      w.reject(new ProposalError("PROPOSAL_LOST", `the proposal at index ${index} was replaced by a new leader's entry; retry`));
    } else {
      w.resolve(outcome ?? { ok: true, value: null });
    }
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
