// KV clients: put (write), linearizable get (ReadIndex, on leaders and followers alike) and cas (a txn that
// compares the value, or version 0 for "absent", then puts) on a few keys. Each client runs one operation at a
// time and records it in the project's JSONL history shape (src/check/history.ts): invoke, then ok / fail /
// info. Values are unique integers; a read of an absent key is null, as the register model expects.
//
// Outcomes: a write or cas whose entry committed is ok (a cas whose compare failed is fail: it changed
// nothing); one whose index went to another entry never happened and is retried; one that timed out is info
// (it may still take effect), after which the client continues as a new process, as Jepsen's do.

import type { NodeId } from "../src/raft/types.js";
import type { TxnResult } from "../src/statemachine/index.js";
import { TICK, type Cluster, type Host, type SimContext } from "./cluster.js";
import { valueBytes, valueOf } from "./entry-data.js";
import type { ProposeOutcome, Requests } from "./requests.js";

export interface HistoryLine {
  process: number;
  type: "invoke" | "ok" | "fail" | "info";
  f: string;
  key: string;
  value: unknown;
}

interface KvClient {
  id: number;
  process: number;
  guess: NodeId;
  /** The last value this client saw per key: its cas guesses. */
  seen: Map<string, number | null>;
}

const READ_ATTEMPTS = 3;

export class KvClients {
  readonly history: HistoryLine[] = [];
  readonly keys: string[];
  private readonly clients: KvClient[] = [];
  private nextProcess = 0;
  private nextValue = 0;
  /** The latest value written to each key by anyone (what a cas most often expects). */
  private readonly lastWritten = new Map<string, number>();
  private stopAt = Infinity;
  cluster!: Cluster;
  acked = 0;
  reads = 0;

  constructor(
    private readonly ctx: SimContext,
    private readonly requests: Requests,
    private readonly clientCount: number,
    keyCount: number,
  ) {
    this.keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
  }

  start(cluster: Cluster, stopAt: number): void {
    this.cluster = cluster;
    this.stopAt = stopAt;
    const ids = [...cluster.hosts.keys()];
    for (let i = 0; i < this.clientCount; i++) {
      const c: KvClient = { id: i, process: this.nextProcess++, guess: this.ctx.rng.pick(ids), seen: new Map() };
      this.clients.push(c);
      this.later(this.ctx.rng.int(0, 2 * TICK), () => this.next(c));
    }
  }

  private later(delay: number, f: () => void): void {
    this.ctx.queue.push(this.ctx.now + delay, f);
  }

  private record(c: KvClient, type: HistoryLine["type"], f: string, key: string, value: unknown): void {
    this.history.push({ process: c.process, type, f, key, value });
  }

  private next(c: KvClient): void {
    if (this.ctx.now >= this.stopAt) return;
    const key = this.ctx.rng.pick(this.keys);
    const roll = this.ctx.rng.next();
    if (roll < 0.4) {
      this.record(c, "invoke", "read", key, null);
      this.read(c, key, 1);
    } else if (roll < 0.75) {
      const v = ++this.nextValue;
      this.record(c, "invoke", "write", key, v);
      this.write(c, key, v);
    } else {
      const known = this.ctx.rng.chance(0.5) ? this.lastWritten.get(key) : c.seen.get(key);
      const expected = known ?? null;
      const v = ++this.nextValue;
      this.record(c, "invoke", "cas", key, [expected, v]);
      this.cas(c, key, expected, v);
    }
  }

  private done(c: KvClient, type: "ok" | "fail" | "info", f: string, key: string, value: unknown): void {
    this.record(c, type, f, key, value);
    if (type === "info") c.process = this.nextProcess++;
    this.later(this.ctx.rng.int(TICK / 4, 3 * TICK), () => this.next(c));
  }

  /** The host to ask: the client's guess, or (reads, half the time) any live node. */
  private target(c: KvClient, anyNode: boolean): Host | null {
    const id = anyNode ? (this.randomLive() ?? c.guess) : c.guess;
    const host = this.cluster.get(id);
    if (host?.up) return host;
    c.guess = this.randomLive() ?? c.guess;
    return null;
  }

  private randomLive(): NodeId | undefined {
    const live = this.cluster.liveHosts();
    return live.length > 0 ? this.ctx.rng.pick(live).id : undefined;
  }

  /** Retries a refused request after a short wait, towards the leader the node named if any. */
  private refused(c: KvClient, leader: NodeId | null | undefined, retry: () => void): void {
    c.guess = leader ?? this.randomLive() ?? c.guess;
    // No leader known: an election is under way, give it time instead of asking every node in turn.
    this.later(leader ? this.ctx.rng.int(TICK / 10, TICK / 2) : this.ctx.rng.int(TICK / 2, 2 * TICK), retry);
  }

  private read(c: KvClient, key: string, attempt: number): void {
    const host = this.target(c, this.ctx.rng.chance(0.5));
    if (!host) return this.refused(c, undefined, () => this.read(c, key, attempt));
    const refusal = this.requests.read(host, (h) => {
      if (h === null) {
        if (attempt >= READ_ATTEMPTS) return this.done(c, "info", "read", key, null);
        if (this.ctx.rng.chance(0.5)) c.guess = this.randomLive() ?? c.guess;
        return this.read(c, key, attempt + 1);
      }
      const kv = h.sm.coordination.stateMachine.get(key);
      const value = kv === undefined ? null : valueOf(kv.value);
      c.seen.set(key, value);
      this.reads++;
      this.done(c, "ok", "read", key, value);
    });
    if (refusal) this.refused(c, refusal.leader, () => this.read(c, key, attempt));
  }

  private write(c: KvClient, key: string, v: number): void {
    this.propose(c, { op: "put", key, value: valueBytes(v) }, "write", key, v, (o) => {
      if (!o.ok) return this.done(c, "fail", "write", key, v);
      c.seen.set(key, v);
      this.lastWritten.set(key, v);
      this.acked++;
      this.done(c, "ok", "write", key, v);
    });
  }

  private cas(c: KvClient, key: string, expected: number | null, v: number): void {
    const compare =
      expected === null
        ? { key, target: "version" as const, result: "=" as const, value: 0 }
        : { key, target: "value" as const, result: "=" as const, value: valueBytes(expected) };
    const command = {
      op: "txn" as const,
      compare: [compare],
      success: [{ op: "put" as const, key, value: valueBytes(v) }],
      failure: [],
    };
    this.propose(c, command, "cas", key, [expected, v], (o) => {
      if (!o.ok || !(o.value as TxnResult).succeeded) return this.done(c, "fail", "cas", key, [expected, v]);
      c.seen.set(key, v);
      this.lastWritten.set(key, v);
      this.acked++;
      this.done(c, "ok", "cas", key, [expected, v]);
    });
  }

  /** Proposes until the entry is applied (→ `applied`), or times out (→ info). */
  private propose(
    c: KvClient,
    command: Parameters<Requests["propose"]>[1],
    f: string,
    key: string,
    value: unknown,
    applied: (result: { ok: boolean; value?: unknown }) => void,
  ): void {
    const host = this.target(c, false);
    if (!host) return this.refused(c, undefined, () => this.propose(c, command, f, key, value, applied));
    const refusal = this.requests.propose(host, command, (o: ProposeOutcome) => {
      if (o.kind === "applied") applied(o.output.result);
      else if (o.kind === "lost") this.propose(c, command, f, key, value, applied);
      else this.done(c, "info", f, key, value);
    });
    if (refusal) this.refused(c, refusal.leader, () => this.propose(c, command, f, key, value, applied));
  }
}
