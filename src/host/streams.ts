// Push streams a client opens on the member it is connected to: watches, election observation and snapshot
// downloads (lock and leadership streams: coordination-streams.ts). A stream's events come from what this
// member's own state machine applies — every member applies the same log — and are pushed in order, after the
// reply that names the stream. A stream that cannot continue ends with an error push, never silently.

import type { CoordinationEvent } from "../locks/index.js";
import type { AccessRequest } from "../statemachine/auth-permissions.js";
import type { WatchEvent } from "../statemachine/watch-history.js";
import { arg, type RequestFrame } from "../transport/protocol.js";
import { CommandFailure } from "./errors.js";
import { AFTER_REPLY, type ClientConnection } from "./gateway.js";
import type { AppliedEvents, Replica } from "./replica.js";
import type { HostLogger } from "./world.js";

/** Snapshot downloads go out in chunks of this size. */
const SNAPSHOT_CHUNK = 1 << 20;

/** Why a connection may no longer reach `needs`, or null (auth-service.ts). */
export type AccessRefusal = (conn: ClientConnection, needs: readonly AccessRequest[]) => string | null;

/** A stream that needs access to names: ended with PERMISSION_DENIED when its connection loses it. */
export interface Guard {
  conn: ClientConnection;
  stream: number;
  needs: readonly AccessRequest[];
  /** The stream's last push once access is gone (default: `{ error }`). */
  denied?: (error: { code: "PERMISSION_DENIED"; message: string }) => unknown;
}

/** A request waiting for a grant (an acquire, a campaign) that needs access to a name. */
interface WaitGuard {
  conn: ClientConnection;
  needs: readonly AccessRequest[];
  denied(why: string): void;
}

export class Streams {
  private readonly byConn = new WeakMap<ClientConnection, Map<number, () => void>>();
  private readonly guards = new Set<Guard>();
  private readonly waitGuards = new Set<WaitGuard>();
  private nextStream = 1;
  /** Streams open on this member (for /metrics). */
  open = 0;

  constructor(
    private readonly replica: Replica,
    private readonly log: HostLogger,
    private readonly refusal: AccessRefusal,
  ) {
    // Registered before any stream's own listener: at the entry that revokes access, a stream ends before
    // anything later is pushed on it.
    replica.applied.add((a) => {
      if (a.events.some((e) => e.type === "extension" && e.section === "auth")) this.recheck();
    });
  }

  /**
   * Registers a stream of `conn`; `stop` runs once, when it is cancelled or the connection closes. With
   * `needs`, the stream ends with PERMISSION_DENIED once an auth change takes that access from its connection.
   */
  add(conn: ClientConnection, stop: () => void, needs?: readonly AccessRequest[], denied?: Guard["denied"]): number {
    let m = this.byConn.get(conn);
    if (!m) {
      m = new Map();
      this.byConn.set(conn, m);
      const streams = m;
      conn.onClose(() => {
        for (const s of streams.values()) s();
        streams.clear();
      });
    }
    const id = this.nextStream++;
    this.open++;
    let stopped = false;
    const guard: Guard | undefined = needs && { conn, stream: id, needs, denied };
    if (guard) this.guards.add(guard);
    m.set(id, () => {
      if (stopped) return;
      stopped = true;
      this.open--;
      if (guard) this.guards.delete(guard);
      stop();
    });
    return id;
  }

  /**
   * Calls `denied` (once) when an auth change takes `needs` from `conn` while a request waits for a grant;
   * returns what to call when the wait ends otherwise.
   */
  guardWait(conn: ClientConnection, needs: readonly AccessRequest[], denied: (why: string) => void): () => void {
    const g: WaitGuard = { conn, needs, denied };
    this.waitGuards.add(g);
    return () => this.waitGuards.delete(g);
  }

  /** Why `conn` may not reach `needs` now (a grant that arrived after its access was revoked), or null. */
  refused(conn: ClientConnection, needs: readonly AccessRequest[]): string | null {
    return this.refusal(conn, needs);
  }

