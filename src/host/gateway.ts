// The client gateway: every client connection's frames, whatever carries them (a WebSocket in a member,
// src/transport/ws-gateway.ts; the simulated network in sim/). It owns the handshake, frame decoding, limits
// and backpressure; what a request means is the `GatewayHandler`'s business (service.ts).
//
// Limits (each answered with a typed error, never a crash): frame size, requests in flight per connection,
// connections per member, and a slow consumer — a connection whose outgoing buffer stays above the limit has
// its push streams cancelled with SLOW_CONSUMER rather than growing memory.

import { PROTOCOL_VERSION, ProtocolError, decodeClientFrame, encodeFrame, type HelloFrame, type RequestFrame, type WireError } from "../transport/protocol.js";
import type { Clock } from "./world.js";

/** What carries one client connection's frames. */
export interface ClientLink {
  readonly remote: string;
  /** Queue one encoded frame (frames of one turn may leave together). */
  send(frame: Uint8Array): void;
  /** Bytes queued and not yet written to the peer (slow-consumer detection). */
  bufferedBytes(): number;
  close(code: number, reason: string): void;
}

export interface GatewayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** One client connection as the handler sees it. */
export interface ClientConnection {
  readonly id: number;
  readonly remote: string;
  /** Whatever the handler attached at hello (the connection's principal). */
  principal: unknown;
  /** Send a pushed event on `stream`; returns false if the connection is gone or too slow. */
  push(stream: number, event: unknown): boolean;
  /** A stream's last push (its end, or the error that ends it): sent even to a slow consumer, so no stream stops silently. */
  finish(stream: number, event: unknown): void;
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
  /** The op name to count a request under (a bounded set: a client cannot grow the metrics with made-up names). */
  metricOp(op: string): string;
}

export interface GatewayOptions {
  handler: GatewayHandler;
  logger: GatewayLogger;
  clock: Clock;
  maxFrameBytes: number;
  maxInflightPerConnection: number;
  maxConnections: number;
  /** Outgoing buffer above which pushes are refused and streams cancelled. */
  maxBufferedBytes: number;
  /** Told of every answered request: its op, the result code ("OK") and duration. */
  onRequest?(op: string, code: string, seconds: number): void;
  /** Told of every connection refused: over maxConnections, a hello refused (auth), an unsupported protocol. */
  onRefused?(reason: RefusalReason): void;
}

export type RefusalReason = "limit" | "auth" | "protocol";

/** What the transport feeds a connection it accepted. */
export interface GatewayConnection {
  receive(data: Uint8Array, isBinary: boolean): void;
  /** The link closed (either side). */
  closed(): void;
}

/**
 * A result may carry `[AFTER_REPLY]: () => void`: the gateway calls it right after sending the reply, so a
 * stream's first pushes (a watch's backlog) always follow the reply that tells the client the stream's id.
 */
export const AFTER_REPLY: unique symbol = Symbol("afterReply");

interface ConnState extends ClientConnection {
  link: ClientLink;
  open: boolean;
  greeted: boolean;
  inflight: number;
  closers: (() => void)[];
}

export class ClientGateway {
  private readonly conns = new Set<ConnState>();
  private nextId = 1;
  readonly stats = { connections: 0, refused: 0, requests: 0, errors: 0, malformed: 0, slowConsumers: 0 };

  constructor(private readonly opts: GatewayOptions) {}

  get connectionCount(): number {
    return this.conns.size;
  }

  /** A new connection: served, or refused (TOO_MANY_CONNECTIONS is sent and the link closed) → null. */
  accept(link: ClientLink): GatewayConnection | null {
    if (this.conns.size >= this.opts.maxConnections) {
      this.stats.refused++;
      this.opts.onRefused?.("limit");
      const error: WireError = { code: "TOO_MANY_CONNECTIONS", message: `this node serves at most ${this.opts.maxConnections} connections; try another member` };
      link.send(encodeFrame({ type: "error", error }));
      link.close(4003, "too many connections");
      return null;
    }
    const conn: ConnState = {
      id: this.nextId++,
      remote: link.remote,
      principal: undefined,
      link,
      open: true,
      greeted: false,
      inflight: 0,
      closers: [],
      push: (stream, event) => {
        if (!conn.open) return false;
        if (link.bufferedBytes() > this.opts.maxBufferedBytes) {
          this.stats.slowConsumers++;
          return false;
        }
        link.send(encodeFrame({ type: "push", stream, event }));
        return true;
      },
      finish: (stream, event) => {
        if (conn.open) link.send(encodeFrame({ type: "push", stream, event }));
      },
      onClose: (fn) => conn.closers.push(fn),
      close: (code, reason) => link.close(code, reason),
    };
    this.conns.add(conn);
    this.stats.connections++;
    return {
      receive: (data, isBinary) => {
        if (conn.open) this.onFrame(conn, data, isBinary);
      },
      closed: () => this.onClosed(conn),
    };
  }

  /** Close every connection (a member stopping). */
  closeAll(): void {
    for (const c of [...this.conns]) {
      c.link.close(1001, "member stopping");
      this.onClosed(c);
    }
  }

  private onClosed(conn: ConnState): void {
    if (!conn.open) return;
    conn.open = false;
    this.conns.delete(conn);
    for (const fn of conn.closers) {
      try {
        fn();
      } catch (e) {
        this.opts.logger.warn({ err: e }, "error while cleaning up a client connection");
      }
    }
  }

  private sendError(conn: ConnState, id: number | undefined, error: WireError): void {
    this.stats.errors++;
    if (!conn.open) return;
    conn.link.send(encodeFrame(id === undefined ? { type: "error", error } : { id, error }));
  }

  private onFrame(conn: ConnState, data: Uint8Array, isBinary: boolean): void {
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
    const started = this.opts.clock.now();
    const op = this.opts.handler.metricOp(req.op);
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
    this.opts.onRequest?.(op, "OK", (this.opts.clock.now() - started) / 1000);
    if (!conn.open) return;
    const after = value !== null && typeof value === "object" ? (value as { [AFTER_REPLY]?: () => void })[AFTER_REPLY] : undefined;
    conn.link.send(encodeFrame({ id, ok: value === undefined ? null : value }));
    after?.();
  }

  private replyError(conn: ConnState, id: number, e: unknown, op: string, started: number): void {
    conn.inflight--;
    const error = this.opts.handler.toWireError(e);
    this.opts.onRequest?.(op, error.code, (this.opts.clock.now() - started) / 1000);
    this.sendError(conn, id, error);
  }

  private onHello(conn: ConnState, hello: HelloFrame): void {
    if (hello.protocol !== PROTOCOL_VERSION) {
      this.sendError(conn, undefined, {
        code: "PROTOCOL_MISMATCH",
        message: `protocol ${hello.protocol} is not supported; this server speaks protocol ${PROTOCOL_VERSION}`,
      });
      conn.link.close(4002, "protocol mismatch");
      this.opts.onRefused?.("protocol");
      return;
    }
    try {
      const { principal, welcome } = this.opts.handler.hello(conn, hello);
      conn.principal = principal;
      conn.greeted = true;
      conn.link.send(encodeFrame({ type: "welcome", protocol: PROTOCOL_VERSION, ...welcome, maxFrameBytes: this.opts.maxFrameBytes }));
    } catch (e) {
      const err = this.opts.handler.toWireError(e);
      this.opts.logger.info({ remote: conn.remote, code: err.code }, `refused a client: ${err.message}`);
      this.sendError(conn, undefined, err);
      conn.link.close(4001, err.code);
      this.opts.onRefused?.("auth");
    }
  }
}
