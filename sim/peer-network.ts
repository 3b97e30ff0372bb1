// A simulated member's peer network (the host's PeerNetwork): every send groups the Ready's messages per
// destination into one batch, as the real transport's frame per peer per turn, encoded and decoded by the real
// peer codec (src/transport/codec.ts), so a receiver gets fresh, validated messages. Batches are datagrams:
// delayed, lost, duplicated (so reordered) and cut by partitions. A snapshot travels alone, and its sender
// learns the outcome (delivered, or failed because the link is down), as the real transport reports it. A member
// answers one that reached it even if it was never told about it (the real handshake carries the address).

import type { PeerHandlers, PeerNetwork } from "../src/host/world.js";
import type { Message, NodeId } from "../src/raft/types.js";
import { FrameKind, decodeFrame, decodeMessage, encodeBatch, encodeMessage } from "../src/transport/codec.js";
import type { TransportStats } from "../src/transport/peer-stats.js";

/** What the network needs from the cluster: where a member is, and how to run something there. */
export interface PeerRouting {
  /** Delays for a batch from → to: [] when it is lost, two when duplicated. */
  delays(from: NodeId, to: NodeId, messages: readonly Message[]): number[];
  /** Runs `fn` at the receiving member at global time `at`, with its current handlers (if it runs then). */
  deliver(from: NodeId, to: NodeId, at: number, fn: (handlers: PeerHandlers) => void): void;
  /** Runs `fn` at the sending member's incarnation at global time `at` (if it still runs). */
  atSender(at: number, fn: () => void): void;
  now(): number;
  /** The link from → to is cut right now. */
  isCut(from: NodeId, to: NodeId): boolean;
}

/** A failed snapshot stream is reported after this long (a refused or reset connection). */
const SNAPSHOT_FAILURE_DELAY = 100;

export class SimPeerNetwork implements PeerNetwork {
  private readonly peers = new Set<NodeId>();
  /** Members that reached us without being among our peers: we may answer them (PeerTransport's learned remotes). */
  private readonly learned = new Set<NodeId>();
  private stopped = false;
  droppedUnknownPeer = 0;

  constructor(
    private readonly id: NodeId,
    private readonly routing: PeerRouting,
    private readonly handlers: PeerHandlers,
  ) {}

  send(messages: readonly Message[]): void {
    if (this.stopped || messages.length === 0) return;
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      if (!this.peers.has(m.to) && !this.learned.has(m.to)) {
        this.droppedUnknownPeer++;
        continue;
      }
      if (m.type === "snap") {
        this.sendSnapshot(m);
        continue;
      }
      let list = byPeer.get(m.to);
      if (!list) byPeer.set(m.to, (list = []));
      list.push(m);
    }
    for (const [to, batch] of byPeer) {
      const bytes = encodeBatch(batch);
      for (const delay of this.routing.delays(this.id, to, batch)) {
        this.routing.deliver(this.id, to, this.routing.now() + delay, (h) => {
          if (this.routing.isCut(this.id, to)) return;
          const frame = decodeFrame(bytes);
          if (frame.kind !== FrameKind.Batch) throw new Error("sim: a batch frame decoded as another kind");
          h.onMessages(frame.messages);
        });
      }
    }
  }

  private sendSnapshot(m: Message): void {
    const bytes = encodeMessage(m);
    const delays = this.routing.delays(this.id, m.to, [m]);
    const report = (ok: boolean): void => {
      if (!this.stopped) this.handlers.onSnapshotStatus(m.to, ok);
    };
    if (delays.length === 0) {
      this.routing.atSender(this.routing.now() + SNAPSHOT_FAILURE_DELAY, () => report(false));
      return;
    }
    // The outcome is reported once: delivered (learnt one trip later), or failed when it has not arrived by
    // then (the receiver was down or paused, or the link cut).
    let settled = false;
    const settle = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      report(ok);
    };
    this.routing.deliver(this.id, m.to, this.routing.now() + delays[0], (h) => {
      if (this.routing.isCut(this.id, m.to)) return;
      h.onMessages([decodeMessage(bytes)]);
      this.routing.atSender(this.routing.now() + delays[0], () => settle(true));
    });
    this.routing.atSender(this.routing.now() + 2 * delays[0] + SNAPSHOT_FAILURE_DELAY, () => settle(false));
  }

  addPeer(id: NodeId): void {
    if (id !== this.id) this.peers.add(id);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  stats(): TransportStats {
    return { peers: {}, droppedUnknownPeer: this.droppedUnknownPeer, decodeErrors: 0, refusedConnections: 0 };
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  /** `id` reached us (its handshake told us its address). */
  learn(id: NodeId): void {
    if (id !== this.id) this.learned.add(id);
  }

  /** The process ended: nothing it still runs may send. */
  kill(): void {
    this.stopped = true;
  }
}
