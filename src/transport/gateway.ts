// The client gateway: a WebSocket server on the client port (sharing its http server with /health, /ready,
// /metrics, /status). It owns connections, the handshake, frame decoding, limits and backpressure; what a
// request means is the `GatewayHandler`'s business (src/server/service.ts).
//
// Limits (each answered with a typed error, never a crash): frame size, requests in flight per connection,
// connections per node, and a slow consumer — a connection whose socket buffer stays above the limit has its
// push streams cancelled with SLOW_CONSUMER rather than growing memory.

import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import { WebSocketServer, type WebSocket } from "ws";
import {
  PROTOCOL_VERSION,
  ProtocolError,
  decodeClientFrame,
  encodeFrame,
  isOp,
  type HelloFrame,
  type RequestFrame,
  type WireError,
} from "./protocol.js";
import { sendInTurn } from "./turn-batching.js";

export interface GatewayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** One client connection as the handler sees it. */
export interface ClientConnection {
  readonly id: number;
  readonly remote: string;
  /** Whatever the handler attached at hello (e.g. the token's permissions). */
  principal: unknown;
  /** Send a pushed event on `stream`; returns false if the connection is gone or too slow. */
  push(stream: number, event: unknown): boolean;
  /** Called when the connection closes (streams clean up). */
  onClose(fn: () => void): void;
  close(code: number, reason: string): void;
}

export interface GatewayHandler {
  /** Accept or refuse a hello; returns the principal, or throws ProtocolError. */
  hello(conn: ClientConnection, hello: HelloFrame): { principal: unknown; welcome: Record<string, unknown> };
  /** Serve one request; the result (or a thrown error) is sent back with the request's id. */
  handle(conn: ClientConnection, req: RequestFrame): Promise<unknown> | unknown;
  /** Map an error thrown by `handle` to a wire error. */
  toWireError(e: unknown): WireError;
}

export interface GatewayOptions {
  server: HttpServer | HttpsServer;
  handler: GatewayHandler;
  logger: GatewayLogger;
  maxFrameBytes: number;
  maxInflightPerConnection: number;
  maxConnections: number;
  /** Socket buffer above which pushes are refused and streams cancelled. Default 8 MiB. */
  maxBufferedBytes?: number;
  path?: string;
  /** Told of every answered request: its op (a known op, or "unknown"), the result code ("OK") and duration. */
  onRequest?(op: string, code: string, seconds: number): void;
}

export const CLIENT_PATH = "/concord/v1";

/** How far over maxFrameBytes a frame may be and still be read, to answer it with a typed error. */
const OVERSIZE_ANSWER_MARGIN = 16 * 1024;

/**
 * A result may carry `[AFTER_REPLY]: () => void`: the gateway calls it right after sending the reply, so a
 * stream's first pushes (a watch's backlog) always follow the reply that tells the client the stream's id.
 */
export const AFTER_REPLY: unique symbol = Symbol("afterReply");

interface ConnState extends ClientConnection {
  ws: WebSocket;
  greeted: boolean;
  inflight: number;
  closers: (() => void)[];
}

export class ClientGateway {
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<ConnState>();
  private nextId = 1;
  readonly stats = { connections: 0, refused: 0, requests: 0, errors: 0, malformed: 0, slowConsumers: 0 };

  constructor(private readonly opts: GatewayOptions) {
    this.wss = new WebSocketServer({
      server: opts.server,
      path: opts.path ?? CLIENT_PATH,
      // Frames a little over the limit are read and answered FRAME_TOO_LARGE (with their id), keeping the
      // connection; beyond this margin ws closes it with 1009 before buffering the frame (logged below).
      maxPayload: opts.maxFrameBytes + OVERSIZE_ANSWER_MARGIN,
      perMessageDeflate: false,
    });
    this.wss.on("connection", (ws, req) => this.onConnection(ws, req));
    this.wss.on("error", (e) => opts.logger.warn({ err: e }, "client gateway error"));
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    if (this.conns.size >= this.opts.maxConnections) {
      this.stats.refused++;
      const error: WireError = { code: "TOO_MANY_CONNECTIONS", message: `this node serves at most ${this.opts.maxConnections} connections; try another member` };
      ws.send(encodeFrame({ type: "error", error }));
      ws.close(4003, "too many connections");
      return;
    }
    const maxBuffered = this.opts.maxBufferedBytes ?? 8 << 20;
    const conn: ConnState = {
      id: this.nextId++,
      remote,
      principal: undefined,
      ws,
      greeted: false,
      inflight: 0,
      closers: [],
      push: (stream, event) => {
        if (ws.readyState !== ws.OPEN) return false;
        if (ws.bufferedAmount > maxBuffered) {
          this.stats.slowConsumers++;
          return false;
        }
        sendInTurn(ws, encodeFrame({ type: "push", stream, event }));
        return true;
      },
      onClose: (fn) => conn.closers.push(fn),
      close: (code, reason) => ws.close(code, reason),
    };
    this.conns.add(conn);
    this.stats.connections++;
    ws.on("message", (data, isBinary) => this.onFrame(conn, data as Buffer, isBinary));
    ws.on("close", () => {
      this.conns.delete(conn);
      for (const fn of conn.closers) {
        try {
          fn();
        } catch (e) {
          this.opts.logger.warn({ err: e }, "error while cleaning up a client connection");
        }
      }
    });
    ws.on("error", (e: Error & { code?: string }) => {
      if (e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        this.stats.malformed++;
        this.opts.logger.warn(
          { remote, limit: this.opts.maxFrameBytes },
          `closed a client connection (WebSocket 1009): it sent a frame over ${this.opts.maxFrameBytes + OVERSIZE_ANSWER_MARGIN} bytes; this member accepts frames of at most ${this.opts.maxFrameBytes} bytes`,
        );
      } else this.opts.logger.debug({ err: e, remote }, "client socket error");
    });
  }

