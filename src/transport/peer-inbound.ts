// The inbound half: one connection accepted on our peer port. It authenticates the dialer (challenge → hello
// → welcome), then accepts only batches and snapshot streams FROM that peer TO this node; anything else closes
// the connection with a reason. The only frames it writes are the handshake and snapshot acks: Raft replies
// go back on this node's own outbound link to the peer, never on this connection.

import type WebSocket from "ws";
import type { Message, NodeId } from "../raft/types.js";
import {
  FrameDecodeError,
  FrameKind,
  OLDEST_PEER_PROTOCOL_VERSION,
  PEER_PROTOCOL_VERSION,
  decodeFrame,
  encodeChallenge,
  encodeSnapAck,
  encodeWelcome,
  type Frame,
  type HelloFrame,
} from "./codec.js";
import { PeerCloseCode, clientProof, closeReason, newNonce, proofsEqual, serverProof } from "./peer-handshake.js";
import type { ResolvedPeerOptions } from "./peer-options.js";
import { SnapshotStreamReceiver, type ReceiveStep } from "./peer-snapshot.js";
import type { PeerReceiveStats } from "./peer-stats.js";

export interface InboundHost {
  readonly options: ResolvedPeerOptions;
  /** The dialer proved the secret: register it (replacing an older connection from the same peer). */
  authenticated(conn: InboundConnection): void;
  closed(conn: InboundConnection): void;
  receiveStats(peer: NodeId): PeerReceiveStats;
  /** The handshake was refused; `who` is the claimed node id or the remote address. */
  refused(who: string, code: number, reason: string): void;
  decodeFailed(peer: string, err: FrameDecodeError): void;
  deliver(batch: Message[]): void;
}

export class InboundConnection {
  private readonly serverNonce = newNonce();
  private handshakeTimer: NodeJS.Timeout | null;
  private peerId: NodeId | null = null;
  private receiver: SnapshotStreamReceiver | null = null;
  private stats: PeerReceiveStats | null = null;
  /** Set once we close: frames still in flight from the peer are ignored. */
  private closing = false;

