import type { NodeId } from "./types.js";

/** A read waiting for a quorum to confirm the leader is still the leader (Raft thesis §6.4). */
export interface ReadIndexRequest {
  ctx: string;
  /** The commit index when the read arrived: the read is linearizable once the state machine has applied it. */
  index: number;
  /** The node whose client asked (the leader itself, or a follower that forwarded the read). */
  from: NodeId;
  acks: Map<NodeId, boolean>;
}

/**
 * ReadIndex bookkeeping on the leader. Requests are answered in arrival order. Many reads share one heartbeat
 * round: the round carries the ctx of the newest request, and a quorum of acks for it confirms every request that
 * arrived before it (each was recorded before that round's heartbeats were sent).
 */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexRequest>();
  private queue: string[] = [];
  /** ctx of the newest request not yet covered by a heartbeat round, or null. */
  private unsentRound: string | null = null;

  add(ctx: string, index: number, from: NodeId): ReadIndexRequest | undefined {
    if (this.pending.has(ctx)) return undefined; // a duplicate request: the first one answers it
    const req: ReadIndexRequest = { ctx, index, from, acks: new Map() };
    this.pending.set(ctx, req);
    this.queue.push(ctx);
    this.unsentRound = ctx;
    return req;
  }

  /** The ctx a new heartbeat round must carry, clearing it; null when every request is already covered. */
  takeRound(): string | null {
    const ctx = this.unsentRound;
    this.unsentRound = null;
    return ctx;
  }

  /** The ctx of the newest request still waiting for its acks, or "" when none waits. */
  newestPending(): string {
    return this.queue.at(-1) ?? "";
  }

  hasUnsentRound(): boolean {
    return this.unsentRound !== null;
  }

  /** Record `from`'s ack of the round for `ctx`; returns the request's acks, or undefined if unknown. */
  recvAck(from: NodeId, ctx: string): Map<NodeId, boolean> | undefined {
    const req = this.pending.get(ctx);
    if (!req) return undefined;
    req.acks.set(from, true);
    return req.acks;
  }

  /** Release `ctx` and every request queued before it, in order. */
  release(ctx: string): ReadIndexRequest[] {
    const i = this.queue.indexOf(ctx);
    if (i < 0) return [];
    const done = this.queue.slice(0, i + 1);
    this.queue = this.queue.slice(i + 1);
    const out: ReadIndexRequest[] = [];
    for (const c of done) {
      out.push(this.pending.get(c)!);
      this.pending.delete(c);
    }
    return out;
  }

  get size(): number {
    return this.queue.length;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
    this.unsentRound = null;
  }
}
