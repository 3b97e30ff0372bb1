// Register workload (Jepsen's etcd "register"): workers read, write and compare-and-set small integers on
// many keys; the history is checked key by key for linearizability against the register model.
//
// Recording: write/cas values are what the client asked for; a read records what it saw (null = absent).
// A cas that found another value is `fail` (certainly not swapped); a timed-out or cut-off write is `info`.
// Reads that error are `fail`: a read changes nothing, so dropping it cannot hide a violation.

import { checkLinearizability, formatFailure, formatVerdictLine, readHistory, registerModel } from "../../src/check/index.js";
import { ProcessIds } from "../history.js";
import type { Client } from "../client.js";
import { connectRetrying, errorCode, pace, guarded, isDefiniteFailure, windowOfLines, type Verdict, type Workload, type WorkloadContext } from "./workload.js";

const KEYS = 8;
const VALUES = 5;

export class RegisterWorkload implements Workload {
  readonly name = "register";
  constructor(private readonly opts: { keys?: number; checkTimeMs?: number } = {}) {}

  async run(ctx: WorkloadContext): Promise<void> {
    const ids = new ProcessIds(ctx.concurrency);
    const keys = this.opts.keys ?? KEYS;
    await Promise.all(Array.from({ length: ctx.concurrency }, (_, w) => this.worker(ctx, w, ids, keys)));
  }

  private async worker(ctx: WorkloadContext, w: number, ids: ProcessIds, keys: number): Promise<void> {
    let client: Client | null = await connectRetrying(ctx, w % 2 === 1 ? { pin: w } : {});
    try {
      while (client !== null && !ctx.stop.aborted) {
        await pace(ctx);
        const key = `jepsen/register/${ctx.rng.int(keys)}`;
        const roll = ctx.rng.next();
        const proc = ids.of(w);
        if (roll < 0.4) {
          const op = ctx.history.invoke(proc, "read", null, key);
          try {
            const kv = await guarded(ctx, client.get(key), "read");
            op.ok(kv === null ? null : Number(kv.text));
          } catch (e) {
            op.fail(null, errorCode(e));
          }
        } else if (roll < 0.7) {
          const value = ctx.rng.int(VALUES);
          const op = ctx.history.invoke(proc, "write", value, key);
          try {
            await guarded(ctx, client.put(key, String(value)), "write");
            op.ok();
          } catch (e) {
            if (isDefiniteFailure(e)) op.fail(value, errorCode(e));
            else {
              op.info(errorCode(e));
              ids.retire(w);
            }
          }
        } else {
          const expected = ctx.rng.int(VALUES);
          const next = ctx.rng.int(VALUES);
          const op = ctx.history.invoke(proc, "cas", [expected, next], key);
          try {
            const r = await guarded(ctx, client.cas(key, String(expected), String(next)), "cas");
            if (r.succeeded) op.ok();
            else op.fail();
          } catch (e) {
            if (isDefiniteFailure(e)) op.fail([expected, next], errorCode(e));
            else {
              op.info(errorCode(e));
              ids.retire(w);
            }
          }
        }
      }
    } finally {
      await client?.close().catch(() => {});
      client = null;
    }
  }

  async finish(): Promise<void> {}

  async check(ctx: WorkloadContext): Promise<Verdict[]> {
    const result = checkLinearizability(readHistory(ctx.history.toJsonl()), {
      model: registerModel,
      initial: null,
      budget: { timeMs: this.opts.checkTimeMs ?? 60_000 },
    });
    const verdict: Verdict = {
      checker: "linearizable (register, per key)",
      valid: result.verdict === "linearizable" ? true : result.verdict === "unknown" ? "unknown" : false,
      summary: formatVerdictLine(result, "register"),
      details: result.failure ? formatFailure(result.failure) : result.partitions.map((p) => ({ key: p.key, operations: p.operations, verdict: p.verdict })),
    };
    if (result.failure) return [{ ...verdict, window: windowOfLines(ctx.history, result.failure.window.firstLine, result.failure.window.lastLine) }];
    return [verdict];
  }

  artifacts(): Record<string, unknown> {
    return {};
  }
}