  constructor(
    readonly ws: WebSocket,
    readonly remoteAddress: string,
    private readonly host: InboundHost,
  ) {
    const o = host.options;
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: Buffer) => this.onMessage(data));
    ws.on("error", () => {
      // 'close' follows and cleans up; a socket error is routine (peer crashed).
    });
    ws.on("close", () => this.onClose());
    this.handshakeTimer = setTimeout(
      () => this.refuse(this.remoteAddress, PeerCloseCode.BadHandshake, `no hello within ${o.handshakeTimeoutMs} ms`),
      o.handshakeTimeoutMs,
    );
    ws.send(
      encodeChallenge({
        protocol: PEER_PROTOCOL_VERSION,
        clusterId: o.clusterId,
        serverId: o.id,
        nonce: this.serverNonce,
      }),
    );
  }

  /** The authenticated peer's own peer URL, when its hello carried one. */
  peerUrl: string | null = null;
  /** The authenticated peer, or null during the handshake. */
  get peer(): NodeId | null {
    return this.peerId;
  }

  close(code: number, reason: string): void {
    this.closing = true;
    this.ws.close(code, closeReason(reason));
  }

  private onMessage(data: Buffer): void {
    if (this.closing) return;
    const o = this.host.options;
    let frame: Frame;
    try {
      frame = decodeFrame(data, o.maxFrameBytes);
    } catch (err) {
      if (!(err instanceof FrameDecodeError)) throw err;
      this.host.decodeFailed(this.peerId ?? this.remoteAddress, err);
      this.close(PeerCloseCode.BadFrame, err.message);
      return;
    }
    if (this.peerId === null) {
      this.onHandshake(frame);
      return;
    }
    const stats = this.stats!;
    stats.framesReceived++;
    stats.bytesReceived += data.byteLength;
    switch (frame.kind) {
      case FrameKind.Batch: {
        for (const m of frame.messages) {
          if (m.from !== this.peerId || m.to !== o.id) {
            this.badFrame(`message from "${m.from}" to "${m.to}" on the connection from "${this.peerId}" to "${o.id}"`);
            return;
          }
        }
        stats.messagesReceived += frame.messages.length;
        if (frame.messages.length > 0) this.host.deliver(frame.messages);
        return;
      }
      case FrameKind.SnapBegin:
        this.afterSnapshotStep(this.receiver!.begin(frame));
        return;
      case FrameKind.SnapChunk:
        this.afterSnapshotStep(this.receiver!.chunk(frame));
        return;
      default:
        this.badFrame(`unexpected frame kind ${frame.kind} on an inbound connection`);
    }
  }

  private afterSnapshotStep(step: ReceiveStep): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeSnapAck(step.ack));
    if (step.completed !== undefined) {
      this.stats!.snapshotsReceived++;
      this.stats!.messagesReceived++;
      this.host.options.logger.info(
        {
          peer: this.peerId,
          index: step.completed.snapshot.metadata.index,
          bytes: step.completed.snapshot.data.byteLength,
        },
        "snapshot received",
      );
      this.host.deliver([step.completed]);
    }
  }

  private onHandshake(frame: Frame): void {
    const o = this.host.options;
    if (frame.kind !== FrameKind.Hello) {
      this.refuse(
        this.remoteAddress,
        PeerCloseCode.BadHandshake,
        `expected a hello frame, got frame kind ${frame.kind}`,
      );
      return;
    }
    const hello: HelloFrame = frame;
    const who = hello.from;
    // The dialer answers with the lower of its version and ours: anything else is a release we cannot talk to.
    if (hello.protocol < OLDEST_PEER_PROTOCOL_VERSION || hello.protocol > PEER_PROTOCOL_VERSION) {
      this.refuse(
        who,
        PeerCloseCode.ProtocolMismatch,
        `protocol ${hello.protocol} unsupported; this node speaks ${OLDEST_PEER_PROTOCOL_VERSION} to ${PEER_PROTOCOL_VERSION}`,
      );
      return;
    }
    if (hello.clusterId !== o.clusterId) {
      this.refuse(
        who,
        PeerCloseCode.WrongCluster,
        `wrong cluster id "${hello.clusterId}"; this node is in "${o.clusterId}"`,
      );
      return;
    }
    if (hello.to !== o.id) {
      this.refuse(who, PeerCloseCode.WrongNode, `dialed node "${hello.to}" but this is "${o.id}"`);
      return;
    }
    if (hello.from === o.id) {
      this.refuse(who, PeerCloseCode.WrongNode, `a node cannot peer with itself ("${o.id}")`);
      return;
    }
    const binding = {
      clusterId: o.clusterId,
      from: hello.from,
      to: o.id,
      serverNonce: this.serverNonce,
      clientNonce: hello.nonce,
    };
    if (!proofsEqual(hello.proof, clientProof(o.secret, binding))) {
      this.refuse(who, PeerCloseCode.AuthFailed, "authentication failed: wrong cluster secret");
      return;
    }
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.ws.send(encodeWelcome({ proof: serverProof(o.secret, binding) }));
    this.peerId = hello.from;
    this.peerUrl = hello.url ?? null;
    this.stats = this.host.receiveStats(hello.from);
    this.receiver = new SnapshotStreamReceiver(o.id, hello.from, o.maxSnapshotBytes);
    this.host.authenticated(this);
  }

  private refuse(who: string, code: number, reason: string): void {
    this.host.refused(who, code, reason);
    this.close(code, reason);
  }

  private badFrame(reason: string): void {
    this.host.decodeFailed(
      this.peerId ?? this.remoteAddress,
      new FrameDecodeError("frame", "a frame this connection may carry", reason),
    );
    this.close(PeerCloseCode.BadFrame, reason);
  }

  private onClose(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.receiver?.abort();
    this.host.closed(this);
  }
}
