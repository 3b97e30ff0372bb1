// The Concord client: `const c = await connect(endpoints)`, then KV, watch, leases, locks, elections and
// cluster administration. One client holds one connection (preferring the leader) and one exactly-once
// session; it is cheap to share across an application.

import { AuthApi } from "./auth.js";
import { Connection, type ConnectionOptions } from "./connection.js";
import {
  ClusterApi,
  type Alarm,
  type AlarmList,
  type Member,
  type MemberStatus,
  type SnapshotInfo,
  type SnapshotProgress,
} from "./cluster.js";
import { parseEndpoints } from "./endpoints.js";
import { Election } from "./election.js";
import { toConcordError } from "./errors.js";
import {
  KvApi,
  type DeleteOptions,
  type DeleteResult,
  type GetOptions,
  type KeyValue,
  type PutOptions,
  type PutResult,
  type RangeOptions,
  type RangeResult,
} from "./kv.js";
import { InspectApi, type LeaseListing } from "./inspect.js";
import type { ElectionStatus } from "./election.js";
import { grantLease, type Lease, type LeaseInfo } from "./lease.js";
import { LockApi, type LockHandle, type LockOptions, type LockStatus } from "./locks.js";
import { SessionManager } from "./session.js";
import { TxnBuilder } from "./txn.js";
import { Watch, type WatchOptions } from "./watch.js";
import { checkPositiveInt, type ValueInput } from "./values.js";

export interface ClientOptions extends ConnectionOptions {
  /** TTL of the client's session lease (ms): how long retried writes stay exactly-once while cut off. Default 30 000. */
  sessionTtlMs?: number;
}

export class Client {
  private readonly conn: Connection;
  private readonly sessions: SessionManager;
  private readonly kv: KvApi;
  private readonly locks: LockApi;
  private readonly cluster: ClusterApi;
  /** Runtime access control: users, roles, permissions (needs the root role). */
  readonly auth: AuthApi;
  private readonly inspect: InspectApi;

  /** Use `connect()`. */
  constructor(endpoints: string | readonly string[], opts: ClientOptions = {}) {
    this.conn = new Connection(parseEndpoints(endpoints), opts);
    this.sessions = new SessionManager(this.conn, opts.sessionTtlMs ?? 30_000);
    this.kv = new KvApi(this.conn, this.sessions);
    this.locks = new LockApi(this.conn, this.sessions);
    this.cluster = new ClusterApi(this.conn);
    this.auth = new AuthApi(this.conn);
    this.inspect = new InspectApi(this.conn);
  }

  /** @internal Connects; used by connect(). */
  async open(): Promise<this> {
    await this.conn.open();
    return this;
  }

  /** The member URL currently connected to. */
  get endpoint(): string | null {
    return this.conn.url;
  }

  /** Calls `fn` after every reconnect (a new connection to some member). Returns an unsubscribe function. */
  onReconnect(fn: () => void): () => void {
    return this.conn.onReconnect(() => fn());
  }

  // ---- KV --------------------------------------------------------------------------------------------

