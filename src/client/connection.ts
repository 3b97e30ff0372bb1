// The client's link to the cluster: one live ClientSocket at a time to some member, preferably the leader.
// When it drops, a background loop reconnects (jittered exponential backoff, cycling through the endpoints)
// and tells the stream owners (watches, observers, leases) so they resume on the new socket.
//
// Requests: `call()` retries retryable errors (docs/protocol.md: NOT_LEADER, UNAVAILABLE, TIMEOUT, …) until
// the caller's deadline. A write is safe to retry only because its session tag (clientId, seq) is part of
// `args` and stays the same across attempts: the server answers a duplicate from its session record.
//
// Pushes are routed by stream id. A push may arrive before the caller has seen the reply that named its
// stream (several frames decoded in one turn), so pushes for unknown streams wait in a bounded buffer until
// the stream is registered on the same socket.

import { performance } from "node:perf_hooks";
import { ClientSocket } from "../transport/client-socket.js";
import type { PushFrame } from "../transport/protocol.js";
import { ConcordError, clientError, toConcordError } from "./errors.js";

export interface TlsOptions {
  /** CA certificate(s) to trust (PEM). */
  ca?: string | Buffer;
  /** Client certificate and key (PEM), when members require them (--client-ca-file: mutual TLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Default true. Set false only for tests with self-signed certificates. */
  rejectUnauthorized?: boolean;
}

export interface ConnectionOptions {
  /** Bearer token: from the cluster's --auth-tokens-file, or a runtime user's (from authenticate). */
  token?: string;
  /**
   * A runtime user (concord user add) and its password: the client authenticates on its first connection and
   * presents the token it gets on later ones, authenticating again once a member refuses it (expired, or the
   * password changed).
   */
  user?: { name: string; password: string };
  tls?: TlsOptions;
  /** Default deadline of one operation, retries included (ms). Default 10 000. */
  timeoutMs?: number;
  /** First and longest reconnect backoff (ms). Defaults 50 and 1 000. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /**
   * Move to the leader when a member names it (default true). false pins the client to the member it reached
   * first (per-member status, serializable reads from a chosen member).
   */
  followLeader?: boolean;
  /** Longest wait for one reply before giving up on that member and retrying elsewhere. Default max(2 s, timeoutMs/3). */
  attemptTimeoutMs?: number;
}

export interface CallOptions {
  /** Deadline for this call, retries included (ms); 0 = no deadline (blocking ops such as lock waits). */
  timeoutMs?: number;
  /** Retry retryable errors (default true). */
  retry?: boolean;
  signal?: AbortSignal;
  /** Incremented each time the request is actually sent (lets a caller tell a first refusal from a retry). */
  sent?: { count: number };
}

/** A push consumer; `socketId` tells which socket the stream lives on. */
export type PushHandler = (event: unknown) => void;

/** Called with each new socket once it is connected (after a drop, or a leader switch). */
export type ReconnectListener = (socketId: number) => void;

/** Called when the live socket is lost (reconnecting starts) or the connection is closed (`isClosed`). */
export type DisconnectListener = () => void;

/** Called for pushes that carry `kind` (lock and election notices) whatever their stream. */
export type NoticeListener = (event: { kind: string; [k: string]: unknown }) => void;

const ORPHAN_PUSH_LIMIT = 10_000;

export class Connection {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  /** Longest wait for one reply before the member is presumed stuck (see callOnSocket). */
  readonly attemptTimeoutMs: number;
  private readonly opts: ConnectionOptions;
  private current: { socket: ClientSocket; id: number; url: string } | null = null;
  private connecting: Promise<void> | null = null;
  private nextSocketId = 1;
  private nextEndpoint = 0;
  private closed = false;
  /** Streams of the current socket: stream id → handler. Cleared when the socket changes. */
  private streams = new Map<number, PushHandler>();
  private orphans: PushFrame[] = [];
  private readonly reconnectListeners = new Set<ReconnectListener>();
  private readonly disconnectListeners = new Set<DisconnectListener>();
  private readonly noticeListeners = new Set<NoticeListener>();
  /** Wakes callers waiting for a socket. */
  private waiters: (() => void)[] = [];
  private lastError: ConcordError | null = null;
  /** A connect failure no retry can fix (bad token, protocol mismatch); every call fails with it. */
  private fatal: ConcordError | null = null;

