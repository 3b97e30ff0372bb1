// How simulated clients talk to the cluster: a proposal or a ReadIndex read on one host, answered when that
// host applies the entry (or reaches the read's index), or never (the client's timeout fires). A proposal's
// outcome is exact when known: `applied` (this entry committed at its index; output as that host computed
// it), `lost` (another entry took the index, so this one can never commit: Raft never moves an entry) or
// `timeout` (unknown: it may still commit). Refusals (NotLeader, dropped) are synchronous: nothing entered
// the log. Lock grants and leaderships that come later (a queued acquire, a waiting candidate) arrive as the
// events of the committed stream, as the server pushes them.

import { NotLeaderError, ProposalDroppedError } from "../src/raft/errors.js";
import type { Entry, NodeId } from "../src/raft/types.js";
import type { CoordinationEvent } from "../src/locks/index.js";
import { encodeCommand, type ApplyOutput, type Command } from "../src/statemachine/index.js";
import { TICK, type Cluster, type ClusterHooks, type Host, type SimContext } from "./cluster.js";
import { sameBytes } from "./entry-data.js";

/** A client gives up on an attempt after this long. */
export const ATTEMPT_TIMEOUT = 10 * TICK;

export type ProposeOutcome =
  { kind: "applied"; index: number; output: ApplyOutput } | { kind: "lost" } | { kind: "timeout" };

/** A synchronous refusal: nothing was proposed; `leader` is the host's hint. */
export interface Refusal {
  leader: NodeId | null;
}

interface PendingProposal {
  incarnation: number;
  data: Uint8Array;
  done: (o: ProposeOutcome) => void;
}

interface PendingRead {
  host: NodeId;
  incarnation: number;
  done: (host: Host | null) => void;
}

/** What the committed stream granted: "lock/<name>/<lease>" or "election/<name>/<lease>" → token. */
type GrantKey = string;

export class Requests implements ClusterHooks {
  private readonly proposals = new Map<NodeId, Map<number, PendingProposal>>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly granted = new Map<GrantKey, number>();
  private readonly grantWaiters = new Map<GrantKey, (token: number) => void>();
  private nextRead = 0;
  cluster!: Cluster;

  constructor(private readonly ctx: SimContext) {}

  /** Proposes `command` on `host`; `done` is called exactly once unless a Refusal is returned. */
  propose(host: Host, command: Command, done: (o: ProposeOutcome) => void): Refusal | null {
    const data = encodeCommand(command);
    let index: number;
    try {
      index = host.node!.propose(data);
    } catch (e) {
      if (e instanceof NotLeaderError) return { leader: e.leaderId };
      if (e instanceof ProposalDroppedError) return { leader: null };
      throw e;
    }
    let byIndex = this.proposals.get(host.id);
    if (!byIndex) this.proposals.set(host.id, (byIndex = new Map()));
    const pending: PendingProposal = { incarnation: host.incarnation, data, done };
    byIndex.set(index, pending);
    this.ctx.queue.push(this.ctx.now + ATTEMPT_TIMEOUT, () => {
      if (byIndex.get(index) !== pending) return;
      byIndex.delete(index);
      done({ kind: "timeout" });
    });
    this.cluster.afterInput(host);
    return null;
  }

  /**
   * A linearizable read barrier on `host`: `done(host)` once its state machine may be read, `done(null)` on a
   * timeout; unless refused at once.
   */
  read(host: Host, done: (host: Host | null) => void): Refusal | null {
    const ctx = `r${++this.nextRead}`;
    try {
      host.node!.readIndex(ctx);
    } catch (e) {
      if (e instanceof NotLeaderError) return { leader: e.leaderId };
      if (e instanceof ProposalDroppedError) return { leader: null };
      throw e;
    }
    const pending: PendingRead = { host: host.id, incarnation: host.incarnation, done };
    this.reads.set(ctx, pending);
    this.ctx.queue.push(this.ctx.now + ATTEMPT_TIMEOUT, () => {
      if (this.reads.get(ctx) !== pending) return;
      this.reads.delete(ctx);
      done(null);
    });
    this.cluster.afterInput(host);
    return null;
  }

  /**
   * Calls `then(token)` once the committed stream grants `kind` `name` to `lease` after index `after` (at once
   * if it already did: another node may have applied the grant before the client's node applied its request).
   */
  whenGranted(
    kind: "lock" | "election",
    name: string,
    lease: number,
    after: number,
    then: (token: number) => void,
  ): void {
    const key = `${kind}/${name}/${lease}`;
    const token = this.granted.get(key);
    if (token !== undefined && token > after) then(token);
    else this.grantWaiters.set(key, then);
  }

  /** Stops waiting (the client gave up). */
  cancelWait(kind: "lock" | "election", name: string, lease: number): void {
    this.grantWaiters.delete(`${kind}/${name}/${lease}`);
  }

  // ---------------------------------------------------------------------------------------------------------
  // ClusterHooks

  onApplied(host: Host, e: Entry, output: ApplyOutput): void {
    const byIndex = this.proposals.get(host.id);
    const p = byIndex?.get(e.index);
    if (!p || p.incarnation !== host.incarnation) return;
    byIndex!.delete(e.index);
    p.done(sameBytes(p.data, e.data) ? { kind: "applied", index: e.index, output } : { kind: "lost" });
  }

  onCommitted(_index: number, output: ApplyOutput): void {
    for (const wrapped of output.events) {
      if (wrapped.type !== "extension") continue;
      const e = wrapped.event as CoordinationEvent;
      let key: GrantKey;
      if (e.kind === "lockGranted") key = `lock/${e.name}/${e.lease}`;
      else if (e.kind === "leadershipGained") key = `election/${e.election}/${e.lease}`;
      else continue;
      this.granted.set(key, e.token);
      const waiter = this.grantWaiters.get(key);
      if (waiter) {
        this.grantWaiters.delete(key);
        waiter(e.token);
      }
    }
  }

  onReadState(host: Host, index: number, ctx: string): void {
    const pr = this.reads.get(ctx);
    if (!pr || pr.host !== host.id || pr.incarnation !== host.incarnation) return;
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
    const pr = this.reads.get(ctx);
    if (!pr) return; // the client gave up while the state machine caught up
    this.reads.delete(ctx);
    pr.done(host);
  }
}
