// The outbound half of the transport to one peer: this node's own connection to it, over which every message
// this node sends to that peer travels (so a link fault is directional). It dials, authenticates, batches the
// messages of one event-loop turn into one frame, drops instead of queueing without bound (Raft retries),
// streams snapshots, measures RTT with ws pings, and redials with jittered exponential backoff.
//
// States: dialing (socket opening or handshake in flight) → ready → (closed → backoff wait → dialing) ...;
// stopped is final. Invariant: `ready` implies `ws !== null` and the welcome proof was verified.

import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { assert } from "../assert.js";
import type { Message, NodeId, SnapshotMessage } from "../raft/types.js";
import {
  FrameDecodeError,
  FrameKind,
  PEER_PROTOCOL_VERSION,
  decodeFrame,
  encodeBatch,
  encodeHello,
  estimateMessageBytes,
  type Frame,
} from "./codec.js";
import { Backoff } from "./peer-backoff.js";
import {
  PeerCloseCode,
  REFUSAL_CODES,
  clientProof,
  closeReason,
  newNonce,
  proofsEqual,
  serverProof,
} from "./peer-handshake.js";
import { peerDialUrl, type ResolvedPeerOptions } from "./peer-options.js";
import { SnapshotStreamSender } from "./peer-snapshot.js";
import { newSendStats, type PeerSendStats } from "./peer-stats.js";

/** How long close() waits for the close handshake before destroying the socket. */
const CLOSE_GRACE_MS = 250;
/** Weight of a new RTT sample in the moving average. */
const RTT_ALPHA = 0.2;

export class PeerLink {
  readonly stats: PeerSendStats = newSendStats();
  private ws: WebSocket | null = null;
  private ready = false;
  /** The version this link speaks: the lower of ours and the one the peer's challenge announced. */
  private protocol = PEER_PROTOCOL_VERSION;
  private stopped = false;
  private pending: Message[] = [];
  private pendingBytes = 0;
  private readonly backoff: Backoff;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pingSentAt: number | null = null;
  private snapshot: SnapshotStreamSender | null = null;
  private snapshotProgressAt = 0;
  private nextStreamId = 1;
  /** The last refusal or failure logged at warn level; repeats go to debug so a refused peer logs once. */
  private lastLoggedProblem = "";
  private readonly dialUrl: string;

  constructor(
    readonly peer: NodeId,
    readonly url: string,
    private readonly o: ResolvedPeerOptions,
  ) {
    this.dialUrl = peerDialUrl(peer, url);
    this.backoff = new Backoff(o.backoff);
  }

  get isReady(): boolean {
    return this.ready;
  }

  start(): void {
    this.dial();
  }

