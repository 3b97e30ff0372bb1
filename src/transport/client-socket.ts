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
  /** wss: CA to trust; cert and key when the member requires client certificates (mutual TLS). */
  tls?: { ca?: string | Buffer | (string | Buffer)[]; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean };
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

export class ClientSocket {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedReason: string | null = null;
  welcome!: WelcomeFrame;

  private constructor(
    private readonly ws: WebSocket,
    private readonly opts: ClientSocketOptions,
  ) {}

  /** Connect to a member's client URL (ws://host:port) and complete the handshake. */
  static connect(url: string, opts: ClientSocketOptions = {}): Promise<ClientSocket> {
    const target = url.replace(/\/+$/, "") + CLIENT_PATH;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(target, { perMessageDeflate: false, ...(opts.tls ?? {}) });
      ws.binaryType = "nodebuffer";
      const sock = new ClientSocket(ws, opts);
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
      ws.on("close", (code, reason) => sock.onClosed(`connection to ${url} closed (${code}${reason.length ? ": " + reason.toString() : ""})`));
    });
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

  private onClosed(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
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
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new RequestError({ code: "TIMEOUT", message: `${op} did not complete within ${timeoutMs} ms` }));
        }, timeoutMs);
      }
      this.pending.set(id, {
        resolve: (v) => {
          if (timer) clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      });
      sendInTurn(this.ws, encodeFrame({ ...args, id, op }));
    });
  }

  close(): void {
    this.ws.close();
    this.onClosed("closed by the client");
  }
}
