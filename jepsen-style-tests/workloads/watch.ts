// Watch workload: writers put to keys under one prefix; watchers watch the prefix from a known starting
// revision and must see every committed change in range exactly once, in revision order, without gaps —
// across reconnects (the client resumes from its next revision) and re-created watches (when a watch throws,
// the worker opens a new one from the first revision it has not seen).
//
// What was committed: every acknowledged put's (revision, key), plus everything a fresh watcher opened after
// the heal sees from the start revision (that catches `info` puts that did commit; the fresh watcher is
// itself checked against the acknowledged puts).

import { checkWatchOrder, type WatchEvent } from "../../src/check/index.js";
import { ProcessIds } from "../history.js";
import type { Client } from "../client.js";
import { sleep } from "../util.js";
import { connectRetrying, errorCode, pace, guarded, isDefiniteFailure, type Verdict, type Workload, type WorkloadContext } from "./workload.js";

const PREFIX = "jepsen/watch/";
const WATCHERS = 3;
const KEYS = 6;

interface WatcherState {
  record: { id: string; fromRevision: number; prefix: string; received: WatchEvent[]; throughRevision?: number };
  next: number;
  stop: AbortController;
  done: Promise<void>;
  restarts: number;
  /** The watch could not resume: its next revision had been compacted away. */
  compacted: boolean;
}

export class WatchWorkload implements Workload {
  readonly name = "watch";
  private startRevision = 0;
  private readonly acked: WatchEvent[] = [];
  private readonly watchers: WatcherState[] = [];
  private finalRevision = 0;
  private committed: WatchEvent[] = [];
  /** Where the after-heal watcher could start (the start, unless the bounded history had moved past it). */
  private freshFrom = 0;

  async run(ctx: WorkloadContext): Promise<void> {
    const first = await connectRetrying(ctx);
    if (first === null) return;
    try {
      this.startRevision = (await guarded(ctx, first.put(`${PREFIX}start`, "0"), "start put")).revision + 1;
    } finally {
      await first.close().catch(() => {});
    }
    for (let i = 0; i < WATCHERS; i++) this.watchers.push(this.startWatcher(ctx, `watcher-${i}`));
    const ids = new ProcessIds(ctx.concurrency);
    let counter = 0;
    await Promise.all(
      Array.from({ length: ctx.concurrency }, async (_, w) => {
        const client = await connectRetrying(ctx);
        try {
          while (client !== null && !ctx.stop.aborted) {
            await pace(ctx);
            const key = `${PREFIX}k${ctx.rng.int(KEYS)}`;
            const value = counter++;
            const op = ctx.history.invoke(ids.of(w), "write", value, key);
            try {
              const r = await guarded(ctx, client.put(key, String(value)), "put");
              op.ok();
              this.acked.push({ revision: r.revision, key });
            } catch (e) {
              if (isDefiniteFailure(e)) op.fail(value, errorCode(e));
              else {
                op.info(errorCode(e));
                ids.retire(w);
              }
            }
          }
        } finally {
          await client?.close().catch(() => {});
        }
      }),
    );
  }

  private startWatcher(ctx: WorkloadContext, id: string): WatcherState {
    const state: WatcherState = {
      record: { id, fromRevision: this.startRevision, prefix: PREFIX, received: [] },
      next: this.startRevision,
      stop: new AbortController(),
      done: Promise.resolve(),
      restarts: 0,
      compacted: false,
    };
    const neverStop = new AbortController();
    state.done = (async () => {
      while (!state.stop.signal.aborted) {
        let client: Client | null = null;
        try {
          client = await connectRetrying({ ...ctx, stop: neverStop.signal }, { untilStop: false });
          const watch = client!.watch(PREFIX, { prefix: true, fromRevision: state.next, signal: state.stop.signal, resumeTimeoutMs: 20_000 });
          for await (const ev of watch) {
            state.record.received.push({ revision: ev.revision, key: ev.key });
            state.next = Math.max(state.next, ev.revision + 1);
          }
        } catch (e) {
          state.restarts++;
          if (errorCode(e) === "COMPACTED") {
            // It fell behind the bounded history: the client said so (it never goes silent). It can't be
            // asked to see more; it is judged up to what it received.
            state.compacted = true;
            break;
          }
          await sleep(200);
        } finally {
          await client?.close().catch(() => {});
        }
      }
    })();
    return state;
  }