  constructor(endpoints: readonly string[], opts: ConnectionOptions = {}) {
    this.endpoints = endpoints;
    this.opts = opts;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? Math.max(2000, Math.round(this.timeoutMs / 3));
  }

  /** Connects to the first reachable member (preferring the leader); rejects after timeoutMs. */
  async open(): Promise<void> {
    const deadline = performance.now() + this.timeoutMs;
    await this.ready(deadline);
  }

  get socketId(): number {
    return this.current?.id ?? 0;
  }

  get url(): string | null {
    return this.current?.url ?? null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onReconnect(fn: ReconnectListener): () => void {
    this.reconnectListeners.add(fn);
    return () => this.reconnectListeners.delete(fn);
  }

  onDisconnect(fn: DisconnectListener): () => void {
    this.disconnectListeners.add(fn);
    return () => this.disconnectListeners.delete(fn);
  }

  onNotice(fn: NoticeListener): () => void {
    this.noticeListeners.add(fn);
    return () => this.noticeListeners.delete(fn);
  }

  /** Routes pushes of `stream` on socket `socketId` to `handler` (and any that arrived early). */
  registerStream(socketId: number, stream: number, handler: PushHandler): void {
    if (socketId !== this.socketId) return; // that socket is gone; the owner resubscribes on reconnect
    this.streams.set(stream, handler);
    const early = this.orphans.filter((f) => f.stream === stream);
    if (early.length > 0) {
      this.orphans = this.orphans.filter((f) => f.stream !== stream);
      for (const f of early) handler(f.event);
    }
  }

  unregisterStream(socketId: number, stream: number): void {
    if (socketId === this.socketId) this.streams.delete(stream);
  }

  /**
   * Sends `op` and returns its result. Retryable failures are retried with backoff until the deadline; the
   * error then is the last one seen. `args` must already carry the session tag for writes.
   */
  call<T>(op: string, args: Record<string, unknown>, opts: CallOptions = {}): Promise<T> {
    return this.exchange<T>(op, args, opts, undefined);
  }

  /** As `call`, also telling which socket answered (streams live on that socket). */
  async callOnSocket<T>(
    op: string,
    args: Record<string, unknown>,
    opts: CallOptions = {},
  ): Promise<{ result: T; socketId: number }> {
    const answered = { socketId: 0 };
    const result = await this.exchange<T>(op, args, opts, answered);
    return { result, socketId: answered.socketId };
  }

  /**
   * The request and its retries; sets `answered.socketId` to the socket that answered. Every request of the
   * client goes through here, so it allocates little: one async frame, the protocol's promise and one timer.
   */
  private async exchange<T>(
    op: string,
    args: Record<string, unknown>,
    opts: CallOptions,
    answered: { socketId: number } | undefined,
  ): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity;
    const retry = opts.retry ?? true;
    for (let attempt = 0; ; attempt++) {
      this.checkUsable(opts.signal);
      const { socket, id } = this.liveSocket() ?? (await this.ready(deadline, opts.signal));
      // One attempt waits at most attemptTimeoutMs: a member that stopped answering (frozen process, silent
      // partition) keeps its socket open, so only a local deadline notices; the socket is then dropped and the
      // request retried elsewhere (writes keep their session seq). Blocking ops (no deadline) wait on the server.
      const remaining = deadline === Infinity ? 0 : Math.max(1, Math.ceil(deadline - performance.now()));
      const attemptMs = remaining === 0 ? 0 : Math.min(remaining, this.attemptTimeoutMs);
      if (opts.sent) opts.sent.count++;
      try {
        const result = await raceAbort(
          socket.request<T>(op, args, attemptMs),
          opts.signal,
        );
        if (answered) answered.socketId = id;
        return result;
      } catch (e) {
        const err = toConcordError(e);
        if (opts.signal?.aborted) throw abortError(opts.signal);
        if (!retry || !err.retryable) throw err;
        if (performance.now() >= deadline) throw err;
        if (
          err.code === "NOT_LEADER" &&
          err.leader &&
          this.opts.followLeader !== false &&
          this.current?.id === id &&
          err.leader !== this.current.url
        ) {
          this.switchTo(err.leader);
        }
        await sleep(Math.min(this.backoff(attempt), Math.max(0, deadline - performance.now())), opts.signal);
      }
    }
  }