  private sendError(conn: ConnState, id: number | undefined, error: WireError): void {
    this.stats.errors++;
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    sendInTurn(conn.ws, encodeFrame(id === undefined ? { type: "error", error } : { id, error }));
  }

  private onFrame(conn: ConnState, data: Buffer, isBinary: boolean): void {
    let frame: HelloFrame | RequestFrame;
    try {
      if (!isBinary) throw new ProtocolError("MALFORMED_FRAME", "text frames are not accepted; send msgpack in binary frames");
      frame = decodeClientFrame(data, this.opts.maxFrameBytes);
    } catch (e) {
      this.stats.malformed++;
      const err = e instanceof ProtocolError ? e : new ProtocolError("MALFORMED_FRAME", String(e));
      if (err.code === "FRAME_TOO_LARGE") {
        this.opts.logger.warn({ remote: conn.remote, bytes: data.byteLength, limit: this.opts.maxFrameBytes }, `refused a client frame: ${err.message}`);
      }
      this.sendError(conn, err.requestId, { code: err.code, message: err.message });
      return;
    }
    if ((frame as HelloFrame).type === "hello") {
      this.onHello(conn, frame as HelloFrame);
      return;
    }
    const req = frame as RequestFrame;
    if (!conn.greeted) {
      this.sendError(conn, req.id, { code: "PROTOCOL_MISMATCH", message: `send a hello frame first: { type: "hello", protocol: ${PROTOCOL_VERSION} }` });
      return;
    }
    if (conn.inflight >= this.opts.maxInflightPerConnection) {
      this.sendError(conn, req.id, { code: "TOO_MANY_REQUESTS", message: `at most ${this.opts.maxInflightPerConnection} requests may be in flight per connection` });
      return;
    }
    this.stats.requests++;
    conn.inflight++;
    const started = performance.now();
    // Bounded label values: a client cannot grow the metrics with made-up op names.
    const op = isOp(req.op) ? req.op : "unknown";
    let result: unknown;
    try {
      result = this.opts.handler.handle(conn, req);
    } catch (e) {
      this.replyError(conn, req.id, e, op, started);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (v) => this.reply(conn, req.id, v, op, started),
        (e) => this.replyError(conn, req.id, e, op, started),
      );
    } else {
      this.reply(conn, req.id, result, op, started);
    }
  }

  private reply(conn: ConnState, id: number, value: unknown, op: string, started: number): void {
    conn.inflight--;
    this.opts.onRequest?.(op, "OK", (performance.now() - started) / 1000);
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const after = value !== null && typeof value === "object" ? (value as { [AFTER_REPLY]?: () => void })[AFTER_REPLY] : undefined;
    sendInTurn(conn.ws, encodeFrame({ id, ok: value === undefined ? null : value }));
    after?.();
  }

  private replyError(conn: ConnState, id: number, e: unknown, op: string, started: number): void {
    conn.inflight--;
    const error = this.opts.handler.toWireError(e);
    this.opts.onRequest?.(op, error.code, (performance.now() - started) / 1000);
    this.sendError(conn, id, error);
  }

  private onHello(conn: ConnState, hello: HelloFrame): void {
    if (hello.protocol !== PROTOCOL_VERSION) {
      this.sendError(conn, undefined, {
        code: "PROTOCOL_MISMATCH",
        message: `protocol ${hello.protocol} is not supported; this server speaks protocol ${PROTOCOL_VERSION}`,
      });
      conn.ws.close(4002, "protocol mismatch");
      return;
    }
    try {
      const { principal, welcome } = this.opts.handler.hello(conn, hello);
      conn.principal = principal;
      conn.greeted = true;
      conn.ws.send(encodeFrame({ type: "welcome", protocol: PROTOCOL_VERSION, ...welcome, maxFrameBytes: this.opts.maxFrameBytes }));
    } catch (e) {
      const err = this.opts.handler.toWireError(e);
      this.opts.logger.info({ remote: conn.remote, code: err.code }, `refused a client: ${err.message}`);
      this.sendError(conn, undefined, err);
      conn.ws.close(4001, err.code);
    }
  }

  /** Close every connection and stop accepting new ones (the http server is closed by its owner). */
  async close(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
