// The client port's WebSockets (path /concord/v1, sharing the HTTP server with /health, /ready, /metrics and
// /status): each connection's frames go to the host's ClientGateway (src/host/gateway.ts), which owns
// everything about what they mean.

import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
import { WebSocketServer, type WebSocket } from "ws";
import type { ClientGateway } from "../host/gateway.js";
import { CLIENT_PATH } from "./protocol.js";
import { sendInTurn } from "./turn-batching.js";

export interface WsGatewayOptions {
  server: HttpServer | HttpsServer;
  gateway: ClientGateway;
  /** Frames above this are refused by the gateway with FRAME_TOO_LARGE; ws closes only far larger ones. */
  maxFrameBytes: number;
  logger: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
}

/** How far over maxFrameBytes a frame may be and still be read, to answer it with a typed error. */
const OVERSIZE_ANSWER_MARGIN = 16 * 1024;

export class WsGateway {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();

  constructor(private readonly opts: WsGatewayOptions) {
    this.wss = new WebSocketServer({
      server: opts.server,
      path: CLIENT_PATH,
      // Frames a little over the limit are read and answered FRAME_TOO_LARGE (with their id), keeping the
      // connection; beyond this margin ws closes it with 1009 before buffering the frame (logged below).
      maxPayload: opts.maxFrameBytes + OVERSIZE_ANSWER_MARGIN,
      perMessageDeflate: false,
    });
    this.wss.on("connection", (ws, req) => this.onConnection(ws, req));
    this.wss.on("error", (e) => opts.logger.warn({ err: e }, "client gateway error"));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const conn = this.opts.gateway.accept({
      remote,
      send: (frame) => {
        if (ws.readyState === ws.OPEN) sendInTurn(ws, frame);
      },
      bufferedBytes: () => ws.bufferedAmount,
      close: (code, reason) => ws.close(code, reason),
    });
    if (conn === null) return;
    this.sockets.add(ws);
    ws.on("message", (data, isBinary) => conn.receive(data as Buffer, isBinary));
    ws.on("close", () => {
      this.sockets.delete(ws);
      conn.closed();
    });
    ws.on("error", (e: Error & { code?: string }) => {
      if (e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        this.opts.logger.warn(
          { remote, limit: this.opts.maxFrameBytes },
          `closed a client connection (WebSocket 1009): it sent a frame over ${this.opts.maxFrameBytes + OVERSIZE_ANSWER_MARGIN} bytes; this member accepts frames of at most ${this.opts.maxFrameBytes} bytes`,
        );
      } else this.opts.logger.debug({ err: e, remote }, "client socket error");
    });
  }

  /** Drop every connection and stop accepting new ones (the http server is closed by its owner). */
  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