  /**
   * A request on socket `socketId` (to `url`) got no reply within `ms`: the error it fails with. If that is the
   * current socket it is dropped, and the reconnect loop picks a member again.
   */
  private suspect(socketId: number, url: string, op: string, ms: number): ConcordError {
    const cur = this.current;
    if (cur && cur.id === socketId) {
      // Start with the next endpoint rather than the one that went quiet.
      const i = this.endpoints.indexOf(cur.url);
      if (i >= 0) this.nextEndpoint = i + 1;
      cur.socket.close();
    }
    return new ConcordError({ code: "TIMEOUT", message: `${op}: no reply from ${url} within ${ms} ms; reconnecting` });
  }

  /** Closes the socket and stops reconnecting. Pending calls fail with CLOSED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const cur = this.current;
    this.current = null;
    cur?.socket.close();
    for (const w of this.waiters.splice(0)) w();
    for (const fn of [...this.disconnectListeners]) fn();
  }

  // -----------------------------------------------------------------------------------------------------

  private checkUsable(signal?: AbortSignal): void {
    if (this.closed) throw clientError("CLOSED", "the client was closed");
    if (signal?.aborted) throw abortError(signal);
  }

  /** The current socket if it is open and no error stops the client from using it (else `ready` waits for one). */
  private liveSocket(): { socket: ClientSocket; id: number } | null {
    const cur = this.current;
    return cur !== null && cur.socket.isOpen && this.fatal === null ? cur : null;
  }

  /** The live socket, connecting if needed; waits until `deadline`. */
  private async ready(deadline: number, signal?: AbortSignal): Promise<{ socket: ClientSocket; id: number }> {
    for (;;) {
      this.checkUsable(signal);
      if (this.fatal) throw this.fatal;
      const live = this.liveSocket();
      if (live) return live;
      this.startConnecting();
      const left = deadline - performance.now();
      if (left <= 0) {
        const why = this.lastError ? `: ${this.lastError.message}` : "";
        throw new ConcordError({
          code: "UNAVAILABLE",
          message: `no member of ${this.endpoints.join(",")} reachable in time${why}`,
        });
      }
      await new Promise<void>((resolve) => {
        const t = left === Infinity ? undefined : setTimeout(done, left);
        const onAbort = () => done();
        signal?.addEventListener("abort", onAbort, { once: true });
        function done() {
          if (t) clearTimeout(t);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }
        this.waiters.push(done);
      });
    }
  }

  private startConnecting(): void {
    if (this.connecting || this.closed || this.fatal) return;
    this.connecting = this.connectLoop().finally(() => {
      this.connecting = null;
    });
  }

