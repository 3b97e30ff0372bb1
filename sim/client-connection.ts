// A simulated client's connection to the cluster, as the client library keeps one: connected to one member at a
// time (any member: followers forward writes), moving to the leader a member names or to another member when
// its member is gone, with a timeout on every request. Requests and replies are protocol frames
// (client-socket.ts); push streams are routed to whoever opened them.

import type { NodeId } from "../src/raft/types.js";
import { RETRYABLE, type PushFrame } from "../src/transport/protocol.js";
import { RequestError } from "../src/transport/request-error.js";
import type { SimClientSocket } from "./client-socket.js";
import { SIM_ADMIN_TOKEN, TICK, type SimCluster, type SimContext } from "./cluster.js";
import { InvariantViolation } from "./invariants.js";

/** A client gives up on one attempt after this long. */
export const ATTEMPT_TIMEOUT = 10 * TICK;

export type Reply = { ok: true; value: unknown } | { ok: false; error: RequestError };

export class ClientConnection {
  private sock: SimClientSocket | null = null;
  private opening: Promise<SimClientSocket> | null = null;
  /** Handlers of this connection's push streams; a new connection starts with none. */
  private readonly streams = new Map<number, (event: unknown) => void>();
  /**
   * Pushes that arrived before their stream's handler: a reply and the stream's first push can arrive in one
   * delivery (a link that stalled and then drained), before the caller, resumed by the reply, has listened.
   * Kept until it listens, as a client library reading both from one socket read must; dropped once it unlistens.
   */
  private readonly early = new Map<number, unknown[]>();
  /** Streams the caller stopped listening to: their late pushes are not kept. */
  private readonly unlistened = new Set<number>();
  /** Told when the connection is lost (its streams are gone with it). */
  onLost: (() => void) | null = null;
  guess: NodeId;

  constructor(
    private readonly ctx: SimContext,
    private readonly cluster: SimCluster,
    readonly endpoint: string,
    /** A runtime user: every new socket authenticates as it before it is used. */
    private readonly user?: { name: string; password: string },
  ) {
    this.guess = ctx.rng.pick([...cluster.hosts.keys()]);
  }

  log(line: () => string): void {
    this.ctx.log(line);
  }

