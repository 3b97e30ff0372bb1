// What a lock hold and a leadership share: something held under a lease that may end without this client
// asking, and a `lost` signal that fires as soon as anything says it may have ended.
//
// Invariant: `lost` fires at most once, never after `end()` began (a release is not a loss), and every listener
// a hold registers (the lease's `lost`, the connection's notices and reconnects) is taken away when it is lost or
// ended, because a shared lease and the connection outlive many holds.
//
// The sources of a loss: the lease's own `lost` (no keep-alive succeeded within the TTL, see lease.ts); the
// member's push naming this hold (`lockLost`, `leadershipLost`), which is tied to the connection that acquired;
// and, after a reconnect, the subclass's `stillHeld()` check with the cluster.

import type { Connection } from "./connection.js";
import { ConcordError, clientError, toConcordError } from "./errors.js";
import type { Lease } from "./lease.js";

export abstract class Hold {
  /** Fires (reason: a ConcordError) when the hold may be over. */
  readonly lost: AbortSignal;
  private readonly controller = new AbortController();
  private ended = false;
  /** How the hold reads in errors: `lock "a" (token 7)`, `leadership of "e" (token 9)`. */
  private readonly what: string;
  private readonly offNotice: () => void;
  private readonly offReconnect: () => void;
  private readonly offLease: () => void;

  constructor(
    protected readonly conn: Connection,
    /** What the member's push that ends this hold is called (and so what the hold is, in errors). */
    lostNotice: "lockLost" | "leadershipLost",
    readonly name: string,
    /** The fencing token: the log index at which the hold began, strictly increasing per name. */
    readonly token: number,
    readonly lease: Lease,
    /** The hold's own lease (revoked on end, stopped on loss), or a caller's (left alone). */
    private readonly ownsLease: boolean,
  ) {
    this.lost = this.controller.signal;
    const what = `${lostNotice === "lockLost" ? "lock" : "leadership of"} ${JSON.stringify(name)} (token ${token})`;
    this.what = what;
    const onLeaseLost = () => this.markLost(toConcordError(lease.lost.reason));
    this.offLease = () => lease.lost.removeEventListener("abort", onLeaseLost);
    this.offNotice = conn.onNotice((ev) => {
      if (ev.kind !== lostNotice || ev.name !== name || ev.token !== token) return;
      // An error (PERMISSION_DENIED: the user lost access) ends the stream, not the hold: stop all the same.
      if (ev.error) return this.markLost(new ConcordError(ev.error as ConstructorParameters<typeof ConcordError>[0]));
      this.markLost(clientError("LEASE_LOST", `${what} was lost: its lease ended on the server`));
    });
    this.offReconnect = conn.onReconnect(() => void this.verify());
    if (lease.lost.aborted) onLeaseLost();
    else lease.lost.addEventListener("abort", onLeaseLost, { once: true });
  }

  /** True until lost or ended. */
  protected get live(): boolean {
    return !this.ended && !this.lost.aborted;
  }

  /** Checks with the cluster that this hold still exists; fires `lost` if not. */
  async verify(): Promise<boolean> {
    if (!this.live) return false;
    let mine: boolean;
    try {
      mine = await this.stillHeld();
    } catch {
      return this.live; // unknown: the lease's own deadline decides
    }
    if (!mine) this.markLost(clientError("LEASE_LOST", `${this.what} is no longer held by this client`));
    return mine;
  }

  /** Whether the cluster still lists this hold (one read; may throw). */
  protected abstract stillHeld(): Promise<boolean>;

  /**
   * Ends the hold: runs `giveUp` (the release or resign write) unless the hold was already lost, then revokes an
   * owned lease. Once only; `lost` never fires after it.
   */
  protected async end(giveUp: () => Promise<unknown>): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.detach();
    try {
      if (!this.lost.aborted) await giveUp();
    } finally {
      if (this.ownsLease) await this.lease.revoke().catch(() => {});
    }
  }

  private markLost(reason: ConcordError): void {
    if (!this.live) return;
    this.detach();
    if (this.ownsLease) this.lease.stop();
    this.controller.abort(reason);
  }

  private detach(): void {
    this.offNotice();
    this.offReconnect();
    this.offLease();
  }
}
