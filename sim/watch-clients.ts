// Watch clients: each watches the KV clients' keys (prefix "k") on whichever member it is connected to, and
// resumes from the revision after the last it received whenever its stream ends (an error push, a lost
// connection); a COMPACTED answer starts a new watch from the current revision. Afterwards every stream is
// checked against the committed changes (src/check/watch-order.ts): in revision order, nothing twice, nothing
// uncommitted, no gap between where it started and the last revision it received.

import type { WatcherRecord } from "../src/check/index.js";
import type { ApplyOutput } from "../src/statemachine/index.js";
import type { WatchEvent as StoreEvent } from "../src/statemachine/watch-history.js";
import { ClientConnection } from "./client-connection.js";
import { TICK, type SimCluster, type SimContext } from "./cluster.js";

const PREFIX = "k";

export class WatchClients {
  /** Every committed change (revision, key), in commit order. */
  readonly changes: { revision: number; key: string }[] = [];
  readonly watchers: (WatcherRecord & { received: { revision: number; key: string }[] })[] = [];
  eventsReceived = 0;
  resumes = 0;

  constructor(
    private readonly ctx: SimContext,
    private readonly clientCount: number,
  ) {}

  start(cluster: SimCluster, stopAt: number): void {
    for (let i = 0; i < this.clientCount; i++) void this.run(new ClientConnection(this.ctx, cluster, `watch${i}`), stopAt);
  }

  /** The committed stream: every put and delete, with its revision. */
  committed(output: ApplyOutput): void {
    for (const e of output.events) {
      if (e.type === "put") this.changes.push({ revision: e.revision, key: e.kv.key });
      else if (e.type === "delete") this.changes.push({ revision: e.revision, key: e.key });
    }
  }

  private async run(conn: ClientConnection, stopAt: number): Promise<void> {
    let from = 0;
    let n = 0;
    await conn.sleep(this.ctx.rng.int(0, 3 * TICK));
    while (this.ctx.now < stopAt) {
      if (this.ctx.rng.chance(0.2)) conn.wander();
      const r = await conn.retry("watch", { key: PREFIX, prefix: true, ...(from > 0 ? { fromRevision: from } : {}) }, 3);
      if (!r.ok) {
        if (r.error.code === "COMPACTED") from = 0;
        await conn.sleep(this.ctx.rng.int(TICK / 2, 2 * TICK));
        continue;
      }
      const { stream, revision } = r.value as { stream: number; revision: number };
      const record = { id: `${conn.endpoint}#${++n}`, fromRevision: from > 0 ? from : revision + 1, prefix: PREFIX, received: [] as { revision: number; key: string }[] };
      this.watchers.push(record);
      let ended = false;
      const end = conn.waiter();
      conn.onLost = () => {
        ended = true;
        end.wake();
      };
      conn.listen(stream, (ev) => {
        const e = ev as { events?: StoreEvent[]; error?: { code: string } };
        if (e.error !== undefined) {
          ended = true;
          end.wake();
          if (e.error.code === "COMPACTED") from = -1;
          return;
        }
        for (const x of e.events ?? []) {
          record.received.push({ revision: x.revision, key: x.type === "put" ? x.kv.key : x.key });
          this.eventsReceived++;
        }
      });
      // Watch for a while, then (sometimes) move to another member and resume there.
      await end.until(Math.min(stopAt, this.ctx.now + this.ctx.rng.int(5 * TICK, 40 * TICK)));
      conn.onLost = null;
      conn.unlisten(stream);
      const last = record.received.at(-1)?.revision;
      from = from === -1 ? 0 : last !== undefined ? last + 1 : record.fromRevision;
      if (!ended) await conn.call("unwatch", { stream });
      this.resumes++;
    }
  }
}