  /** Ends every stream and wait whose connection lost the access it needs. */
  private recheck(): void {
    for (const w of [...this.waitGuards]) {
      const why = this.refusal(w.conn, w.needs);
      if (why === null) continue;
      this.waitGuards.delete(w);
      w.denied(why);
    }
    for (const g of [...this.guards]) {
      const why = this.refusal(g.conn, g.needs);
      if (why === null) continue;
      this.cancel(g.conn, g.stream);
      const error = { code: "PERMISSION_DENIED" as const, message: `stream ended: ${why}` };
      g.conn.finish(g.stream, g.denied ? g.denied(error) : { error });
    }
  }

  cancel(conn: ClientConnection, stream: number): boolean {
    const m = this.byConn.get(conn);
    const stop = m?.get(stream);
    if (!stop) return false;
    stop();
    m!.delete(stream);
    return true;
  }

  /**
   * A watch: replay history from `fromRevision` (if given), then every matching event as it is applied here.
   * Replay and subscription happen in one synchronous step, so nothing falls between them. A consumer too slow
   * to keep up is cancelled with SLOW_CONSUMER (the client resumes from its last revision).
   */
  watch(conn: ClientConnection, req: RequestFrame): unknown {
    const key = arg.string(req, "key", { allowEmpty: true });
    const prefix = arg.bool(req, "prefix");
    const fromRevision = arg.int(req, "fromRevision", { optional: true, min: 0, def: 0 });
    // Events carry the record they superseded only when asked (etcd's prev_kv): it can double a stream's bytes.
    const withPrev = arg.bool(req, "prevKv");
    const shape = (events: WatchEvent[]): WatchEvent[] => (withPrev ? events : events.map(withoutPrevKv));
    const sm = this.replica.sm;
    const matches = (ev: WatchEvent) => {
      const k = ev.type === "put" ? ev.kv.key : ev.key;
      return prefix ? k.startsWith(key) : k === key;
    };
    let backlog: WatchEvent[] = [];
    if (fromRevision > 0 && fromRevision <= sm.revision) {
      const r = sm.watchEventsSince(fromRevision, { key, prefix });
      if (!Array.isArray(r)) throw new CommandFailure(r);
      backlog = r;
    }
    let stream = 0;
    const out = new OrderedStream(conn, () => this.cancel(conn, stream), "watch cancelled: the client did not keep up; resume from the last revision received");
    // A member behind the client (a resume on a lagging follower) applies revisions before fromRevision later:
    // they are not the client's to receive again.
    const after = Math.max(0, fromRevision - 1);
    const offApplied = this.replica.applied.add((a: AppliedEvents) => {
      const events = a.events.filter((e): e is WatchEvent => (e.type === "put" || e.type === "delete") && e.revision > after && matches(e));
      if (events.length > 0) out.send(stream, { events: shape(events), revision: events[events.length - 1].revision });
    });
    // Installing a snapshot replaces the state machine wholesale: the stream cannot be continued exactly.
    const offSnapshot = this.replica.snapshotInstalled.add(() => {
      this.cancel(conn, stream);
      conn.finish(stream, { error: { code: "COMPACTED", message: "watch cancelled: this member installed a snapshot; resume from the last revision received", compactRevision: this.replica.sm.compactRevision } });
    });
    stream = this.add(
      conn,
      () => {
        offApplied();
        offSnapshot();
      },
      [{ kind: "key", name: key, prefix, access: "read" }],
    );
    const first = backlog.length > 0 ? [{ events: shape(backlog), revision: backlog[backlog.length - 1].revision }] : [];
    return { stream, revision: sm.revision, [AFTER_REPLY]: () => out.open(stream, first) };
  }

