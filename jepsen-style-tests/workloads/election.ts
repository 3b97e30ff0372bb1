// Election workload: candidates campaign for one election (lease per candidacy), lead briefly, sometimes
// proclaim a new value, then resign — or "crash" (stop the lease's keep-alives, never resign) so leadership
// passes by expiry. Observers stream every leadership change, reconnecting as needed. Their sequences must be
// in token order, and no token may ever name two leaders (across observers and acknowledged wins).
// A leader is identified by its candidacy's lease id, which observers see too.

import { checkElection, type ElectionObserver, type Leadership as ObservedLeadership } from "../../src/check/index.js";
import { ProcessIds } from "../history.js";
import type { Leadership } from "../client.js";
import { sleep } from "../util.js";
import { connectRetrying, errorCode, guarded, type Verdict, type Workload, type WorkloadContext } from "./workload.js";

const ELECTION = "jepsen-election";
const OBSERVERS = 3;

export class ElectionWorkload implements Workload {
  readonly name = "election";
  private readonly wins: ObservedLeadership[] = [];
  private readonly observers: ElectionObserver[] = [];
  private readonly observerStops: AbortController[] = [];
  private readonly observerDone: Promise<void>[] = [];
  private crashes = 0;
  private resigns = 0;
  private observerRestarts = 0;
  private readonly observerErrors = new Map<string, number>();

  async run(ctx: WorkloadContext): Promise<void> {
    for (let o = 0; o < OBSERVERS; o++) this.startObserver(ctx, o);
    const ids = new ProcessIds(ctx.concurrency);
    await Promise.all(
      Array.from({ length: ctx.concurrency }, async (_, w) => {
        while (!ctx.stop.aborted) {
          const client = await connectRetrying(ctx);
          if (client === null) return;
          let crashed = false;
          try {
            while (!ctx.stop.aborted && !crashed) {
              const proc = ids.of(w);
              const op = ctx.history.invoke(proc, "campaign", `c${proc}`);
              let leadership: Leadership;
              try {
                leadership = await client.election(ELECTION).campaign(`c${proc}`, { ttlMs: 2000, signal: AbortSignal.any([ctx.stop, AbortSignal.timeout(ctx.opTimeoutMs * 2)]) });
              } catch (e) {
                op.info(errorCode(e));
                ids.retire(w);
                continue;
              }
              op.ok(String(leadership.lease.id), leadership.token);
              this.wins.push({ leader: String(leadership.lease.id), token: leadership.token });
              await sleep(100 + ctx.rng.int(400));
              if (ctx.rng.next() < 0.3 && !leadership.lost.aborted) await guarded(ctx, leadership.proclaim(`c${proc}-proclaimed`), "proclaim").catch(() => {});
              if (ctx.rng.next() < 0.15) {
                this.crashes++;
                leadership.lease.stop();
                crashed = true;
                ids.retire(w);
                break;
              }
              const r = ctx.history.invoke(proc, "resign", null);
              try {
                await guarded(ctx, leadership.resign(), "resign");
                r.ok(null, leadership.token);
                this.resigns++;
              } catch (e) {
                r.info(errorCode(e));
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

  private startObserver(ctx: WorkloadContext, o: number): void {
    const record: ElectionObserver & { observed: ObservedLeadership[] } = { id: `observer-${o}`, observed: [] };
    this.observers.push(record);
    const stop = new AbortController();
    this.observerStops.push(stop);
    const neverStop = new AbortController();
    this.observerDone.push(
      (async () => {
        while (!stop.signal.aborted) {
          const client = await connectRetrying({ ...ctx, stop: neverStop.signal }, { untilStop: false }).catch(() => null);
          if (client === null) {
            await sleep(500);
            continue;
          }
          try {
            const observer = client.election(ELECTION).observe({ signal: stop.signal });
            for await (const change of observer) {
              if (change.leader !== null) record.observed.push({ leader: String(change.leader.lease), token: change.leader.token, value: change.leader.text });
            }
          } catch (e) {
            this.observerRestarts++;
            const code = errorCode(e);
            this.observerErrors.set(code, (this.observerErrors.get(code) ?? 0) + 1);
            await sleep(200);
          } finally {
            await client.close().catch(() => {});
          }
        }
      })(),
    );
  }

  async finish(): Promise<void> {
    // Let observers catch up with the last changes, then stop them.
    await sleep(2000);
    for (const s of this.observerStops) s.abort();
    await Promise.race([Promise.all(this.observerDone), sleep(10_000)]);
  }

  async check(): Promise<Verdict[]> {
    const r = checkElection({ observers: this.observers, wins: this.wins });
    const seen = this.observers.map((o) => o.observed.length).join("/");
    return [
      {
        checker: "election (observers agree, one leader per token)",
        valid: r.valid,
        summary: `${this.wins.length} wins, ${this.resigns} resigns, ${this.crashes} candidate crashes; observers saw ${seen} changes (${this.observerRestarts} observer restarts: ${JSON.stringify(Object.fromEntries(this.observerErrors))}); ${r.order.length} leaderships; ${r.violations.length} violations`,
        details: r.violations.slice(0, 20).map((v) => v.message),
      },
    ];
  }

  artifacts(): Record<string, unknown> {
    return { wins: this.wins, observers: this.observers };
  }
}
