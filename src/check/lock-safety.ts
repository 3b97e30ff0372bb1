// Lock safety: what a fencing-token lock promises its holders and the resources they write to.
//
// Inputs, all times on one client-side clock:
// - grants: every acknowledged acquire — who, which token, when the acquire was invoked and when it was
//   acknowledged, and (if the holder released) when the release was invoked and whether it was acknowledged;
// - writes: the writes a fencing-aware resource received, in the order it processed them, with the token each
//   carried and whether the resource accepted it.
//
// Properties (each violation names the grants or writes involved):
// 1. unique tokens: no two grants carry the same token.
// 2. token order: if grant A was acknowledged before grant B's acquire was invoked, A.token < B.token.
//    (Concurrent acquires may be granted in either order, so only real-time-ordered pairs are constrained.)
// 3. mutual exclusion as acknowledged: an acknowledged release proves its holder still held the lock when the
//    release took effect, so it held the lock throughout [acquire acknowledged, release invoked]. Two such
//    intervals must not overlap. Grants never released (or whose release was not acknowledged) may have lost
//    the lock to a lease expiry at an unknown time, so they constrain nothing here: fencing covers them.
// 4. fencing: every write the resource accepted carries a token ≥ every token it accepted before (a holder
//    may write several times with its own token), and a token that was actually granted to that holder.

import { CheckerInputError } from "./errors.js";

export interface LockGrant {
  readonly holder: string;
  readonly token: number;
  readonly acquireInvokedAt: number;
  readonly acquireAckedAt: number;
  readonly releaseInvokedAt?: number;
  /** True when the release was acknowledged as releasing a lock the holder still held. */
  readonly releaseAcked?: boolean;
}

export interface ResourceWrite {
  readonly holder: string;
  readonly token: number;
  readonly accepted: boolean;
}

export type LockViolation =
  | {
      readonly kind: "duplicate-token";
      readonly token: number;
      readonly grants: readonly [LockGrant, LockGrant];
      readonly message: string;
    }
  | { readonly kind: "token-order"; readonly earlier: LockGrant; readonly later: LockGrant; readonly message: string }
  | { readonly kind: "overlap"; readonly first: LockGrant; readonly second: LockGrant; readonly message: string }
  | {
      readonly kind: "stale-write-accepted";
      readonly write: ResourceWrite;
      readonly index: number;
      readonly highest: number;
      readonly message: string;
    }
  | {
      readonly kind: "ungranted-token";
      readonly write: ResourceWrite;
      readonly index: number;
      readonly message: string;
    };

export interface LockSafetyResult {
  readonly valid: boolean;
  readonly violations: LockViolation[];
}

function validate(grants: readonly LockGrant[], writes: readonly ResourceWrite[]): void {
  grants.forEach((g, i) => {
    const where = `grants[${i}]`;
    if (typeof g.holder !== "string" || !Number.isSafeInteger(g.token))
      throw new CheckerInputError("lock-safety", `${where} needs a string holder and an integer token`);
    if (
      !Number.isFinite(g.acquireInvokedAt) ||
      !Number.isFinite(g.acquireAckedAt) ||
      g.acquireAckedAt < g.acquireInvokedAt
    ) {
      throw new CheckerInputError("lock-safety", `${where} needs finite acquireInvokedAt ≤ acquireAckedAt`);
    }
    if (
      g.releaseInvokedAt !== undefined &&
      !(Number.isFinite(g.releaseInvokedAt) && g.releaseInvokedAt >= g.acquireAckedAt)
    ) {
      throw new CheckerInputError("lock-safety", `${where}.releaseInvokedAt must be a finite time ≥ acquireAckedAt`);
    }
    if (g.releaseAcked === true && g.releaseInvokedAt === undefined)
      throw new CheckerInputError("lock-safety", `${where} has releaseAcked but no releaseInvokedAt`);
  });
  writes.forEach((w, i) => {
    if (typeof w.holder !== "string" || !Number.isSafeInteger(w.token) || typeof w.accepted !== "boolean") {
      throw new CheckerInputError(
        "lock-safety",
        `writes[${i}] must be {holder: string, token: integer, accepted: boolean}`,
      );
    }
  });
}

export function checkLockSafety(input: {
  readonly grants: readonly LockGrant[];
  readonly writes?: readonly ResourceWrite[];
}): LockSafetyResult {
  const grants = input.grants;
  const writes = input.writes ?? [];
  if (!Array.isArray(grants) || !Array.isArray(writes))
    throw new CheckerInputError("lock-safety", `"grants" and "writes" must be arrays`);
  validate(grants, writes);
  const violations: LockViolation[] = [];

  // 1. Unique tokens.
  const byToken = new Map<number, LockGrant>();
  for (const g of grants) {
    const other = byToken.get(g.token);
    if (other !== undefined) {
      violations.push({
        kind: "duplicate-token",
        token: g.token,
        grants: [other, g],
        message: `token ${g.token} was granted to both ${other.holder} and ${g.holder}`,
      });
    } else byToken.set(g.token, g);
  }

  // 2. Token order: sweep acquires by invoke time, keeping the greatest token among grants acknowledged before.
  const byAck = [...grants].sort((a, b) => a.acquireAckedAt - b.acquireAckedAt);
  const byInvoke = [...grants].sort((a, b) => a.acquireInvokedAt - b.acquireInvokedAt);
  let acked = 0;
  let highest: LockGrant | null = null;
  for (const later of byInvoke) {
    while (acked < byAck.length && byAck[acked]!.acquireAckedAt < later.acquireInvokedAt) {
      const g = byAck[acked++]!;
      if (highest === null || g.token > highest.token) highest = g;
    }
    if (highest !== null && highest.token >= later.token) {
      violations.push({
        kind: "token-order",
        earlier: highest,
        later,
        message: `${later.holder} got token ${later.token} for an acquire invoked after ${highest.holder}'s grant of token ${highest.token} was acknowledged`,
      });
    }
  }

  // 3. Mutual exclusion over acknowledged holding intervals.
  const proven = grants.filter((g) => g.releaseAcked === true).sort((a, b) => a.acquireAckedAt - b.acquireAckedAt);
  let open: LockGrant | null = null;
  for (const g of proven) {
    if (open !== null && g.acquireAckedAt < open.releaseInvokedAt!) {
      violations.push({
        kind: "overlap",
        first: open,
        second: g,
        message: `${g.holder} (token ${g.token}) was acknowledged at ${g.acquireAckedAt} while ${open.holder} (token ${open.token}) held the lock until at least ${open.releaseInvokedAt}`,
      });
    }
    if (open === null || g.releaseInvokedAt! > open.releaseInvokedAt!) open = g;
  }

  // 4. Fencing at the resource.
  let highestAccepted = -Infinity;
  writes.forEach((write, index) => {
    if (!write.accepted) return;
    const grant = byToken.get(write.token);
    if (grant === undefined || grant.holder !== write.holder) {
      violations.push({
        kind: "ungranted-token",
        write,
        index,
        message: `writes[${index}] by ${write.holder} was accepted with token ${write.token}, which was never granted to it`,
      });
    }
    if (write.token < highestAccepted) {
      violations.push({
        kind: "stale-write-accepted",
        write,
        index,
        highest: highestAccepted,
        message: `writes[${index}] by ${write.holder} was accepted with token ${write.token} after token ${highestAccepted} had been accepted`,
      });
    }
    highestAccepted = Math.max(highestAccepted, write.token);
  });

  return { valid: violations.length === 0, violations };
}