  /**
   * Every leadership change of an election, in order: the history still held from `fromToken` (a log index;
   * default: the current leader), then each change as it is applied here.
   */
  async observe(conn: ClientConnection, req: RequestFrame): Promise<unknown> {
    const name = arg.string(req, "name");
    const from = arg.int(req, "fromToken", { optional: true, min: 0, def: 0 });
    await this.replica.readBarrier();
    const coord = this.replica.coord;
    let backlog: unknown[];
    if (from > 0) {
      const h = coord.electionHistory(name, from);
      if (!Array.isArray(h)) throw new CommandFailure(h);
      backlog = h.map((c) => ({ kind: "leader", name, leader: c.leader, index: c.index, cause: c.cause }));
    } else {
      const l = coord.electionLeader(name);
      backlog = [{ kind: "leader", name, leader: l, index: l?.token ?? 0, cause: "current" }];
    }
    let stream = 0;
    const out = new OrderedStream(conn, () => this.cancel(conn, stream), "observe cancelled: the client did not keep up; resume with fromToken");
    const offApplied = this.replica.applied.add((a: AppliedEvents) => {
      for (const ev of a.events) {
        if (ev.type !== "extension") continue;
        const e = ev.event as CoordinationEvent;
        if (e.kind === "leaderChanged" && e.election === name) out.send(stream, { kind: "leader", name, leader: e.leader, index: e.index, cause: e.cause });
      }
    });
    const offSnapshot = this.replica.snapshotInstalled.add(() => {
      this.cancel(conn, stream);
      conn.finish(stream, { error: { code: "COMPACTED", message: "observe cancelled: this member installed a snapshot; resume with fromToken" } });
    });
    stream = this.add(
      conn,
      () => {
        offApplied();
        offSnapshot();
      },
      [{ kind: "election", name, access: "read" }],
    );
    return { stream, [AFTER_REPLY]: () => out.open(stream, backlog) };
  }

  /**
   * Stream this member's state (as of a linearizable point) in 1 MiB chunks, then its index, term and hash.
   * A reader slower than the connection's buffer pauses the stream rather than growing memory.
   */
  async snapshot(conn: ClientConnection): Promise<unknown> {
    await this.replica.readBarrier();
    const snap = await this.replica.exportSnapshot();
    const total = snap.data.byteLength;
    let offset = 0;
    let stream = 0;
    let closed = false;
    conn.onClose(() => (closed = true));
    const pump = (): void => {
      while (!closed && offset < total) {
        const data = snap.data.subarray(offset, Math.min(total, offset + SNAPSHOT_CHUNK));
        if (!conn.push(stream, { kind: "snapshotChunk", offset, data, total })) {
          this.replica.clock.setTimer(20, pump);
          return;
        }
        offset += data.byteLength;
      }
      if (!closed) conn.finish(stream, { kind: "snapshotEnd", index: snap.index, term: snap.term, hash: snap.hash, bytes: total });
    };
    stream = this.add(conn, () => (closed = true));
    this.log.info({ index: snap.index, bytes: total }, "streaming a snapshot to a client");
    return { stream, index: snap.index, bytes: total, [AFTER_REPLY]: pump };
  }
}

/**
 * Pushes of one stream in order: events applied before the reply went out are held, then sent after the
 * backlog. A consumer that cannot keep up is cancelled with SLOW_CONSUMER instead of growing memory.
 */
export class OrderedStream {
  private held: unknown[] | null = [];
  private ended = false;
  constructor(
    private readonly conn: ClientConnection,
    private readonly cancel: () => void,
    private readonly slowMessage: string,
  ) {}

  send(stream: number, event: unknown): void {
    if (this.ended) return;
    if (this.held) {
      this.held.push(event);
      return;
    }
    if (!this.conn.push(stream, event)) {
      this.ended = true;
      this.cancel();
      this.conn.finish(stream, { error: { code: "SLOW_CONSUMER", message: this.slowMessage } });
    }
  }

  open(stream: number, backlog: unknown[]): void {
    const held = this.held ?? [];
    this.held = null;
    for (const e of backlog) this.send(stream, e);
    for (const e of held) this.send(stream, e);
  }
}

/** The event without the record it superseded (a copy: the applied event is shared with other streams). */
function withoutPrevKv(e: WatchEvent): WatchEvent {
  if (e.prevKv === undefined) return e;
  if (e.type === "put") return { type: "put", revision: e.revision, kv: e.kv };
  const { prevKv: _p, ...rest } = e;
  return rest as WatchEvent;
}