  /** Writes `key` = `value` (exactly once, even when retried after a failover). */
  put(key: string, value: ValueInput, opts?: PutOptions): Promise<PutResult> {
    return this.kv.put(key, value, opts);
  }
  /** The key's record, or null. Linearizable unless `consistency: "serializable"`. */
  get(key: string, opts?: GetOptions): Promise<KeyValue | null> {
    return this.kv.get(key, opts);
  }
  /** One page of keys starting with `prefix`, in key order; continue with `after: result.cursor`. */
  range(prefix: string, opts?: RangeOptions): Promise<RangeResult> {
    return this.kv.range(prefix, opts);
  }
  /** Every key starting with `prefix`, fetched page by page. */
  list(prefix: string, opts?: GetOptions & { pageSize?: number }): AsyncIterable<KeyValue> {
    return this.kv.list(prefix, opts);
  }
  delete(key: string, opts?: DeleteOptions): Promise<DeleteResult> {
    return this.kv.delete(key, opts);
  }
  /** A transaction: `.if(...)` compares, `.thenPut/.thenDelete/.thenGet`, `.elsePut/…`, then `.commit()`. */
  txn(): TxnBuilder {
    return new TxnBuilder(this.sessions);
  }
  /**
   * Compare-and-set: writes `next` only if the current value is `expected` (null: only if the key is absent).
   * Resolves with whether it wrote, the revision, and the current record when it did not.
   */
  async cas(
    key: string,
    expected: ValueInput | null,
    next: ValueInput,
  ): Promise<{ succeeded: boolean; revision: number; current: KeyValue | null }> {
    const t = this.txn();
    if (expected === null) t.if(key, "version", "=", 0);
    else t.if(key, "value", "=", expected);
    const r = await t.thenPut(key, next).elseGet(key).commit();
    const other = r.responses[0];
    return {
      succeeded: r.succeeded,
      revision: r.revision,
      current: !r.succeeded && other?.op === "range" ? (other.kvs[0] ?? null) : null,
    };
  }
  compact(revision: number): Promise<{ revision: number; compactRevision: number }> {
    return this.kv.compact(revision);
  }

  /**
   * Watches a key (or a prefix) as an AsyncIterable of events. Resumes after reconnects without losing or
   * repeating events; throws (never goes silent) when it cannot resume.
   */
  watch(keyOrPrefix: string, opts?: WatchOptions): Watch {
    return new Watch(this.conn, keyOrPrefix, opts);
  }

  // ---- Leases ----------------------------------------------------------------------------------------

  /** Grants a lease kept alive every ttl/3; `lease.lost` fires once no keep-alive succeeded within the TTL. */
  grantLease(ttlMs: number): Promise<Lease> {
    return grantLease(this.conn, ttlMs);
  }
  async revokeLease(id: number): Promise<void> {
    await this.conn.call("leaseRevoke", { lease: checkPositiveInt("lease", id) });
  }
  /** One keep-alive for a lease this client does not manage (CLI `lease keepalive`). Returns the TTL. */
  async keepAliveLease(id: number): Promise<number> {
    const r = await this.conn.call<{ ttlMs: number }>("leaseKeepAlive", { lease: checkPositiveInt("lease", id) });
    return r.ttlMs;
  }
  /** The lease's TTL, time left and keys (`keys: false` leaves the key list out; `keyCount` is always there). */
  async leaseTimeToLive(id: number, opts: { keys?: boolean } = {}): Promise<LeaseInfo | null> {
    const r = await this.conn.call<{ lease: LeaseInfo | null }>("leaseTimeToLive", {
      lease: checkPositiveInt("lease", id),
      keys: opts.keys ?? true,
    });
    return r.lease;
  }
  /** Live leases in id order with their time left and key count, and their keys with `keys: true`. */
  leases(opts: { keys?: boolean } = {}): Promise<LeaseListing[]> {
    return this.inspect.leases(opts);
  }

  // ---- Locks -----------------------------------------------------------------------------------------

  /** Waits for lock `name`; the hold carries a fencing token and a `lost` signal. */
  lock(name: string, opts?: LockOptions): Promise<LockHandle> {
    return this.locks.lock(name, opts);
  }
  /** Runs `fn` holding `name`; `signal` fires if the lock is lost meanwhile. Always releases. */
  withLock<T>(
    name: string,
    fn: (hold: { token: number; signal: AbortSignal }) => Promise<T>,
    opts?: LockOptions,
  ): Promise<T> {
    return this.locks.withLock(name, fn, opts);
  }
  /** Who holds `name` (leases and tokens, in grant order) and who waits (leases, in queue order). */
  lockStatus(name: string): Promise<LockStatus> {
    return this.locks.status(name);
  }
  /** Every lock with a holder or a waiter whose name starts with `prefix`, in name order. */
  lockList(prefix = ""): Promise<LockStatus[]> {
    return this.inspect.locks(prefix);
  }
  /**
   * A put the store accepts only while `lock` still holds its lock (its token is current): FENCED otherwise.
   * Pass the LockHandle itself (or its lease id): the store then checks the holder's lease too, which a
   * semaphore needs (see FenceOption).
   */
  fencedPut(
    key: string,
    value: ValueInput,
    lock: { name: string; token: number; lease?: number | { id: number } },
    opts: Omit<PutOptions, "fence"> = {},
  ): Promise<PutResult> {
    const lease = typeof lock.lease === "object" && lock.lease !== null ? lock.lease.id : lock.lease;
    return this.kv.put(key, value, { ...opts, fence: { lock: lock.name, token: lock.token, lease } });
  }