  /** Tries endpoints in turn with backoff until one answers (or the client is closed). */
  private async connectLoop(preferred?: string): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      const url = preferred ?? this.endpoints[this.nextEndpoint++ % this.endpoints.length];
      preferred = undefined;
      let socket: ClientSocket;
      try {
        socket = await this.dial(url);
      } catch (e) {
        this.lastError = toConcordError(e);
        if (["UNAUTHENTICATED", "PROTOCOL_MISMATCH", "AUTH_FAILED", "AUTH_NOT_ENABLED"].includes(this.lastError.code)) {
          // Not a connectivity problem: every member would answer the same. Fail waiting callers now.
          this.failWaiters();
          return;
        }
        // A full round of endpoints failed: back off before the next round.
        if ((attempt + 1) % this.endpoints.length === 0)
          await sleep(this.backoff(Math.floor(attempt / this.endpoints.length)));
        continue;
      }
      // Prefer the leader: writes and keep-alives go there anyway, and its reads need no forwarding.
      const leader = socket.welcome.leader;
      if (leader && leader !== url && !this.closed && this.opts.followLeader !== false) {
        try {
          const leaderSocket = await this.dial(leader);
          socket.close();
          this.install(leaderSocket, leader);
          return;
        } catch {
          // keep the follower: it forwards writes
        }
      }
      this.install(socket, url);
      return;
    }
  }

  private failWaiters(): void {
    this.fatal = this.lastError;
    for (const w of this.waiters.splice(0)) w();
  }

  /** The token a runtime user's authenticate returned (see ConnectionOptions.user). */
  private userToken: string | undefined;

  private async dial(url: string): Promise<ClientSocket> {
    const user = this.opts.user;
    if (!user) return this.dialWith(url, this.opts.token);
    const token = this.userToken;
    if (token !== undefined) {
      try {
        return await this.dialWith(url, token);
      } catch (e) {
        if (toConcordError(e).code !== "UNAUTHENTICATED") throw e;
        if (this.userToken === token) this.userToken = undefined;
      }
    }
    const socket = await this.dialWith(url, this.opts.token);
    try {
      const r = (await socket.request("authenticate", { name: user.name, password: user.password }, this.attemptTimeoutMs)) as { token: string };
      this.userToken = r.token;
    } catch (e) {
      socket.close();
      throw e;
    }
    return socket;
  }

  private dialWith(url: string, token: string | undefined): Promise<ClientSocket> {
    const socketId = this.nextSocketId++;
    return ClientSocket.connect(url, {
      hello: token !== undefined ? { token } : {},
      tls: this.opts.tls,
      connectTimeoutMs: Math.min(this.timeoutMs, 3000),
      // Pushes are all a watch-only connection receives: pings tell a silent member from a quiet one.
      heartbeatMs: this.attemptTimeoutMs,
      onPush: (frame) => this.onPush(socketId, frame),
      onClose: () => this.onSocketClosed(socketId),
      // Set once per socket rather than per request: an attempt allocates no handler of its own.
      onTimeout: (op, ms) => this.suspect(socketId, url, op, ms),
    }).then((s) => {
      (s as unknown as { concordSocketId: number }).concordSocketId = socketId;
      return s;
    });
  }

  private install(socket: ClientSocket, url: string): void {
    if (this.closed) {
      socket.close();
      return;
    }
    const id = (socket as unknown as { concordSocketId: number }).concordSocketId;
    this.current = { socket, id, url };
    this.streams = new Map();
    this.orphans = [];
    this.lastError = null;
    this.fatal = null;
    for (const w of this.waiters.splice(0)) w();
    for (const fn of this.reconnectListeners) fn(id);
  }

  /** Moves to another member (the leader named by a NOT_LEADER reply). */
  private switchTo(url: string): void {
    if (this.connecting) return;
    this.connecting = this.dial(url)
      .then(
        (s) => {
          const old = this.current;
          this.install(s, url);
          old?.socket.close();
        },
        () => {},
      )
      .finally(() => {
        this.connecting = null;
      });
  }

  private onPush(socketId: number, frame: PushFrame): void {
    if (socketId !== this.socketId) return;
    const event = frame.event as { kind?: unknown } | null;
    if (event && typeof event === "object" && typeof event.kind === "string") {
      for (const fn of this.noticeListeners) fn(event as { kind: string });
    }
    const handler = this.streams.get(frame.stream);
    if (handler) handler(frame.event);
    else if (this.orphans.length < ORPHAN_PUSH_LIMIT) this.orphans.push(frame);
  }

  private onSocketClosed(socketId: number): void {
    if (this.current?.id !== socketId) return;
    this.current = null;
    this.streams = new Map();
    this.orphans = [];
    if (this.closed) return;
    this.startConnecting();
    for (const fn of [...this.disconnectListeners]) fn();
  }

  /** Jittered exponential backoff: uniform in [b/2, b] with b = min(max, min·2^attempt). */
  private backoff(attempt: number): number {
    const min = this.opts.backoffMinMs ?? 50;
    const max = this.opts.backoffMaxMs ?? 1000;
    const b = Math.min(max, min * 2 ** Math.min(attempt, 20));
    return b / 2 + Math.random() * (b / 2);
  }
}

export function abortError(signal: AbortSignal): ConcordError {
  const r: unknown = signal.reason;
  if (r instanceof ConcordError) return r;
  return clientError("ABORTED", `aborted${r instanceof Error ? `: ${r.message}` : ""}`);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    const onAbort = () => done();
    signal?.addEventListener("abort", onAbort, { once: true });
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
  });
}

function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
