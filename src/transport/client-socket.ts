// One client connection over a WebSocket: the client protocol (client-protocol.ts) plus what the socket adds —
// connecting with a timeout, pings that notice a member that stopped answering, and a close for size (1009)
// failing the request that caused it. Used by a follower forwarding writes to the leader and by the client
// library (src/client), which adds endpoint selection, retries and sessions on top.

import WebSocket from "ws";
import { ClientProtocol } from "./client-protocol.js";
import { CLIENT_PATH, type HelloFrame, type PushFrame, type WelcomeFrame } from "./protocol.js";
import { RequestError } from "./request-error.js";
import { sendInTurn } from "./turn-batching.js";

export { RequestError } from "./request-error.js";

export interface ClientSocketOptions {
  hello?: Omit<HelloFrame, "type" | "protocol">;
  onPush?(frame: PushFrame): void;
  onClose?(reason: string): void;
  connectTimeoutMs?: number;
  /**
   * Liveness check (ms): ping the member this often, and drop the connection when nothing (no pong, no frame)
   * was heard for twice as long. A stopped or cut-off member keeps its TCP connection open, so without this a
   * connection that only waits for pushes (a watch) would never notice. 0 / undefined: no pings.
   */
  heartbeatMs?: number;
  /** The error a request that timed out fails with (default: a TIMEOUT RequestError). */
  onTimeout?(op: string, timeoutMs: number): Error;
  /** wss: CA to trust; cert and key when the member requires client certificates (mutual TLS). */
  tls?: { ca?: string | Buffer | (string | Buffer)[]; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean };
}

/** A request's timer: a class, so that each one is a single small object. */
class NodeTimer {
  constructor(private readonly t: NodeJS.Timeout) {}
  cancel(): void {
    clearTimeout(this.t);
  }
}

/** WebSocket close code "message too big": the member's ws layer refused a frame over its payload limit. */
const CLOSE_TOO_BIG = 1009;

export class ClientSocket {
  private heartbeat: NodeJS.Timeout | undefined;

  private constructor(
    private readonly ws: WebSocket,
    /** The member's client URL, for messages. */
    readonly url: string,
    private readonly opts: ClientSocketOptions,
    private readonly protocol: ClientProtocol,
  ) {}

  /** The member's welcome (set once connect resolves). */
  get welcome(): WelcomeFrame {
    return this.protocol.welcome!;
  }

  /** Connect to a member's client URL (ws://host:port) and complete the handshake. */
  static connect(url: string, opts: ClientSocketOptions = {}): Promise<ClientSocket> {
    const target = url.replace(/\/+$/, "") + CLIENT_PATH;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(target, { perMessageDeflate: false, ...(opts.tls ?? {}) });
      ws.binaryType = "nodebuffer";
      const protocol = new ClientProtocol({
        send: (frame) => sendInTurn(ws, frame),
        setTimer: (ms, fn) => new NodeTimer(setTimeout(fn, ms)),
        peer: url,
        onPush: opts.onPush,
        onClose: opts.onClose,
        onTimeout: opts.onTimeout,
      });
      const sock = new ClientSocket(ws, url, opts, protocol);
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new RequestError({ code: "UNAVAILABLE", message: `could not connect to ${url} within ${opts.connectTimeoutMs ?? 5000} ms` }));
      }, opts.connectTimeoutMs ?? 5000);
      ws.on("open", () => protocol.hello(opts.hello));
      ws.on("message", (data: Buffer) => {
        const greeting = protocol.receive(data);
        if (greeting === null) return;
        clearTimeout(timer);
        if ("welcome" in greeting) {
          sock.startHeartbeat();
          resolve(sock);
        } else {
          reject(greeting.refused);
          ws.close();
        }
      });
      ws.on("error", (e) => {
        if (protocol.welcome === null) {
          clearTimeout(timer);
          reject(new RequestError({ code: "UNAVAILABLE", message: `cannot reach ${url}: ${e.message}` }));
        }
      });
      ws.on("close", (code, reason) => {
        if (code === CLOSE_TOO_BIG) protocol.failOversized();
        sock.onClosed(`connection to ${url} closed (${code}${reason.length ? ": " + reason.toString() : ""})`);
      });
    });
  }

  private startHeartbeat(): void {
    const every = this.opts.heartbeatMs ?? 0;
    if (every <= 0) return;
    let lastHeard = performance.now();
    let lastTick = lastHeard;
    const heard = () => (lastHeard = performance.now());
    this.ws.on("message", heard);
    this.ws.on("pong", heard);
    this.heartbeat = setInterval(() => {
      const now = performance.now();
      // A tick far behind schedule means this process was busy: replies may be waiting unread in the socket,
      // so silence proves nothing this round.
      const late = now - lastTick > every * 1.5;
      lastTick = now;
      if (!late && now - lastHeard > every * 2) {
        const reason = `no reply from ${this.url} for ${Math.round(now - lastHeard)} ms (pinged every ${every} ms)`;
        this.ws.terminate();
        this.onClosed(reason);
        return;
      }
      if (late) lastHeard = Math.max(lastHeard, now - every);
      try {
        this.ws.ping();
      } catch {
        // closing: the close event follows
      }
    }, every);
    this.heartbeat.unref();
  }

  private onClosed(reason: string): void {
    clearInterval(this.heartbeat);
    this.protocol.close(reason);
  }

  get isOpen(): boolean {
    return !this.protocol.closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a request; resolves with its result or rejects with a RequestError (the `onTimeout` error after `timeoutMs`). */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 0): Promise<T> {
    // A socket closing under us fails the request at once (the protocol answers with the close's reason).
    if (this.ws.readyState !== WebSocket.OPEN && !this.protocol.closed) return Promise.reject(new RequestError({ code: "UNAVAILABLE", message: "not connected" }));
    return this.protocol.request<T>(op, args, timeoutMs);
  }

  close(): void {
    this.ws.close();
    this.onClosed("closed by the client");
  }
}
