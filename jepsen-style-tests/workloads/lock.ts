// Lock workload (Jepsen's "lock" and "lock-set"): workers take one lock through the client's lock() (a lease
// per hold, FIFO waiters, fencing token = granting index), and while holding it
// - write to an external resource that accepts a token only if it is ≥ the highest it has accepted (a
//   holder writes several times with its own token; a smaller token is stale), and
// - do fenced puts to the store itself (`fence: { lock, token }`), which the store must reject unless the
//   token is the lock's current one.
// Holds are short and some holders "crash" (stop keeping the lease alive and never release), so grants also
// happen by lease expiry. Checkers: lock safety over grants (unique, ordered tokens; no overlap between
// proven hold intervals; the resource's fencing), and the store's accepted fenced writes in revision order
// must carry non-decreasing tokens that were granted.
//
// Proven hold interval: the client's release() also succeeds when the lock was already lost (it treats
// LOCK_NOT_HELD as done), so a release proves nothing. An ACCEPTED fenced put does: the store applied it while
// the token was current, at some point after its invoke. So a grant is proven held over
// [acquire acknowledged, invoke of its last accepted fenced put] — passed to the checker as the
// `releaseInvokedAt` of an acknowledged release.

import { checkLockSafety, type LockGrant, type LockViolation, type ResourceWrite } from "../../src/check/index.js";
import { ProcessIds } from "../history.js";
import type { LockHandle } from "../client.js";
import { sleep } from "../util.js";
import { connectRetrying, errorCode, guarded, type Verdict, type Workload, type WorkloadContext } from "./workload.js";

const LOCK = "jepsen-lock";
const STORE_KEY = "jepsen/lock/resource";

/** The external resource: keeps the highest token it accepted and the order in which it saw writes. */
export class FencedResource {
  private highest = -Infinity;
  readonly writes: ResourceWrite[] = [];
  write(holder: string, token: number): boolean {
    const accepted = token >= this.highest;
    if (accepted) this.highest = token;
    this.writes.push({ holder, token, accepted });
    return accepted;
  }
}

interface GrantRecord {
  holder: string;
  token: number;
  acquireInvokedAt: number;
  acquireAckedAt: number;
  /** Invoke time of the last fenced put the store accepted for this grant. */
  provenUntil?: number;
}

interface StoreWrite {
  holder: string;
  token: number;
  revision: number;
}

export class LockWorkload implements Workload {
  readonly name = "lock";
  readonly resource = new FencedResource();
  private readonly grants: GrantRecord[] = [];
  private readonly storeWrites: StoreWrite[] = [];
  private storeRejected = 0;
  private crashes = 0;
  private zombieWrites = 0;
  /** Holds whose `lost` signal fired while in use (lease lapsed under a fault). */
  private lostWhileHeld = 0;

  constructor(private readonly opts: { ttlMs?: number } = {}) {}

  async run(ctx: WorkloadContext): Promise<void> {
    const ids = new ProcessIds(ctx.concurrency);
    const ttlMs = this.opts.ttlMs ?? 2000;
    await Promise.all(
      Array.from({ length: ctx.concurrency }, async (_, w) => {
        while (!ctx.stop.aborted) {
          // One client per few holds: a "crash" closes it without releasing.
          const client = await connectRetrying(ctx);
          if (client === null) return;
          let crashed = false;
          try {
            while (!ctx.stop.aborted && !crashed) {
              const proc = ids.of(w);
              const holder = `p${proc}`;
              const invokedAt = ctx.history.now();
              const op = ctx.history.invoke(proc, "acquire", null);
              let hold: LockHandle;
              try {
                hold = await client.lock(LOCK, { ttlMs, timeoutMs: ctx.opTimeoutMs * 2, signal: ctx.stop });
              } catch (e) {
                // LOCK_TIMEOUT / abort: the client revoked its lease, so the waiter is gone — but the revoke
                // itself may have failed, so the outcome is unknown.
                op.info(errorCode(e));
                ids.retire(w);
                continue;
              }
              const grant: GrantRecord = { holder, token: hold.token, acquireInvokedAt: invokedAt, acquireAckedAt: ctx.history.now() };
              op.ok(null, hold.token);
              this.grants.push(grant);
              await this.useResource(ctx, client, hold, grant);
              if (hold.lost.aborted) this.lostWhileHeld++;
              if (ctx.rng.next() < 0.15) {
                // Crash: stop keeping the lease alive, never release; the lock must pass on by expiry.
                this.crashes++;
                hold.lease.stop();
                crashed = true;
                ids.retire(w);
                // A zombie: the stalled holder wakes after its lease lapsed and writes with its old token, as
                // a GC-paused process would. The resource and the store must both refuse it.
                await sleep(ttlMs * 1.5);
                await this.writeOnce(ctx, client, grant, hold.token, "zombie");
                this.zombieWrites++;
                break;
              }
              const rel = ctx.history.invoke(proc, "release", null);
              const wasHeld = !hold.lost.aborted;
              try {
                await guarded(ctx, hold.release(), "release");
                // release() resolves also when the lock was already lost: then the outcome is unknown.
                if (wasHeld) rel.ok(null, hold.token);
                else rel.info("lock was lost before the release");
              } catch (e) {
                rel.info(errorCode(e));
                ids.retire(w);
              }
            }
          } finally {
            await client.close().catch(() => {});
          }
        }
      }),
    );
  }

