// An external resource protected by fencing tokens, as a storage service would implement it: it remembers the
// highest token it has seen and accepts a write only with a token at least that high (a holder writes several
// times with its own token). It is told nothing by the cluster; clients bring their tokens.
//
// Checked at every write: an accepted token was granted by the log to that very writer (the registry of the
// coordination checker), and no two writers ever present the same accepted token. After the run, the writes
// and the clients' acknowledged grants and releases go through src/check's checkLockSafety.

import type { ResourceWrite } from "../src/check/index.js";
import { InvariantViolation } from "./invariants.js";

/** A grant as its holder saw it; the release fields are filled in when the holder releases. */
export interface GrantRecord {
  holder: string;
  token: number;
  acquireInvokedAt: number;
  acquireAckedAt: number;
  releaseInvokedAt?: number;
  releaseAcked?: boolean;
}

export class FencedResource {
  private highest = 0;
  private highestWriter = 0;
  readonly writes: ResourceWrite[] = [];
  /** Every acknowledged grant of this lock, as its holder saw it (for checkLockSafety); see recordGrant. */
  readonly grants: GrantRecord[] = [];
  accepted = 0;
  refused = 0;

  constructor(
    readonly lock: string,
    /** The lease the log granted `token` to, if it did. */
    private readonly grantedTo: (token: number) => number | undefined,
  ) {}

  /**
   * A client learned it holds the lock with `token`. A repeated acquire by a holder answers its existing hold,
   * so the same (lease, token) is one grant: returns the record already made.
   */
  recordGrant(lease: number, token: number, acquireInvokedAt: number, acquireAckedAt: number): GrantRecord {
    const holder = `lease${lease}`;
    const known = this.grants.find((g) => g.token === token && g.holder === holder);
    if (known !== undefined) return known;
    const grant: GrantRecord = { holder, token, acquireInvokedAt, acquireAckedAt };
    this.grants.push(grant);
    return grant;
  }

  write(lease: number, token: number): boolean {
    const accepted = token >= this.highest;
    this.writes.push({ holder: `lease${lease}`, token, accepted });
    if (!accepted) {
      this.refused++;
      return false;
    }
    const owner = this.grantedTo(token);
    if (owner !== lease) {
      throw new InvariantViolation(
        "fenced resource",
        `${this.lock}: accepted token ${token} from lease ${lease}, but the log granted it to ` +
          `${owner === undefined ? "nobody" : `lease ${owner}`}`,
      );
    }
    if (token === this.highest && lease !== this.highestWriter) {
      throw new InvariantViolation(
        "fenced resource",
        `${this.lock}: leases ${this.highestWriter} and ${lease} both wrote with token ${token}`,
      );
    }
    this.highest = token;
    this.highestWriter = lease;
    this.accepted++;
    return true;
  }
}
