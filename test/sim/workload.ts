// Simulated clients. Each runs one operation at a time — append a unique value, or a linearizable read via
// readIndex — against the node it believes leads (NotLeaderError tells it who does), retrying on timeouts and
// refusals. Reads go to leaders and followers alike. Completed operations form the history that history.ts
// checks; a logical clock orders invocations and completions as real time would.

import { NotLeaderError, ProposalDroppedError } from "../../src/raft/errors.js";
import type { Entry, NodeId } from "../../src/raft/types.js";
import { TICK, type Cluster, type ClusterHooks, type Host, type SimContext } from "./cluster.js";
import { dataString, encodeValue } from "./list-machine.js";

export interface CompletedOp {
  client: number;
  kind: "write" | "read";
  /** write: the value appended. */
  value: string;
  /** read: the list the read returned. */
  result: readonly string[];
  /** Logical times: every invocation and completion gets the next number. */
  invoke: number;
  complete: number;
}

interface Operation {
  kind: "write" | "read";
  seq: number;
  attempt: number;
  invoke: number;
  /** The current attempt's unique value (write) or ctx (read). */
  tag: string;
}

interface Client {
  id: number;
  guess: NodeId;
  op: Operation | null;
  seq: number;
}

/** A client gives up on an attempt after this long and retries (possibly elsewhere). */
const ATTEMPT_TIMEOUT = 10 * TICK;

export class Workload implements ClusterHooks {
  readonly history: CompletedOp[] = [];
  private clock = 0;
  private readonly clients: Client[] = [];
  /** Per host: log index → the write attempt proposed there. */
  private readonly pendingWrites = new Map<NodeId, Map<number, { client: Client; tag: string }>>();
  /** Read ctx → the client and host it was asked on. */
  private readonly pendingReads = new Map<string, { client: Client; host: NodeId }>();
  private stopAt = Infinity;
  cluster!: Cluster;
  writesAcked = 0;
  readsCompleted = 0;
  refusals = 0;

  constructor(
    private readonly ctx: SimContext,
    private readonly clientCount: number,
    private readonly readRatio: number,
  ) {}

  start(cluster: Cluster, stopAt: number): void {
    this.cluster = cluster;
    this.stopAt = stopAt;
    const ids = [...cluster.hosts.keys()];
    for (let i = 0; i < this.clientCount; i++) {
      const c: Client = { id: i, guess: this.ctx.rng.pick(ids), op: null, seq: 0 };
      this.clients.push(c);
      this.wake(c, this.ctx.rng.int(0, 2 * TICK));
    }
  }

  private wake(c: Client, delay: number): void {
    this.ctx.queue.push(this.ctx.now + delay, () => this.run(c));
  }

  private run(c: Client): void {
    if (c.op === null) {
      if (this.ctx.now >= this.stopAt) return;
      const kind = this.ctx.rng.chance(this.readRatio) ? "read" : "write";
      c.seq++;
      c.op = { kind, seq: c.seq, attempt: 0, invoke: ++this.clock, tag: "" };
    }
    this.attempt(c);
  }

  private attempt(c: Client): void {
    const op = c.op!;
    op.attempt++;
    // Half of the reads go to a random node: followers serve ReadIndex reads through their leader.
    const target = op.kind === "read" && this.ctx.rng.chance(0.5) ? (this.randomLiveHost() ?? c.guess) : c.guess;
    const host = this.cluster.get(target);
    if (!host || !host.up) {
      c.guess = this.randomLiveHost() ?? c.guess;
      this.wake(c, TICK);
      return;
    }
    const node = host.node!;
    try {
      if (op.kind === "write") {
        op.tag = `c${c.id}.${op.seq}.${op.attempt}`;
        const index = node.propose(encodeValue(op.tag));
        let byIndex = this.pendingWrites.get(host.id);
        if (!byIndex) this.pendingWrites.set(host.id, (byIndex = new Map()));
        byIndex.set(index, { client: c, tag: op.tag });
      } else {
        op.tag = `r${c.id}.${op.seq}.${op.attempt}`;
        node.readIndex(op.tag);
        this.pendingReads.set(op.tag, { client: c, host: host.id });
      }
    } catch (e) {
      if (e instanceof NotLeaderError) {
        this.refusals++;
        c.guess = e.leaderId ?? this.randomLiveHost() ?? c.guess;
        this.wake(c, this.ctx.rng.int(TICK / 10, TICK));
        return;
      }
      if (e instanceof ProposalDroppedError) {
        this.refusals++;
        this.wake(c, TICK);
        return;
      }
      throw e;
    }
    this.cluster.afterInput(host);
    const tag = op.tag;
    this.ctx.queue.push(this.ctx.now + ATTEMPT_TIMEOUT, () => {
      if (c.op === op && op.tag === tag) this.retry(c);
    });
  }

  private retry(c: Client): void {
    if (c.op!.kind === "read") this.pendingReads.delete(c.op!.tag);
    if (this.ctx.rng.chance(0.5)) c.guess = this.randomLiveHost() ?? c.guess;
    this.attempt(c);
  }

  private randomLiveHost(): NodeId | undefined {
    const live = this.cluster.liveHosts();
    return live.length > 0 ? this.ctx.rng.pick(live).id : undefined;
  }

  private finish(c: Client, result: readonly string[]): void {
    const op = c.op!;
    this.history.push({
      client: c.id,
      kind: op.kind,
      value: op.kind === "write" ? op.tag : "",
      result,
      invoke: op.invoke,
      complete: ++this.clock,
    });
    if (op.kind === "write") this.writesAcked++;
    else this.readsCompleted++;
    c.op = null;
    this.wake(c, this.ctx.rng.int(TICK / 4, 3 * TICK));
  }

  // ---------------------------------------------------------------------------------------------------------
  // ClusterHooks

  onApplied(host: Host, e: Entry): void {
    const byIndex = this.pendingWrites.get(host.id);
    const pw = byIndex?.get(e.index);
    if (!pw) return;
    byIndex!.delete(e.index);
    const c = pw.client;
    if (c.op === null || c.op.tag !== pw.tag) return; // an abandoned attempt
    // Another entry took this index (the proposal was lost with a leadership change): try again.
    if (dataString(e.data) !== pw.tag) this.ctx.queue.push(this.ctx.now, () => c.op?.tag === pw.tag && this.retry(c));
    else this.finish(c, []);
  }

  onReadState(host: Host, index: number, ctx: string): void {
    const pr = this.pendingReads.get(ctx);
    if (!pr || pr.host !== host.id) return;
    if (host.sm.appliedIndex >= index) this.completeRead(host, ctx);
    else host.waitingReads.push({ index, ctx });
  }

  onAppliedUpTo(host: Host): void {
    const waiting = host.waitingReads;
    if (waiting.length === 0) return;
    const applied = host.sm.appliedIndex;
    let kept = 0;
    for (const w of waiting) {
      if (w.index <= applied) this.completeRead(host, w.ctx);
      else waiting[kept++] = w;
    }
    waiting.length = kept;
  }

  private completeRead(host: Host, ctx: string): void {
    const pr = this.pendingReads.get(ctx);
    if (!pr) return; // the client gave up on this attempt while the state machine caught up
    this.pendingReads.delete(ctx);
    const c = pr.client;
    if (c.op === null || c.op.tag !== ctx) return;
    this.finish(c, host.sm.values.slice());
  }
}
