// Locks and elections for clients connected to THIS member: a waiting acquire or campaign is answered when
// this member applies the grant, and a holder is told at once when its hold ends with its lease ("lockLost" /
// "leadershipLost"). Every member applies the same log, so whichever member a client is connected to sees the
// same grants at the same indices. The acquire or campaign itself is proposed on the leader (forwarded by a
// follower); only the waiting and the stream live here.

import type { AcquireResult, CampaignResult, CoordinationEvent } from "../locks/index.js";
import type { AccessRequest } from "../statemachine/auth-permissions.js";
import { ProtocolError, arg, type RequestFrame } from "../transport/protocol.js";
import type { ClientConnection } from "./gateway.js";
import type { AppliedEvents, Replica } from "./replica.js";
import type { Streams } from "./streams.js";

interface Waiting {
  conn: ClientConnection;
  resolve(token: number): void;
  /** Ends the access guard (auth changes no longer concern this wait). */
  unguard(): void;
}

interface Holding {
  conn: ClientConnection;
  stream: number;
  token: number;
}

const keyOf = (name: string, lease: number) => `${lease}\u0000${name}`;

/** Serves a request on the leader (or forwards it there). */
type OnLeader = (req: RequestFrame) => Promise<unknown>;

export class CoordinationStreams {
  /** Acquires waiting for a grant, by (lock name, lease). */
  private readonly lockWaiters = new Map<string, Waiting>();
  /** Campaigns waiting for leadership, by (election name, lease). */
  private readonly campaignWaiters = new Map<string, Waiting>();
  /** Holds to report when lost, by (name, lease). */
  private readonly lockHolders = new Map<string, Holding>();
  private readonly leaders = new Map<string, Holding>();

  constructor(
    private readonly replica: Replica,
    private readonly streams: Streams,
  ) {
    replica.applied.add((a) => this.onApplied(a));
  }

  /**
   * Acquire a lock; with `wait` (the default) the reply comes when the lock is granted. The waiter is
   * registered before the proposal, so a grant applied here before the leader's reply arrives is not missed.
   * The reply carries a `stream` on which a `lockLost` push arrives if the hold ends with the lease.
   */
  async lockAcquire(conn: ClientConnection, req: RequestFrame, onLeader: OnLeader): Promise<unknown> {
    const name = arg.string(req, "name");
    const lease = arg.int(req, "lease", { min: 1 });
    const wait = req.wait === undefined ? true : arg.bool(req, "wait");
    const needs: AccessRequest[] = [{ kind: "lock", name, access: "write" }];
    const granted = wait ? this.await(this.lockWaiters, conn, name, lease, needs) : null;
    let token: number;
    try {
      // Object.assign, not `{ ...req, wait }`: Node 20's V8 builds that on a slow path (~1 µs per added property).
      const result = (await onLeader(Object.assign({}, req, { wait }))) as AcquireResult;
      if (result.granted) token = result.token;
      else if ("held" in result || !granted) return result;
      else {
        // A retried acquire (same session seq) replays the recorded "queued": the grant may have been applied
        // already, while no request was waiting for it. This member's state says so.
        const held = this.replica.coord.lockStatus(name).holders.find((h) => h.lease === lease);
        token = held ? held.token : await granted;
      }
    } finally {
      this.unwait(this.lockWaiters, name, lease);
    }
    this.mayHold(conn, needs, `lock ${JSON.stringify(name)}`);
    // Ended with PERMISSION_DENIED if the holder loses write access to the lock (the hold itself stays until
    // released or its lease ends: the state machine does not know connections).
    const stream = this.streams.add(conn, () => this.forget(this.lockHolders, conn, name, lease), needs, (error) => ({ kind: "lockLost", name, token, error }));
    this.track(this.lockHolders, conn, stream, name, lease, token);
    return { granted: true, token, stream };
  }

  /** Campaign; the reply comes when this candidate leads, with a stream for a `leadershipLost` push. */
  async campaign(conn: ClientConnection, req: RequestFrame, onLeader: OnLeader): Promise<unknown> {
    const name = arg.string(req, "name");
    const lease = arg.int(req, "lease", { min: 1 });
    const needs: AccessRequest[] = [{ kind: "election", name, access: "write" }];
    const elected = this.await(this.campaignWaiters, conn, name, lease, needs);
    let token: number;
    try {
      const result = (await onLeader(req)) as CampaignResult;
      if (result.leader) token = result.token;
      else {
        // As for a retried acquire: leadership may already have been granted while nobody waited.
        const current = this.replica.coord.electionLeader(name);
        token = current && current.lease === lease ? current.token : await elected;
      }
    } finally {
      this.unwait(this.campaignWaiters, name, lease);
    }
    this.mayHold(conn, needs, `leadership of ${JSON.stringify(name)}`);
    const stream = this.streams.add(conn, () => this.forget(this.leaders, conn, name, lease), needs, (error) => ({ kind: "leadershipLost", name, token, error }));
    this.track(this.leaders, conn, stream, name, lease, token);
    return { token, stream };
  }