  private async useResource(ctx: WorkloadContext, client: NonNullable<Awaited<ReturnType<typeof connectRetrying>>>, hold: LockHandle, grant: GrantRecord): Promise<void> {
    const writes = 1 + ctx.rng.int(3);
    for (let i = 0; i < writes && !hold.lost.aborted; i++) {
      await this.writeOnce(ctx, client, grant, hold.token, String(i));
      await sleep(20 + ctx.rng.int(80));
    }
  }

  /** One write to the external resource and one fenced put to the store, both with `token`. */
  private async writeOnce(ctx: WorkloadContext, client: NonNullable<Awaited<ReturnType<typeof connectRetrying>>>, grant: GrantRecord, token: number, tag: string): Promise<void> {
    this.resource.write(grant.holder, token);
    const invokedAt = ctx.history.now();
    try {
      const r = await guarded(ctx, client.fencedPut(STORE_KEY, `${grant.holder}:${token}:${tag}`, { name: LOCK, token }), "fencedPut");
      this.storeWrites.push({ holder: grant.holder, token, revision: r.revision });
      // Accepted: the store saw the token as current when it applied the put (after invokedAt).
      grant.provenUntil = Math.max(grant.provenUntil ?? invokedAt, invokedAt);
    } catch (e) {
      if (errorCode(e) === "FENCED") this.storeRejected++;
    }
  }

  async finish(): Promise<void> {}

  /** The run-clock interval of the first violation that names grants, for the report's highlight. */
  private static windowOf(violations: readonly LockViolation[]): { window: { fromNs: number; toNs: number } } | Record<string, never> {
    for (const v of violations) {
      const [a, b] =
        v.kind === "overlap" ? [v.first, v.second] : v.kind === "token-order" ? [v.earlier, v.later] : v.kind === "duplicate-token" ? v.grants : [null, null];
      if (a && b) {
        const times = [a.acquireInvokedAt, a.acquireAckedAt, b.acquireInvokedAt, b.acquireAckedAt, a.releaseInvokedAt ?? 0, b.releaseInvokedAt ?? 0].filter((t) => t > 0);
        return { window: { fromNs: Math.min(...times), toNs: Math.max(...times) } };
      }
    }
    return {};
  }

  async check(): Promise<Verdict[]> {
    const proven: LockGrant[] = this.grants.map((g) =>
      g.provenUntil !== undefined && g.provenUntil >= g.acquireAckedAt
        ? { holder: g.holder, token: g.token, acquireInvokedAt: g.acquireInvokedAt, acquireAckedAt: g.acquireAckedAt, releaseInvokedAt: g.provenUntil, releaseAcked: true }
        : { holder: g.holder, token: g.token, acquireInvokedAt: g.acquireInvokedAt, acquireAckedAt: g.acquireAckedAt },
    );
    const lock = checkLockSafety({ grants: proven, writes: this.resource.writes });
    const byRevision = [...this.storeWrites].sort((a, b) => a.revision - b.revision);
    const store = checkLockSafety({ grants: proven, writes: byRevision.map((w) => ({ holder: w.holder, token: w.token, accepted: true })) });
    const releases = proven.filter((g) => g.releaseAcked).length;
    return [
      {
        checker: "lock safety (tokens unique and ordered, acknowledged holds disjoint, resource fencing)",
        valid: lock.valid,
        summary: `${this.grants.length} grants, ${releases} holds proven by an accepted fenced put, ${this.lostWhileHeld} holds lost while in use, ${this.crashes} holder crashes (${this.zombieWrites} zombie writes after the lease lapsed), ${this.resource.writes.length} resource writes (${this.resource.writes.filter((w) => !w.accepted).length} rejected as stale): ${lock.violations.length} violations`,
        details: lock.violations.slice(0, 20).map((v) => v.message),
        ...LockWorkload.windowOf(lock.violations),
      },
      {
        checker: "store fencing (accepted fenced puts in revision order)",
        valid: store.valid,
        summary: `${byRevision.length} fenced puts accepted, ${this.storeRejected} rejected FENCED: ${store.violations.length} violations`,
        details: store.violations.slice(0, 20).map((v) => v.message),
        ...LockWorkload.windowOf(store.violations),
      },
    ];
  }

  artifacts(): Record<string, unknown> {
    return { grants: this.grants, resourceWrites: this.resource.writes, storeWrites: this.storeWrites };
  }
}
