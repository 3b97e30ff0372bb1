// Set workload (Jepsen's "set"): workers add unique elements (one key per element under a prefix); after the
// heal one final linearizable read lists the prefix. No acknowledged add may be lost, nothing unattempted
// may appear.

import { checkSet, type SetAdd } from "../../src/check/index.js";
import { ProcessIds } from "../history.js";
import { connectRetrying, errorCode, pace, guarded, isDefiniteFailure, type Verdict, type Workload, type WorkloadContext } from "./workload.js";

const PREFIX = "jepsen/set/";

export class SetWorkload implements Workload {
  readonly name = "set";
  private readonly adds: SetAdd[] = [];
  private finalRead: number[] | null = null;
  private finalReadError: string | null = null;
  private nextElement = 0;

  async run(ctx: WorkloadContext): Promise<void> {
    const ids = new ProcessIds(ctx.concurrency);
    await Promise.all(
      Array.from({ length: ctx.concurrency }, async (_, w) => {
        const client = await connectRetrying(ctx);
        try {
          while (client !== null && !ctx.stop.aborted) {
            await pace(ctx);
            const element = this.nextElement++;
            const op = ctx.history.invoke(ids.of(w), "add", element);
            try {
              await guarded(ctx, client.put(`${PREFIX}${String(element).padStart(8, "0")}`, String(element)), "add");
              op.ok();
              this.adds.push({ element, outcome: "ok" });
            } catch (e) {
              if (isDefiniteFailure(e)) {
                op.fail(element, errorCode(e));
                this.adds.push({ element, outcome: "fail" });
              } else {
                op.info(errorCode(e));
                ids.retire(w);
                this.adds.push({ element, outcome: "info" });
              }
            }
          }
        } finally {
          await client?.close().catch(() => {});
        }
      }),
    );
  }

  async finish(ctx: WorkloadContext): Promise<void> {
    const stopNever = new AbortController();
    const client = await connectRetrying({ ...ctx, stop: stopNever.signal }, { untilStop: false });
    try {
      for (let attempt = 0; attempt < 10; attempt++) {
        const op = ctx.history.invoke(1_000_000, "read", null);
        try {
          const elements: number[] = [];
          for await (const kv of client!.list(PREFIX)) elements.push(Number(kv.text));
          op.ok(elements);
          this.finalRead = elements;
          return;
        } catch (e) {
          op.fail(null, errorCode(e));
          this.finalReadError = errorCode(e);
        }
      }
    } finally {
      await client?.close().catch(() => {});
    }
  }

  async check(ctx: WorkloadContext): Promise<Verdict[]> {
    if (this.finalRead === null)
      return [{ checker: "set", valid: "unknown", summary: `the final read never succeeded (${this.finalReadError})` }];
    const r = checkSet({ adds: this.adds, finalRead: this.finalRead });
    const ok = this.adds.filter((a) => a.outcome === "ok").length;
    return [
      {
        checker: "set (no acknowledged add lost)",
        valid: r.valid,
        summary: `${ok} acknowledged adds, ${this.finalRead.length} read; lost ${r.lost.length}, unexpected ${r.unexpected.length}, duplicated ${r.duplicated.length}, recovered ${r.recovered.length}, indeterminate ${r.indeterminate.length}`,
        details: { lost: r.lost.slice(0, 50), unexpected: r.unexpected.slice(0, 50), duplicated: r.duplicated.slice(0, 20) },
        ...(r.lost.length > 0 ? SetWorkload.lostWindow(ctx, r.lost[0]) : {}),
      },
    ];
  }

  /** From the first lost add's acknowledgement to the final read that missed it. */
  private static lostWindow(ctx: WorkloadContext, element: unknown): { window: { fromNs: number; toNs: number } } {
    const events = ctx.history.events;
    const ack = events.find((e) => e.f === "add" && e.type === "ok" && e.value === element);
    const read = [...events].reverse().find((e) => e.f === "read" && e.type === "ok");
    const from = ack?.time ?? 0;
    return { window: { fromNs: from, toNs: read?.time ?? from } };
  }

  artifacts(): Record<string, unknown> {
    return { adds: this.adds.length, finalRead: this.finalRead };
  }
}
