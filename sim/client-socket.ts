// Client connections over the simulated network: what a WebSocket over TCP is to a member's gateway. A link is
// a pair of ordered byte streams — frames arrive in the order sent, never lost or duplicated, each after a
// network delay; a partition stalls them (they arrive once it heals), and a crash of either end closes the link
// (the other end learns it after a delay, as from a reset). `SimClientSocket` speaks the client protocol over
// one with the client library's own protocol code (src/transport/client-protocol.ts: hello, requests with ids,
// replies, pushes). Simulated clients use it, and members forwarding writes to the leader.

import type { ClientLink, GatewayConnection } from "../src/host/gateway.js";
import type { LeaderLink, Timer } from "../src/host/world.js";
import { ClientProtocol } from "../src/transport/client-protocol.js";
import type { HelloFrame, PushFrame, WelcomeFrame } from "../src/transport/protocol.js";
import { RequestError } from "../src/transport/request-error.js";
import type { Network } from "./network.js";

/** One end of a link: an endpoint of the network, and how events are run there (pauses and crashes apply). */
export interface LinkEnd {
  readonly endpoint: string;
  /** Runs `fn` at global time `at` at this end, unless this end is gone by then. */
  at(at: number, fn: () => void): void;
  /** Global time now. */
  now(): number;
}

/** Re-checks a stalled delivery this often (virtual ms). */
const STALL_RETRY = 50;

/**
 * One direction of a link: frames in order, each after a delay, stalled while the link is cut. Frames are
 * delivered from the head of a queue only, so a frame that reaches the end of a cut before an earlier one
 * (whose retry happens to come later) still waits for it: a TCP stream never reorders.
 */
class Direction {
  /** Global time the last frame queued here arrives (a later one never arrives before it). */
  private lastArrival = 0;
  /** Bytes sent and not yet delivered. */
  inFlight = 0;
  private readonly queue: { bytes: number; deliver: () => void; arrived: boolean }[] = [];
  private stalled = false;

  constructor(
    private readonly net: Network,
    private readonly from: LinkEnd,
    private readonly to: LinkEnd,
    private readonly isOpen: () => boolean,
  ) {}

  send(bytes: number, deliver: () => void): void {
    this.inFlight += bytes;
    const arrival = Math.max(this.from.now() + this.net.delay(), this.lastArrival);
    this.lastArrival = arrival;
    const frame = { bytes, deliver, arrived: false };
    this.queue.push(frame);
    this.to.at(arrival, () => {
      frame.arrived = true;
      this.drain();
    });
  }

  private drain(): void {
    while (this.isOpen() && this.queue.length > 0 && this.queue[0].arrived && !this.stalled) {
      if (this.net.isCut(this.from.endpoint, this.to.endpoint)) {
        this.stalled = true;
        this.to.at(this.to.now() + STALL_RETRY, () => {
          this.stalled = false;
          this.drain();
        });
        return;
      }
      const f = this.queue.shift()!;
      this.inFlight -= f.bytes;
      f.deliver();
    }
  }
}

/**
 * A connection from `client` to a member's gateway. Frames the member sends go to `onFrame`; a close (by
 * either side, or a crash of the member) reaches the other side after a delay.
 */
export class SimLink {
  private open = true;
  private readonly toServer: Direction;
  private readonly toClient: Direction;
  private server: GatewayConnection | null = null;
  onFrame: (frame: Uint8Array) => void = () => {};
  onClose: (reason: string) => void = () => {};

  constructor(
    net: Network,
    private readonly client: LinkEnd,
    private readonly serverEnd: LinkEnd,
  ) {
    this.toServer = new Direction(net, client, serverEnd, () => this.open);
    this.toClient = new Direction(net, serverEnd, client, () => this.open);
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** The member's endpoint, for messages. */
  get serverEndpoint(): string {
    return this.serverEnd.endpoint;
  }

  /** The member's side, as its gateway sees it. */
  serverSide(): ClientLink {
    return {
      remote: this.client.endpoint,
      // Frames are never changed once encoded (the gateway decodes with copyBuffers): no copy needed.
      send: (frame) => {
        if (this.open) this.toClient.send(frame.byteLength, () => this.onFrame(frame));
      },
      bufferedBytes: () => this.toClient.inFlight,
      close: (code, reason) => this.close(`closed by the member (${code}: ${reason})`, "server"),
    };
  }

  /** The gateway accepted the connection: frames from the client go to it. */
  attach(server: GatewayConnection): void {
    this.server = server;
  }

  /** The client sends a frame to the member. */
  send(frame: Uint8Array): void {
    if (this.open) this.toServer.send(frame.byteLength, () => this.server?.receive(frame, true));
  }

  /**
   * Closes the link. Each side learns it after a delay (`reason` for the client); a side that is gone (a
   * crashed member) learns nothing.
   */
  close(reason: string, by: "client" | "server" | "crash"): void {
    if (!this.open) return;
    this.open = false;
    const server = this.server;
    if (by !== "server") this.serverEnd.at(this.serverEnd.now() + 1, () => server?.closed());
    else server?.closed();
    if (by !== "client") this.client.at(this.client.now() + 1, () => this.onClose(reason));
  }
}

export interface SimSocketOptions {
  hello: Omit<HelloFrame, "type" | "protocol">;
  /** Timers of whoever holds the socket (a client's, or a member's own clock for a forwarding link). */
  setTimer(ms: number, fn: () => void): Timer;
  onPush?(frame: PushFrame): void;
  onClose?(reason: string): void;
  connectTimeoutMs: number;
}

/** The client protocol (the code ClientSocket runs over a WebSocket) over a SimLink. */
export class SimClientSocket implements LeaderLink {
  private constructor(
    private readonly link: SimLink,
    private readonly protocol: ClientProtocol,
  ) {}

  get welcome(): WelcomeFrame {
    return this.protocol.welcome!;
  }

  /** Opens `link` and completes the handshake; rejects with UNAVAILABLE when the member is unreachable. */
  static connect(link: SimLink, opts: SimSocketOptions): Promise<SimClientSocket> {
    const protocol = new ClientProtocol({ send: (frame) => link.send(frame), setTimer: opts.setTimer, peer: link.serverEndpoint, onPush: opts.onPush, onClose: opts.onClose });
    const sock = new SimClientSocket(link, protocol);
    return new Promise((resolve, reject) => {
      const timer = opts.setTimer(opts.connectTimeoutMs, () => {
        if (protocol.welcome !== null) return;
        link.close("connect timeout", "client");
        reject(new RequestError({ code: "UNAVAILABLE", message: `could not connect within ${opts.connectTimeoutMs} ms` }));
      });
      link.onFrame = (data) => {
        const greeting = protocol.receive(data);
        if (greeting === null) return;
        timer.cancel();
        if ("welcome" in greeting) {
          resolve(sock);
        } else {
          reject(greeting.refused);
          link.close("refused", "client");
        }
      };
      link.onClose = (reason) => {
        if (protocol.welcome === null) {
          timer.cancel();
          reject(new RequestError({ code: "UNAVAILABLE", message: reason }));
        }
        protocol.close(reason);
      };
      protocol.hello(opts.hello);
    });
  }

  get isOpen(): boolean {
    return !this.protocol.closed && this.link.isOpen;
  }

  request<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 0): Promise<T> {
    if (!this.link.isOpen && !this.protocol.closed) return Promise.reject(new RequestError({ code: "UNAVAILABLE", message: "not connected" }));
    return this.protocol.request<T>(op, args, timeoutMs);
  }

  close(): void {
    this.link.close("closed by the client", "client");
    this.protocol.close("closed by the client");
  }
}