  /** Queues a message for this turn's frame; returns false (and counts) when it is dropped. Snapshots: sendSnapshot. */
  enqueue(m: Exclude<Message, SnapshotMessage>): boolean {
    if (!this.ready) {
      this.stats.droppedDisconnected++;
      return false;
    }
    const bytes = estimateMessageBytes(m);
    if (this.ws!.bufferedAmount + this.pendingBytes + bytes > this.o.maxQueueBytes) {
      this.stats.droppedOverflow++;
      return false;
    }
    this.pending.push(m);
    this.pendingBytes += bytes;
    return true;
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Writes everything queued this turn as one frame. */
  flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.ready) {
      this.stats.droppedDisconnected += batch.length;
      return;
    }
    const frame = encodeBatch(batch, this.protocol);
    if (frame.byteLength > this.o.maxFrameBytes) {
      this.stats.droppedOverflow += batch.length;
      this.o.logger.warn(
        { peer: this.peer, bytes: frame.byteLength, max: this.o.maxFrameBytes },
        "peer frame over maxFrameBytes dropped",
      );
      return;
    }
    this.write(frame);
    this.stats.framesSent++;
    this.stats.messagesSent += batch.length;
  }

  /** Starts streaming a "snap" message; the outcome is reported through onSnapshotStatus. */
  sendSnapshot(m: SnapshotMessage): void {
    if (!this.ready) {
      this.stats.droppedDisconnected++;
      this.reportSnapshot(false, "not connected");
      return;
    }
    if (this.snapshot !== null) {
      // Raft sends a snapshot again when it heard nothing from the follower for an election timeout. The same
      // snapshot still streaming gets one outcome, the stream's: a failure reported now would have Raft probe
      // below it while it is being installed, and send the whole of it a second time.
      if (this.snapshot.message.snapshot.metadata.index === m.snapshot.metadata.index) return;
      this.reportSnapshot(false, `snapshot stream ${this.snapshot.streamId} still in progress`);
      return;
    }
    let sender: SnapshotStreamSender;
    try {
      sender = new SnapshotStreamSender(
        this.nextStreamId++,
        m,
        (frame) => this.write(frame),
        this.o.snapshotChunkBytes,
        this.o.snapshotWindowChunks,
      );
    } catch (e) {
      this.failSnapshot(m.snapshot.metadata.index, `cannot read the snapshot: ${(e as Error).message}`);
      return;
    }
    this.snapshot = sender;
    this.snapshotProgressAt = performance.now();
    this.o.logger.info(
      { peer: this.peer, index: m.snapshot.metadata.index, bytes: sender.totalBytes },
      "sending snapshot",
    );
    sender.start();
    if (sender.state === "failed") {
      this.snapshot = null;
      this.failSnapshot(m.snapshot.metadata.index, sender.failureReason);
    }
  }

  /** A snapshot that could not be sent from this side (its bytes unreadable): said loudly, reported to Raft. */
  private failSnapshot(index: number, reason: string): void {
    this.o.logger.warn({ peer: this.peer, index, reason }, "snapshot not sent");
    this.reportSnapshot(false, reason);
  }

  /** Closes the connection for good; no callbacks fire afterwards. */
  async close(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    this.stats.connected = false;
    this.snapshot = null;
    this.pending = [];
    this.clearTimers();
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws !== null) await closeGracefully(ws, PeerCloseCode.GoingAway, "node stopping");
  }

  // -------------------------------------------------------------------------------------------------------

  private write(frame: Uint8Array): void {
    assert(this.ws !== null, "write on a link without a socket");
    this.ws.send(frame);
    this.stats.bytesSent += frame.byteLength;
  }

  private dial(): void {
    if (this.stopped) return;
    const tls = this.o.tls;
    const ws = new WebSocket(this.dialUrl, {
      perMessageDeflate: false,
      maxPayload: this.o.maxFrameBytes,
      handshakeTimeout: this.o.handshakeTimeoutMs,
      // RFC 6455 masks client frames to protect browser-facing HTTP caches; between our own nodes it only
      // costs a copy and two XOR passes per frame (~30% of CPU at 64-message frames). An all-zero mask makes
      // ws skip masking on send and unmasking on receive; the frames remain standard.
      generateMask: (mask: Buffer) => void mask.fill(0),
      ...(tls !== undefined ? { cert: tls.cert, key: tls.key, ca: tls.ca } : {}),
    });
    ws.binaryType = "nodebuffer";
    this.ws = ws;
    const clientNonce = newNonce();
    let serverNonce: Uint8Array | null = null;
    this.handshakeTimer = setTimeout(() => {
      this.noteProblem(`no handshake within ${this.o.handshakeTimeoutMs} ms`);
      ws.terminate();
    }, this.o.handshakeTimeoutMs);

    ws.on("message", (data: Buffer) => {
      if (ws !== this.ws) return;
      let frame: Frame;
      try {
        frame = decodeFrame(data, this.o.maxFrameBytes);
      } catch (err) {
        if (!(err instanceof FrameDecodeError)) throw err;
        this.noteProblem(err.message);
        ws.close(PeerCloseCode.BadFrame, closeReason(err.message));
        return;
      }
      if (frame.kind === FrameKind.Challenge && serverNonce === null && !this.ready) {
        serverNonce = frame.nonce;
        this.protocol = Math.min(PEER_PROTOCOL_VERSION, frame.protocol);
        const binding = { clusterId: this.o.clusterId, from: this.o.id, to: this.peer, serverNonce, clientNonce };
        ws.send(
          encodeHello({
            protocol: this.protocol,
            clusterId: this.o.clusterId,
            from: this.o.id,
            to: this.peer,
            nonce: clientNonce,
            proof: clientProof(this.o.secret, binding),
            ...(this.o.advertiseUrl !== undefined ? { url: this.o.advertiseUrl } : {}),
          }),
        );
      } else if (frame.kind === FrameKind.Welcome && serverNonce !== null && !this.ready) {
        const binding = { clusterId: this.o.clusterId, from: this.o.id, to: this.peer, serverNonce, clientNonce };
        if (!proofsEqual(frame.proof, serverProof(this.o.secret, binding))) {
          const reason = "peer failed to prove the cluster secret (wrong secret or not a member of this cluster)";
          this.noteProblem(reason);
          ws.close(PeerCloseCode.AuthFailed, closeReason(reason));
          return;
        }
        this.becomeReady();
      } else if (frame.kind === FrameKind.SnapAck && this.ready) {
        this.onSnapshotAck(frame);
      } else {
        const reason = `unexpected frame kind ${frame.kind} on an outbound link (${this.ready ? "ready" : "handshaking"})`;
        this.noteProblem(reason);
        ws.close(PeerCloseCode.BadFrame, closeReason(reason));
      }
    });
    ws.on("pong", () => {
      if (ws !== this.ws || this.pingSentAt === null) return;
      const sample = performance.now() - this.pingSentAt;
      this.pingSentAt = null;
      this.stats.rttMs =
        this.stats.rttMs === null ? sample : this.stats.rttMs + RTT_ALPHA * (sample - this.stats.rttMs);
    });
    ws.on("error", (err) => {
      // 'close' always follows; the error only explains it.
      if (ws === this.ws) this.noteProblem(`connection error: ${err.message}`);
    });
    ws.on("close", (code, reasonBuf) => {
      if (ws !== this.ws) return;
      this.onClosed(code, reasonBuf.toString("utf8"));
    });
  }

  private becomeReady(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.ready = true;
    this.stats.connected = true;
    this.stats.connects++;
    this.backoff.reset();
    this.lastLoggedProblem = "";
    this.pingSentAt = null;
    this.o.logger.info({ peer: this.peer, url: this.url, connects: this.stats.connects }, "connected to peer");
    this.heartbeatTimer = setInterval(() => this.onHeartbeat(), this.o.pingIntervalMs);
  }

  /** Periodic liveness: ping for RTT, reset a connection whose peer stopped answering or whose snapshot stalled. */
  private onHeartbeat(): void {
    const ws = this.ws;
    if (ws === null || !this.ready) return;
    const now = performance.now();
    if (this.snapshot !== null && now - this.snapshotProgressAt > this.o.snapshotStallTimeoutMs) {
      const reason = `snapshot stream made no progress for ${this.o.snapshotStallTimeoutMs} ms`;
      this.noteProblem(reason);
      ws.close(PeerCloseCode.SnapshotStalled, closeReason(reason));
      return;
    }
    if (this.pingSentAt !== null) {
      if (now - this.pingSentAt > this.o.deadPeerTimeoutMs) {
        this.noteProblem(`no pong for ${this.o.deadPeerTimeoutMs} ms`);
        ws.terminate();
      }
      return;
    }
    this.pingSentAt = now;
    ws.ping();
  }

  private onSnapshotAck(ack: Parameters<SnapshotStreamSender["onAck"]>[0]): void {
    const sender = this.snapshot;
    if (sender === null || !sender.onAck(ack)) return;
    this.snapshotProgressAt = performance.now();
    if (sender.state === "done") {
      this.snapshot = null;
      this.stats.snapshotsSent++;
      this.o.logger.info({ peer: this.peer, bytes: sender.totalBytes }, "snapshot sent");
      this.reportSnapshot(true, "");
    } else if (sender.state === "failed") {
      this.snapshot = null;
      this.failSnapshot(sender.message.snapshot.metadata.index, sender.failureReason);
    }
  }

  private onClosed(code: number, reason: string): void {
    const wasReady = this.ready;
    this.ws = null;
    this.ready = false;
    this.stats.connected = false;
    this.clearTimers();
    this.stats.droppedDisconnected += this.pending.length;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.snapshot !== null) {
      const failed = this.snapshot;
      this.snapshot = null;
      failed.fail("connection closed");
      this.reportSnapshot(false, `connection closed during snapshot stream ${failed.streamId}`);
    }
    if (this.stopped) return;
    if (REFUSAL_CODES.has(code)) {
      this.noteProblem(`peer refused the connection (code ${code}): ${reason}`);
    } else if (wasReady) {
      this.o.logger.info({ peer: this.peer, code, reason }, "connection to peer lost");
    }
    const delay = this.backoff.next();
    this.stats.reconnects++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.dial();
    }, delay);
  }

  private reportSnapshot(ok: boolean, reason: string): void {
    if (!ok) {
      this.stats.snapshotsFailed++;
      this.o.logger.warn({ peer: this.peer, reason }, "snapshot send failed");
    }
    const cb = this.o.onSnapshotStatus;
    if (cb === undefined) return;
    // Never re-enter the caller (send() runs inside the server's Ready handling).
    queueMicrotask(() => {
      if (!this.stopped) cb(this.peer, ok);
    });
  }

  /** Logs a connection problem at warn the first time it occurs in a row, then at debug. */
  private noteProblem(problem: string): void {
    if (problem === this.lastLoggedProblem) {
      this.o.logger.debug({ peer: this.peer, url: this.url, reason: problem }, "peer connection problem (repeated)");
      return;
    }
    this.lastLoggedProblem = problem;
    this.o.logger.warn({ peer: this.peer, url: this.url, reason: problem }, "peer connection problem");
  }

  private clearTimers(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.handshakeTimer = null;
    this.heartbeatTimer = null;
    this.pingSentAt = null;
  }
}

/** Sends a close frame and waits briefly for the peer's; then destroys the socket so no handle outlives us. */
export function closeGracefully(ws: WebSocket, code: number, reason: string): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, CLOSE_GRACE_MS);
    ws.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(code, reason);
  });
}
