// The client side of the client protocol over any ordered stream of frames, with no I/O of its own: the
// hello/welcome handshake, requests matched to replies by id (each with an optional timeout), pushes handed to a
// callback, refusal of a request over the member's announced frame limit, and the end of the connection failing
// every request in flight. ClientSocket runs it over a WebSocket (members forwarding to the leader, and the
// client library); the simulator runs it over its simulated links — the same code on both.

import { PROTOCOL_VERSION, decodeServerFrame, encodeFrame, type HelloFrame, type PushFrame, type WelcomeFrame } from "./protocol.js";
import { RequestError } from "./request-error.js";

export interface ProtocolTimer {
  cancel(): void;
}

export interface ClientProtocolOptions {
  /** Sends one frame to the member (in order). */
  send(frame: Uint8Array): void;
  /** Timers of whoever holds the connection (request timeouts). */
  setTimer(ms: number, fn: () => void): ProtocolTimer;
  /** Names the member in messages (its URL). */
  peer: string;
  onPush?(frame: PushFrame): void;
  onClose?(reason: string): void;
  /**
   * The error a request that timed out fails with (default: a TIMEOUT RequestError); set once per connection, so a
   * request allocates no handler.
   */
  onTimeout?(op: string, timeoutMs: number): Error;
}

/** What the handshake made of a frame: the member's welcome, its refusal, or nothing yet. */
export type Greeting = { welcome: WelcomeFrame } | { refused: RequestError } | null;

interface Pending {
  op: string;
  /** The request frame's size: if the member closes for size (1009), the largest is the culprit. */
  bytes: number;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ProtocolTimer | undefined;
}

export class ClientProtocol {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedReason: string | null = null;
  welcome: WelcomeFrame | null = null;

  constructor(private readonly opts: ClientProtocolOptions) {}

  /** Opens the handshake. */
  hello(hello: Omit<HelloFrame, "type" | "protocol"> = {}): void {
    this.opts.send(encodeFrame({ type: "hello", protocol: PROTOCOL_VERSION, ...hello }));
  }

  /**
   * A frame from the member. Before the welcome: returns the greeting it makes (frames that are neither are
   * ignored); after it: replies settle their requests, pushes go to onPush, and null is returned. Frames that do
   * not decode are ignored (a reply lost that way fails by its timeout or with the connection).
   */
  receive(data: Uint8Array): Greeting {
    let frame;
    try {
      frame = decodeServerFrame(data);
    } catch {
      return null;
    }
    if (this.welcome === null) {
      if ("type" in frame && frame.type === "welcome") {
        this.welcome = frame;
        return { welcome: frame };
      }
      if ("type" in frame && frame.type === "error") return { refused: new RequestError(frame.error) };
      return null;
    }
    if ("id" in frame && typeof frame.id === "number") {
      const p = this.pending.get(frame.id);
      if (!p) return null;
      this.pending.delete(frame.id);
      p.timer?.cancel();
      if ("error" in frame) p.reject(new RequestError(frame.error));
      else p.resolve(frame.ok);
    } else if ("type" in frame && frame.type === "push") {
      this.opts.onPush?.(frame);
    }
    return null;
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  /**
   * Send a request; resolves with its result or rejects with a RequestError. After `timeoutMs` (0: never) it
   * rejects with the connection's `onTimeout` error, by default a TIMEOUT RequestError.
   */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 0): Promise<T> {
    if (this.closedReason !== null || this.welcome === null) {
      return Promise.reject(new RequestError({ code: "UNAVAILABLE", message: this.closedReason ?? "not connected" }));
    }
    const id = this.nextId++;
    let frame: Uint8Array;
    try {
      // Object.assign, not `{ ...args, id, op }`: Node 20's V8 builds an object spread followed by more properties
      // on a slow path (~1 µs per added property, and the object then encodes several times slower); Node 24's does not.
      frame = encodeFrame(Object.assign({}, args, { id, op }));
    } catch (e) {
      // A value msgpack cannot carry (a library user's BigInt past 64 bits): the caller's input, not a failure of
      // the member. A member never gets here forwarding: decodeClientFrame refuses such a value on arrival.
      return Promise.reject(
        new RequestError({ code: "INVALID_ARGUMENT", message: `${op} request cannot be encoded: ${(e as Error).message}` }),
      );
    }
    const limit = this.welcome.maxFrameBytes;
    if (limit !== undefined && frame.byteLength > limit) {
      // Refused here rather than sent: the member would refuse it (or close the connection, if far over).
      return Promise.reject(
        new RequestError({
          code: "FRAME_TOO_LARGE",
          message: `${op} request of ${frame.byteLength} bytes exceeds the limit of ${limit} bytes per request of ${this.opts.peer} (its --max-request-bytes)`,
        }),
      );
    }
    // The entry holds the promise's own functions: a request allocates no closures of its own but its timer's.
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { op, bytes: frame.byteLength, resolve: resolve as (v: unknown) => void, reject, timer: undefined };
      if (timeoutMs > 0) p.timer = this.opts.setTimer(timeoutMs, () => this.expire(id, timeoutMs));
      this.pending.set(id, p);
      this.opts.send(frame);
    });
  }

  private expire(id: number, timeoutMs: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.reject(this.opts.onTimeout?.(p.op, timeoutMs) ?? new RequestError({ code: "TIMEOUT", message: `${p.op} did not complete within ${timeoutMs} ms` }));
  }

  /**
   * The member closed the connection because a frame was too large (WebSocket 1009): frames go out in order and
   * the member refuses the first oversized one, so the largest request in flight is the one refused; it fails
   * with FRAME_TOO_LARGE (not retryable) while the others fail as for any lost connection.
   */
  failOversized(): void {
    let culprit: [number, Pending] | undefined;
    for (const entry of this.pending) if (!culprit || entry[1].bytes > culprit[1].bytes) culprit = entry;
    if (!culprit) return;
    const [id, p] = culprit;
    this.pending.delete(id);
    p.timer?.cancel();
    const limit = this.welcome?.maxFrameBytes;
    p.reject(
      new RequestError({
        code: "FRAME_TOO_LARGE",
        message: `${p.op} request of ${p.bytes} bytes: ${this.opts.peer} closed the connection because a frame was too large (WebSocket 1009)${limit ? `; it accepts frames of at most ${limit} bytes` : ""}`,
      }),
    );
  }

  /** The connection ended: every request in flight fails with UNAVAILABLE naming `reason`; onClose once. */
  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const p of this.pending.values()) {
      p.timer?.cancel();
      p.reject(new RequestError({ code: "UNAVAILABLE", message: reason }));
    }
    this.pending.clear();
    this.opts.onClose?.(reason);
  }
}
