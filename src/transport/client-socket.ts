// One client connection speaking the client protocol: hello/welcome, requests matched to replies by id, and
// pushed frames handed to a callback. Used by a follower forwarding writes to the leader and by the client
// library (src/client), which adds endpoint selection, retries and sessions on top.

import WebSocket from "ws";
import {
  CLIENT_PATH,
  PROTOCOL_VERSION,
  decodeServerFrame,
  encodeFrame,
  type HelloFrame,
  type PushFrame,
  type WelcomeFrame,
} from "./protocol.js";
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
  /** wss: CA to trust; cert and key when the member requires client certificates (mutual TLS). */
  tls?: { ca?: string | Buffer | (string | Buffer)[]; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean };
}

interface Pending {
  op: string;
  /** The request frame's size: if the member closes for size (1009), the largest is the culprit. */
  bytes: number;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

/** WebSocket close code "message too big": the member's ws layer refused a frame over its payload limit. */
const CLOSE_TOO_BIG = 1009;

export class ClientSocket {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedReason: string | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  welcome!: WelcomeFrame;

  private constructor(
    private readonly ws: WebSocket,
    /** The member's client URL, for messages. */
    readonly url: string,
    private readonly opts: ClientSocketOptions,
  ) {}

  /** Connect to a member's client URL (ws://host:port) and complete the handshake. */
  static connect(url: string, opts: ClientSocketOptions = {}): Promise<ClientSocket> {
    const target = url.replace(/\/+$/, "") + CLIENT_PATH;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(target, { perMessageDeflate: false, ...(opts.tls ?? {}) });
      ws.binaryType = "nodebuffer";
      const sock = new ClientSocket(ws, url, opts);
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new RequestError({ code: "UNAVAILABLE", message: `could not connect to ${url} within ${opts.connectTimeoutMs ?? 5000} ms` }));
      }, opts.connectTimeoutMs ?? 5000);
      let greeted = false;
      ws.on("open", () => ws.send(encodeFrame({ type: "hello", protocol: PROTOCOL_VERSION, ...(opts.hello ?? {}) })));
      ws.on("message", (data: Buffer) => {
        let frame;
        try {
          frame = decodeServerFrame(data);
        } catch {
          return;
        }
        if (!greeted) {
          if ("type" in frame && frame.type === "welcome") {
            greeted = true;
            clearTimeout(timer);
            sock.welcome = frame;
            sock.startHeartbeat();
            resolve(sock);
          } else if ("type" in frame && frame.type === "error") {
            clearTimeout(timer);
            reject(new RequestError(frame.error));
            ws.close();
          }
          return;
        }
        sock.onFrame(frame);
      });
      ws.on("error", (e) => {
        if (!greeted) {
          clearTimeout(timer);
          reject(new RequestError({ code: "UNAVAILABLE", message: `cannot reach ${url}: ${e.message}` }));
        }
      });
      ws.on("close", (code, reason) => {
        if (code === CLOSE_TOO_BIG) sock.failOversized();
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

  private onFrame(frame: ReturnType<typeof decodeServerFrame>): void {
    if ("id" in frame && typeof frame.id === "number") {
      const p = this.pending.get(frame.id);
      if (!p) return;
      this.pending.delete(frame.id);
      if ("error" in frame) p.reject(new RequestError(frame.error));
      else p.resolve(frame.ok);
    } else if ("type" in frame && frame.type === "push") {
      this.opts.onPush?.(frame);
    }
  }

  /**
   * The member closed the connection because a frame was too large (1009): frames go out in order and the member
   * refuses the first oversized one, so the largest request in flight is the one refused; it fails with
   * FRAME_TOO_LARGE (not retryable) while the others fail as for any lost connection.
   */
  private failOversized(): void {
    let culprit: [number, Pending] | undefined;
    for (const entry of this.pending) if (!culprit || entry[1].bytes > culprit[1].bytes) culprit = entry;
    if (!culprit) return;
    const [id, p] = culprit;
    this.pending.delete(id);
    const limit = this.welcome?.maxFrameBytes;
    p.reject(
      new RequestError({
        code: "FRAME_TOO_LARGE",
        message: `${p.op} request of ${p.bytes} bytes: ${this.url} closed the connection because a frame was too large (WebSocket 1009)${limit ? `; it accepts frames of at most ${limit} bytes` : ""}`,
      }),
    );
  }

  private onClosed(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    clearInterval(this.heartbeat);
    for (const p of this.pending.values()) p.reject(new RequestError({ code: "UNAVAILABLE", message: reason }));
    this.pending.clear();
    this.opts.onClose?.(reason);
  }

  get isOpen(): boolean {
    return this.closedReason === null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a request; resolves with its result or rejects with a RequestError. */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 0): Promise<T> {
    if (!this.isOpen) return Promise.reject(new RequestError({ code: "UNAVAILABLE", message: this.closedReason ?? "not connected" }));
    const id = this.nextId++;
    const frame = encodeFrame({ ...args, id, op });
    const limit = this.welcome.maxFrameBytes;
    if (limit !== undefined && frame.byteLength > limit) {
      // Refused here rather than sent: the member would refuse it (or close the connection, if far over).
      return Promise.reject(
        new RequestError({
          code: "FRAME_TOO_LARGE",
          message: `${op} request of ${frame.byteLength} bytes exceeds the limit of ${limit} bytes per request of ${this.url} (its --max-request-bytes)`,
        }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new RequestError({ code: "TIMEOUT", message: `${op} did not complete within ${timeoutMs} ms` }));
        }, timeoutMs);
      }
      this.pending.set(id, {
        op,
        bytes: frame.byteLength,
        resolve: (v) => {
          if (timer) clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      });
      sendInTurn(this.ws, frame);
    });
  }

  close(): void {
    this.ws.close();
    this.onClosed("closed by the client");
  }
}