  // ---- Elections -------------------------------------------------------------------------------------

  election(name: string): Election {
    return new Election(this.conn, this.sessions, name);
  }
  /** Every election remembered (with candidates, or idle) whose name starts with `prefix`, in name order. */
  electionList(prefix = ""): Promise<ElectionStatus[]> {
    return this.inspect.elections(prefix);
  }

  // ---- Cluster ---------------------------------------------------------------------------------------

  status(): Promise<MemberStatus> {
    return this.cluster.status();
  }
  members(): Promise<{ members: Member[]; leader: string | null }> {
    return this.cluster.members();
  }
  addMember(id: string, peerUrl: string, clientUrl?: string): Promise<{ confState: unknown }> {
    return this.cluster.addMember(id, peerUrl, clientUrl);
  }
  promoteMember(id: string): Promise<{ confState: unknown }> {
    return this.cluster.promoteMember(id);
  }
  removeMember(id: string): Promise<{ confState: unknown }> {
    return this.cluster.removeMember(id);
  }
  /** Changes a member's peer URL (and client URL, when given); it keeps its role. */
  updateMember(id: string, peerUrl: string, clientUrl?: string): Promise<{ confState: unknown; member: Member }> {
    return this.cluster.updateMember(id, peerUrl, clientUrl);
  }
  /** Moves leadership to the voter `to`; resolves once the old leader sees `to` lead. */
  transferLeader(to: string): Promise<{ ok: true; from: string; leader: string }> {
    return this.cluster.transferLeader(to);
  }
  /** Raised cluster-wide alarms (NO_SPACE: the state reached the storage quota), the state's size and the quota. */
  alarms(): Promise<AlarmList> {
    return this.cluster.alarms();
  }
  /** Clears the NO_SPACE alarm; fails with NO_SPACE while the state still holds the quota (free space first). */
  disarmAlarms(): Promise<{ disarmed: Alarm[] }> {
    return this.cluster.disarmAlarms();
  }
  /** Streams a snapshot of the connected member's state to `file` (atomic: temp file, fsync, rename). */
  snapshot(
    file: string,
    opts?: { onProgress?: (p: SnapshotProgress) => void; timeoutMs?: number },
  ): Promise<SnapshotInfo> {
    return this.cluster.snapshot(file, opts);
  }

  /** Ends the session (revoking its lease) and closes the connection. */
  async close(): Promise<void> {
    await this.sessions.close().catch(() => {});
    this.conn.close();
  }
}

/**
 * Connects to a Concord cluster. `endpoints`: member client URLs (array or comma-separated; `host:port` means
 * ws://). Resolves once one member answered; rejects with a ConcordError (UNAVAILABLE, UNAUTHENTICATED, …).
 *
 * @example
 *   const c = await connect("ws://127.0.0.1:7100,ws://127.0.0.1:7110,ws://127.0.0.1:7120");
 *   await c.put("config/mode", "blue");
 *   await c.withLock("jobs/nightly", async ({ token, signal }) => runJob(token, signal));
 */
export async function connect(endpoints: string | readonly string[], opts: ClientOptions = {}): Promise<Client> {
  const client = new Client(endpoints, opts);
  try {
    return await client.open();
  } catch (e) {
    await client.close();
    throw toConcordError(e);
  }
}
