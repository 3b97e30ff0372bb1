// Key-value operations: put, get, range (one page), list (every page), delete, compact.

import type { Connection } from "./connection.js";
import type { SessionManager } from "./session.js";
import { invalidArgument } from "./errors.js";
import { bytesToText, checkKey, checkPositiveInt, toBytes, type ValueInput } from "./values.js";

/** A stored key and its metadata. `text` is `value` decoded as UTF-8, for convenience. */
export interface KeyValue {
  key: string;
  value: Uint8Array;
  text: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

export type Consistency = "linearizable" | "serializable";

export interface PutOptions {
  /** Bind the key to a lease id: the key is deleted when the lease ends. */
  lease?: number;
  /** Return the previous key-value. */
  prevKv?: boolean;
  /** Fenced write: accepted only while `token` is the current fencing token of lock `lock`. */
  fence?: FenceOption;
}

/**
 * A fenced write's condition: `token` is a current fencing token of lock `lock` and, with `lease`, that lease
 * holds the lock with it. Give the lease for a semaphore: one entry that frees several slots grants them the
 * same token, and the store then asks for it (INVALID_ARGUMENT on `fence.lease`).
 */
export interface FenceOption {
  lock: string;
  token: number;
  lease?: number;
}

export interface PutResult {
  revision: number;
  prevKv?: KeyValue;
}

export interface GetOptions {
  /** "linearizable" (default) sees every write acknowledged before the call; "serializable" may be stale. */
  consistency?: Consistency;
  /**
   * Read the store as it was at this revision: any revision from the compaction revision to the current one
   * (older: COMPACTED, whose `compactRevision` is the oldest still readable; newer: FUTURE_REVISION).
   */
  revision?: number;
}

export interface RangeOptions extends GetOptions {
  /** Most keys in this page (0: all). */
  limit?: number;
  /** Continue after this key (the previous page's `cursor`). */
  after?: string;
}

export interface RangeResult {
  revision: number;
  kvs: KeyValue[];
  /** More keys follow; pass `cursor` as `after` for the next page. */
  more: boolean;
  cursor?: string;
}

export interface DeleteOptions {
  /** Delete every key starting with `key`. */
  prefix?: boolean;
  prevKv?: boolean;
  fence?: FenceOption;
}

export interface DeleteResult {
  revision: number;
  deleted: number;
  prevKvs?: KeyValue[];
}

interface WireKv {
  key: string;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  lease?: number;
}

export function decodeKv(w: WireKv): KeyValue {
  const value = w.value instanceof Uint8Array ? w.value : Buffer.from(String(w.value ?? ""));
  return {
    key: w.key,
    value,
    text: bytesToText(value),
    createRevision: w.createRevision,
    modRevision: w.modRevision,
    version: w.version,
    lease: w.lease ?? 0,
  };
}

function checkConsistency(c: unknown): Consistency {
  if (c === undefined) return "linearizable";
  if (c !== "linearizable" && c !== "serializable")
    throw invalidArgument("consistency", '"linearizable" or "serializable"', c);
  return c;
}

export function checkFence(f: unknown): FenceOption | undefined {
  if (f === undefined) return undefined;
  const o = f as { lock?: unknown; token?: unknown; lease?: unknown };
  if (typeof o !== "object" || o === null) {
    throw invalidArgument("fence", "{ lock: string, token: number, lease?: number }", f);
  }
  const fence: FenceOption = { lock: checkKey("fence.lock", o.lock), token: checkPositiveInt("fence.token", o.token) };
  if (o.lease !== undefined) fence.lease = checkPositiveInt("fence.lease", o.lease);
  return fence;
}

interface WireRange {
  revision: number;
  kvs: WireKv[];
  more: boolean;
  cursor?: string;
}

/** A get's answer: the range's only record, or null. */
function firstKv(r: WireRange): KeyValue | null {
  return r.kvs.length > 0 ? decodeKv(r.kvs[0]) : null;
}

/** A range request's arguments: the key (checked by the caller) or every key under it, and the options. */
function rangeArgs(key: string, prefix: boolean, opts: RangeOptions): Record<string, unknown> {
  const args: Record<string, unknown> = { key, consistency: checkConsistency(opts.consistency) };
  if (prefix) args.prefix = true;
  if (opts.limit !== undefined && opts.limit !== 0) args.limit = checkPositiveInt("limit", opts.limit);
  if (opts.after !== undefined) args.after = checkKey("after", opts.after, true);
  if (opts.revision !== undefined) args.revision = checkPositiveInt("revision", opts.revision);
  return args;
}

export class KvApi {
  constructor(
    private readonly conn: Connection,
    private readonly sessions: SessionManager,
  ) {}