  rngInt(lo: number, hi: number): number {
    return this.ctx.rng.int(lo, hi);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.ctx.queue.push(this.ctx.now + ms, resolve));
  }

  /** Something to wait for: `until(t)` resolves at global time t, or as soon as `wake()` is called. */
  waiter(): { wake(): void; until(t: number): Promise<void> } {
    let done: (() => void) | null = null;
    let woken = false;
    return {
      wake: () => {
        woken = true;
        done?.();
      },
      until: (t) =>
        new Promise<void>((resolve) => {
          if (woken) return resolve();
          done = resolve;
          this.ctx.queue.push(Math.max(t, this.ctx.now), resolve);
        }),
    };
  }

  /** One attempt of `op` on the current member (connecting first if needed). */
  async call(op: string, args: Record<string, unknown>, timeoutMs = ATTEMPT_TIMEOUT): Promise<Reply> {
    let sock: SimClientSocket;
    try {
      sock = await this.socket();
    } catch (e) {
      this.moveOn(null);
      return { ok: false, error: toRequestError(e) };
    }
    try {
      return { ok: true, value: await sock.request(op, args, timeoutMs) };
    } catch (e) {
      const error = toRequestError(e);
      if (error.code === "INTERNAL") this.ctx.fail(new InvariantViolation("no internal errors", `${op} on ${this.guess}: ${error.message}`));
      if (error.code === "NOT_LEADER" || error.code === "UNAVAILABLE" || error.code === "SHUTTING_DOWN" || error.code === "TIMEOUT") this.moveOn(error);
      return { ok: false, error };
    }
  }

  /**
   * Retries `op` on retryable errors (moving between members) until it succeeds, fails for good, or `attempts`
   * run out; `lastSentAt` is when the attempt that was answered started.
   */
  async retry(op: string, args: Record<string, unknown>, attempts: number, timeoutMs = ATTEMPT_TIMEOUT): Promise<Reply & { lastSentAt: number }> {
    for (let n = 1; ; n++) {
      const lastSentAt = this.ctx.now;
      const r = await this.call(op, args, timeoutMs);
      if (r.ok || !RETRYABLE.has(r.error.code) || n >= attempts) return { ...r, lastSentAt };
      // No leader known: an election is under way; give it time instead of asking every member in turn.
      await this.sleep(r.error.leader ? this.ctx.rng.int(1, TICK / 5) : this.ctx.rng.int(TICK / 5, 2 * TICK));
    }
  }

  /** Routes pushes on `stream` to `fn` (until the connection is lost). */
  listen(stream: number, fn: (event: unknown) => void): void {
    this.streams.set(stream, fn);
    const early = this.early.get(stream);
    this.early.delete(stream);
    for (const event of early ?? []) fn(event);
  }

  unlisten(stream: number): void {
    this.streams.delete(stream);
    this.early.delete(stream);
    this.unlistened.add(stream);
  }

  /** Leave the current member: for the leader it named, or any live member. */
  moveOn(error: RequestError | null): void {
    const named = error?.leader ? new URL(error.leader).hostname : undefined;
    const live = this.cluster.liveHosts().map((h) => h.id);
    const next = named ?? (live.length > 0 ? this.ctx.rng.pick(live) : this.guess);
    if (next === this.guess && this.sock?.isOpen) return;
    this.guess = next;
    this.drop();
  }

  /** Move to a random live member (clients spread over members, followers included). */
  wander(): void {
    const live = this.cluster.liveHosts().map((h) => h.id);
    if (live.length === 0) return;
    const next = this.ctx.rng.pick(live);
    if (next === this.guess) return;
    this.guess = next;
    this.drop();
  }

  drop(): void {
    const sock = this.sock;
    this.sock = null;
    this.opening = null;
    if (sock) {
      sock.close();
      this.lost();
    }
  }

  private lost(): void {
    this.streams.clear();
    this.early.clear();
    this.unlistened.clear();
    this.onLost?.();
  }

  private socket(): Promise<SimClientSocket> {
    if (this.sock?.isOpen) return Promise.resolve(this.sock);
    if (this.opening) return this.opening;
    const target = this.guess;
    const connecting = this.cluster.connect(
      this.cluster.clientEnd(this.endpoint),
      target,
      // A runtime user authenticates on a connection without credentials; everyone else is the tokens file's admin.
      this.user ? {} : { token: SIM_ADMIN_TOKEN },
      (ms, fn) => {
        let cancelled = false;
        this.ctx.queue.push(this.ctx.now + ms, () => cancelled || fn());
        return { cancel: () => (cancelled = true) };
      },
      (frame: PushFrame) => {
        if (this.sock !== sockRef.current) return;
        const fn = this.streams.get(frame.stream);
        if (fn) fn(frame.event);
        else if (!this.unlistened.has(frame.stream)) this.early.set(frame.stream, [...(this.early.get(frame.stream) ?? []), frame.event]);
      },
      () => {
        if (this.sock !== sockRef.current || sockRef.current === null) return;
        this.sock = null;
        this.lost();
      },
    );
    const user = this.user;
    const opening = !user
      ? connecting
      : connecting.then(async (s) => {
          try {
            await s.request("authenticate", { name: user.name, password: user.password }, ATTEMPT_TIMEOUT);
          } catch (e) {
            s.close();
            throw e;
          }
          return s;
        });
    const sockRef: { current: SimClientSocket | null } = { current: null };
    this.opening = opening;
    opening.then(
      (s) => {
        if (this.opening !== opening) {
          s.close();
          return;
        }
        this.opening = null;
        this.sock = s;
        sockRef.current = s;
      },
      () => {
        if (this.opening === opening) this.opening = null;
      },
    );
    return opening;
  }
}

function toRequestError(e: unknown): RequestError {
  if (e instanceof RequestError) return e;
  return new RequestError({ code: "UNAVAILABLE", message: (e as Error)?.message ?? String(e) });
}