  /**
   * Waits for the grant of (name, lease) to be applied here. Rejects with PERMISSION_DENIED as soon as an auth
   * change takes `needs` from the connection: a waiting acquire or campaign ends as a hold would. (Its entry stays
   * queued in the state machine, as any abandoned waiter's, until its lease ends.)
   */
  private await(map: Map<string, Waiting>, conn: ClientConnection, name: string, lease: number, needs: readonly AccessRequest[]): Promise<number> {
    const key = keyOf(name, lease);
    const waiting = new Promise<number>((resolve, reject) => {
      const unguard = this.streams.guardWait(conn, needs, (why) => reject(new ProtocolError("PERMISSION_DENIED", `stopped waiting: ${why}`)));
      map.set(key, { conn, resolve, unguard });
      conn.onClose(() => {
        if (map.get(key)?.conn === conn) this.unwait(map, name, lease);
      });
    });
    // Awaited only once the proposal is answered; a denial before that is seen then, not reported as unhandled.
    waiting.catch(() => {});
    return waiting;
  }

  private unwait(map: Map<string, Waiting>, name: string, lease: number): void {
    const key = keyOf(name, lease);
    map.get(key)?.unguard();
    map.delete(key);
  }

  /** A grant applied after the connection lost access to it is refused to the client (its lease ends the hold). */
  private mayHold(conn: ClientConnection, needs: readonly AccessRequest[], what: string): void {
    const why = this.streams.refused(conn, needs);
    if (why !== null) throw new ProtocolError("PERMISSION_DENIED", `${what} was granted after access to it was revoked (${why}); the hold ends with its lease`);
  }

  private track(map: Map<string, Holding>, conn: ClientConnection, stream: number, name: string, lease: number, token: number): void {
    const key = keyOf(name, lease);
    map.set(key, { conn, stream, token });
    conn.onClose(() => {
      if (map.get(key)?.conn === conn) map.delete(key);
    });
  }

  /** The stream of a hold ended (cancelled, connection closed, access revoked): nothing more to tell it. */
  private forget(map: Map<string, Holding>, conn: ClientConnection, name: string, lease: number): void {
    const key = keyOf(name, lease);
    if (map.get(key)?.conn === conn) map.delete(key);
  }

  private onApplied(a: AppliedEvents): void {
    for (const ev of a.events) {
      if (ev.type !== "extension") continue;
      const e = ev.event as CoordinationEvent;
      switch (e.kind) {
        case "lockGranted":
          this.wake(this.lockWaiters, keyOf(e.name, e.lease), e.token);
          break;
        case "lockReleased": {
          const h = this.ended(this.lockHolders, keyOf(e.name, e.lease), e.token);
          if (h && e.reason === "leaseEnded") h.conn.finish(h.stream, { kind: "lockLost", name: e.name, token: e.token, index: a.index });
          break;
        }
        case "leadershipGained":
          this.wake(this.campaignWaiters, keyOf(e.election, e.lease), e.token);
          break;
        case "leadershipLost": {
          const h = this.ended(this.leaders, keyOf(e.election, e.lease), e.token);
          if (h && e.reason === "leaseEnded") h.conn.finish(h.stream, { kind: "leadershipLost", name: e.election, token: e.token, index: a.index });
          break;
        }
        default:
          break;
      }
    }
  }

  private wake(map: Map<string, Waiting>, key: string, token: number): void {
    const w = map.get(key);
    if (!w) return;
    map.delete(key);
    w.unguard();
    w.resolve(token);
  }

  /** The hold `key` with `token` ended: forget it, and return it if someone was told of it. */
  private ended(map: Map<string, Holding>, key: string, token: number): Holding | undefined {
    const h = map.get(key);
    if (!h || h.token !== token) return undefined;
    map.delete(key);
    this.streams.cancel(h.conn, h.stream);
    return h;
  }
}
