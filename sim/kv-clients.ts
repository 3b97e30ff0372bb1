// KV clients: put (write), linearizable get (range, served by any member after a ReadIndex barrier) and cas (a
// txn comparing the value, or version 0 for "absent", then putting) on a few keys, over the client protocol,
// writes through an exactly-once session. Each client runs one operation at a time and records it in the
// project's JSONL history shape (src/check/history.ts): invoke, then ok / fail / info. Values are unique
// integers; a read of an absent key is null, as the register model expects. A write whose outcome stays
// unknown is info (it may take effect later), after which the client continues as a new process, as Jepsen's do.

import type { RangeResult, TxnResult } from "../src/statemachine/index.js";
import { ClientConnection } from "./client-connection.js";
import { TICK, type SimCluster, type SimContext } from "./cluster.js";
import { valueBytes, valueOf } from "./entry-data.js";
import { Session, type WriteOutcome } from "./session.js";

export interface HistoryLine {
  process: number;
  type: "invoke" | "ok" | "fail" | "info";
  f: string;
  key: string;
  value: unknown;
}

const READ_ATTEMPTS = 4;

export class KvClients {
  readonly history: HistoryLine[] = [];
  readonly keys: string[];
  private nextProcess = 0;
  private nextValue = 0;
  /** The latest value written to each key by anyone (what a cas most often expects). */
  private readonly lastWritten = new Map<string, number>();
  acked = 0;
  reads = 0;

  constructor(
    private readonly ctx: SimContext,
    private readonly clientCount: number,
    keyCount: number,
  ) {
    this.keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
  }

  start(cluster: SimCluster, stopAt: number): void {
    for (let i = 0; i < this.clientCount; i++) void this.run(new ClientConnection(this.ctx, cluster, `kv${i}`), stopAt);
  }

  private async run(conn: ClientConnection, stopAt: number): Promise<void> {
    const session = new Session(conn);
    const seen = new Map<string, number | null>();
    let process = this.nextProcess++;
    await conn.sleep(this.ctx.rng.int(0, 2 * TICK));
    while (this.ctx.now < stopAt) {
      const key = this.ctx.rng.pick(this.keys);
      const roll = this.ctx.rng.next();
      if (this.ctx.rng.chance(0.3)) conn.wander();
      const record = (type: HistoryLine["type"], f: string, value: unknown) => this.history.push({ process, type, f, key, value });
      let outcome: "ok" | "fail" | "info";
      if (roll < 0.4) {
        record("invoke", "read", null);
        const r = await conn.retry("range", { key }, READ_ATTEMPTS);
        if (r.ok) {
          const kv = (r.value as RangeResult).kvs[0];
          const value = kv === undefined ? null : valueOf(kv.value);
          seen.set(key, value);
          this.reads++;
          record("ok", "read", value);
          outcome = "ok";
        } else {
          record("info", "read", null);
          outcome = "info";
        }
      } else if (roll < 0.75) {
        const v = ++this.nextValue;
        record("invoke", "write", v);
        outcome = this.finish(await session.write("put", { key, value: valueBytes(v) }), () => true);
        if (outcome === "ok") {
          seen.set(key, v);
          this.lastWritten.set(key, v);
        }
        record(outcome, "write", v);
      } else {
        const expected = (this.ctx.rng.chance(0.5) ? this.lastWritten.get(key) : seen.get(key)) ?? null;
        const v = ++this.nextValue;
        record("invoke", "cas", [expected, v]);
        const compare =
          expected === null
            ? { key, target: "version", result: "=", value: 0 }
            : { key, target: "value", result: "=", value: valueBytes(expected) };
        const w = await session.write("txn", { compare: [compare], success: [{ op: "put", key, value: valueBytes(v) }], failure: [] });
        outcome = this.finish(w, (value) => (value as TxnResult).succeeded);
        if (outcome === "ok") {
          seen.set(key, v);
          this.lastWritten.set(key, v);
        }
        record(outcome, "cas", [expected, v]);
      }
      if (outcome === "info") process = this.nextProcess++;
      await conn.sleep(this.ctx.rng.int(TICK / 4, 3 * TICK));
    }
    session.close();
  }

  /** ok when applied and `succeeded`; fail when refused or not succeeded (nothing changed); info when unknown. */
  private finish(w: WriteOutcome, succeeded: (value: unknown) => boolean): "ok" | "fail" | "info" {
    if (w.kind === "unknown") return "info";
    if (w.kind === "failed" || !succeeded(w.value)) return "fail";
    this.acked++;
    return "ok";
  }
}