  async finish(ctx: WorkloadContext): Promise<void> {
    const neverStop = new AbortController();
    const client = await connectRetrying({ ...ctx, stop: neverStop.signal }, { untilStop: false });
    try {
      // A barrier write: its revision is the last one of the run.
      this.finalRevision = (await guarded(ctx, client!.put(`${PREFIX}end`, "end"), "final put")).revision;
      this.acked.push({ revision: this.finalRevision, key: `${PREFIX}end` });
      // Every watcher must get there.
      const deadline = performance.now() + 20_000;
      while (performance.now() < deadline && this.watchers.some((w) => w.next <= this.finalRevision)) await sleep(100);
      for (const w of this.watchers) w.record.throughRevision = w.compacted ? w.next - 1 : Math.max(w.next - 1, this.finalRevision);
      // A fresh watcher from the start: the committed changes, including `info` puts that took effect. The
      // server keeps a bounded history; if the start is gone, begin where the history begins.
      const fresh: WatchEvent[] = [];
      let freshFrom = this.startRevision;
      for (let attempt = 0; attempt < 3 && fresh.length === 0; attempt++) {
        const stop = new AbortController();
        const watch = client!.watch(PREFIX, { prefix: true, fromRevision: freshFrom, signal: stop.signal });
        const timer = setTimeout(() => stop.abort(), 15_000);
        try {
          for await (const ev of watch) {
            fresh.push({ revision: ev.revision, key: ev.key });
            if (ev.revision >= this.finalRevision) break;
          }
        } catch (e) {
          const compactRevision = (e as { compactRevision?: number }).compactRevision;
          if (errorCode(e) !== "COMPACTED" || compactRevision === undefined) throw e;
          freshFrom = compactRevision + 1;
        } finally {
          clearTimeout(timer);
          await watch.close();
        }
      }
      this.freshFrom = freshFrom;
      // Below freshFrom nothing authoritative lists `info` puts that committed: accept what watchers saw there
      // as committed (phantoms below freshFrom go unchecked; gaps, order and duplicates are still checked).
      const belowFresh = this.watchers.flatMap((w) => w.record.received.filter((e) => e.revision < freshFrom));
      const ids = new Set<string>();
      this.committed = [];
      for (const e of [...this.acked, ...fresh, ...belowFresh]) {
        const id = `${e.revision}\u0000${e.key}`;
        if (!ids.has(id)) {
          ids.add(id);
          this.committed.push(e);
        }
      }
      this.watchers.push({
        record: { id: "fresh-after-heal", fromRevision: freshFrom, prefix: PREFIX, received: fresh, throughRevision: this.finalRevision },
        next: this.finalRevision + 1,
        stop: new AbortController(),
        done: Promise.resolve(),
        restarts: 0,
        compacted: false,
      });
    } finally {
      for (const w of this.watchers) w.stop.abort();
      await Promise.race([Promise.all(this.watchers.map((w) => w.done)), sleep(5000)]);
      await client?.close().catch(() => {});
    }
  }

  async check(): Promise<Verdict[]> {
    const r = checkWatchOrder({ committed: this.committed, watchers: this.watchers.map((w) => w.record) });
    const seen = this.watchers.map((w) => `${w.record.id}: ${w.record.received.length} events, ${w.restarts} re-watches${w.compacted ? " (fell behind the history: COMPACTED)" : ""}`).join("; ");
    return [
      {
        checker: "watch order (every revision, in order, once, across reconnects)",
        valid: r.valid && this.finalRevision > 0,
        summary: `${this.acked.length} acknowledged puts, ${this.committed.length} committed changes from revision ${this.startRevision} to ${this.finalRevision} (fresh watcher from ${this.freshFrom}); ${seen}; ${r.violations.length} violations`,
        details: r.violations.slice(0, 20).map((v) => v.message),
      },
    ];
  }

  artifacts(): Record<string, unknown> {
    return { startRevision: this.startRevision, finalRevision: this.finalRevision, committed: this.committed, watchers: this.watchers.map((w) => w.record) };
  }
}