  async put(key: string, value: ValueInput, opts: PutOptions = {}): Promise<PutResult> {
    const args: Record<string, unknown> = { key: checkKey("key", key), value: toBytes("value", value) };
    if (opts.lease !== undefined && opts.lease !== 0) args.lease = checkPositiveInt("lease", opts.lease);
    if (opts.prevKv) args.prevKv = true;
    const fence = checkFence(opts.fence);
    if (fence) args.fence = fence;
    const r = await this.sessions.write<{ revision: number; prevKv?: WireKv }>("put", args);
    return r.prevKv ? { revision: r.revision, prevKv: decodeKv(r.prevKv) } : { revision: r.revision };
  }

  /** The key's current record, or null if absent. */
  get(key: string, opts: GetOptions = {}): Promise<KeyValue | null> {
    // Not an async function: the most frequent read's promise is the call's own, chained once (an async frame
    // and its await cost the client several times the allocation). Bad arguments still reject, never throw.
    let args: Record<string, unknown>;
    try {
      args = rangeArgs(checkKey("key", key), false, opts);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.conn.call<WireRange>("range", args).then(firstKv);
  }

  /** One page of the keys starting with `prefix` (all keys: ""), in key order. */
  async range(prefix: string, opts: RangeOptions = {}): Promise<RangeResult> {
    const r = await this.conn.call<WireRange>("range", rangeArgs(checkKey("prefix", prefix, true), true, opts));
    const out: RangeResult = { revision: r.revision, kvs: r.kvs.map(decodeKv), more: !!r.more };
    if (r.cursor !== undefined) out.cursor = r.cursor;
    else if (r.more && out.kvs.length > 0) out.cursor = out.kvs[out.kvs.length - 1].key;
    return out;
  }

  /**
   * Every key starting with `prefix`, fetched `pageSize` at a time. Each page is a consistent read, but pages
   * are separate reads: keys written between pages may or may not appear.
   */
  async *list(prefix: string, opts: GetOptions & { pageSize?: number } = {}): AsyncIterable<KeyValue> {
    const pageSize = opts.pageSize === undefined ? 500 : checkPositiveInt("pageSize", opts.pageSize);
    let after: string | undefined;
    for (;;) {
      const page = await this.range(prefix, { consistency: opts.consistency, revision: opts.revision, limit: pageSize, after });
      yield* page.kvs;
      if (!page.more || page.kvs.length === 0) return;
      after = page.cursor;
    }
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const args: Record<string, unknown> = { key: checkKey("key", key, !!opts.prefix) };
    if (opts.prefix) args.prefix = true;
    if (opts.prevKv) args.prevKv = true;
    const fence = checkFence(opts.fence);
    if (fence) args.fence = fence;
    const r = await this.sessions.write<{ revision: number; deleted: number; prevKvs?: WireKv[] }>("delete", args);
    return r.prevKvs
      ? { revision: r.revision, deleted: r.deleted, prevKvs: r.prevKvs.map(decodeKv) }
      : { revision: r.revision, deleted: r.deleted };
  }

  /** Forgets watch history at and below `revision`. */
  async compact(revision: number): Promise<{ revision: number; compactRevision: number }> {
    return this.sessions.write("compact", { revision: checkPositiveInt("revision", revision) });
  }
}
