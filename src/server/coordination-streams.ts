// The server side of locks and elections for clients connected to THIS member: waiting acquires and campaigns
// are answered when this member applies the grant, and holders are told at once when their hold ends with their
// lease ("lock lost" / "leadership lost"). Every member applies the same log, so whichever member a client is
// connected to sees the same grants at the same indices.

import type { CoordinationEvent } from "../locks/index.js";
import type { ClientConnection } from "../transport/gateway.js";
import type { AppliedEvents, ConcordNode } from "./node.js";

interface Waiting {
  conn: ClientConnection;
  resolve(token: number): void;
}

interface Holding {
  conn: ClientConnection;
  stream: number;
  token: number;
}

const keyOf = (name: string, lease: number) => `${lease}\u0000${name}`;

export class CoordinationStreams {
  /** Acquires waiting for a grant, by (lock name, lease). */
  private readonly lockWaiters = new Map<string, Waiting>();
  /** Campaigns waiting for leadership, by (election name, lease). */
  private readonly campaignWaiters = new Map<string, Waiting>();
  /** Holds to report when lost, by (name, lease). */
  private readonly lockHolders = new Map<string, Holding>();
  private readonly leaders = new Map<string, Holding>();

  constructor(private readonly node: ConcordNode) {
    node.on("applied", (a: AppliedEvents) => this.onApplied(a));
  }

  /** Register before proposing the acquire, so a grant applied before the reply arrives is not missed. */
  awaitLock(conn: ClientConnection, name: string, lease: number): Promise<number> {
    return this.await(this.lockWaiters, conn, name, lease);
  }

  awaitLeadership(conn: ClientConnection, election: string, lease: number): Promise<number> {
    return this.await(this.campaignWaiters, conn, election, lease);
  }

  cancelLock(name: string, lease: number): void {
    this.lockWaiters.delete(keyOf(name, lease));
  }

  cancelCampaign(election: string, lease: number): void {
    this.campaignWaiters.delete(keyOf(election, lease));
  }

  private await(map: Map<string, Waiting>, conn: ClientConnection, name: string, lease: number): Promise<number> {
    const key = keyOf(name, lease);
    return new Promise<number>((resolve) => {
      map.set(key, { conn, resolve });
      conn.onClose(() => {
        if (map.get(key)?.conn === conn) map.delete(key);
      });
    });
  }

  /** The client holds `name` with `token`: tell it on `stream` if the hold ends with its lease. */
  holdingLock(conn: ClientConnection, stream: number, name: string, lease: number, token: number): void {
    this.track(this.lockHolders, conn, stream, name, lease, token);
  }

  leading(conn: ClientConnection, stream: number, election: string, lease: number, token: number): void {
    this.track(this.leaders, conn, stream, election, lease, token);
  }

  private track(map: Map<string, Holding>, conn: ClientConnection, stream: number, name: string, lease: number, token: number): void {
    const key = keyOf(name, lease);
    map.set(key, { conn, stream, token });
    conn.onClose(() => {
      if (map.get(key)?.conn === conn) map.delete(key);
    });
  }

  private onApplied(a: AppliedEvents): void {
    for (const ev of a.events) {
      if (ev.type !== "extension") continue;
      const e = ev.event as CoordinationEvent;
      switch (e.kind) {
        case "lockGranted": {
          const key = keyOf(e.name, e.lease);
          const w = this.lockWaiters.get(key);
          if (w) {
            this.lockWaiters.delete(key);
            w.resolve(e.token);
          }
          break;
        }
        case "lockReleased": {
          const key = keyOf(e.name, e.lease);
          const h = this.lockHolders.get(key);
          if (h && h.token === e.token) {
            this.lockHolders.delete(key);
            if (e.reason === "leaseEnded") h.conn.push(h.stream, { kind: "lockLost", name: e.name, token: e.token, index: a.index });
          }
          break;
        }
        case "leadershipGained": {
          const key = keyOf(e.election, e.lease);
          const w = this.campaignWaiters.get(key);
          if (w) {
            this.campaignWaiters.delete(key);
            w.resolve(e.token);
          }
          break;
        }
        case "leadershipLost": {
          const key = keyOf(e.election, e.lease);
          const h = this.leaders.get(key);
          if (h && h.token === e.token) {
            this.leaders.delete(key);
            if (e.reason === "leaseEnded") h.conn.push(h.stream, { kind: "leadershipLost", name: e.election, token: e.token, index: a.index });
          }
          break;
        }
        default:
          break;
      }
    }
  }
}
