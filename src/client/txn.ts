// The transaction builder: compares → then ops (all compares true) / else ops. All writes of the chosen
// branch share one revision. Example:
//   await c.txn().if("cfg/v", "version", "=", 0).thenPut("cfg/v", "1").elseGet("cfg/v").commit();

import type { SessionManager } from "./session.js";
import { checkFence, decodeKv, type DeleteOptions, type FenceOption, type KeyValue, type PutOptions } from "./kv.js";
import { invalidArgument } from "./errors.js";
import { checkKey, checkPositiveInt, toBytes, type ValueInput } from "./values.js";

export type CompareTarget = "value" | "version" | "createRevision" | "modRevision" | "lease";
export type CompareOp = "=" | "!=" | "<" | ">";

const TARGETS: readonly CompareTarget[] = ["value", "version", "createRevision", "modRevision", "lease"];
const OPS: readonly CompareOp[] = ["=", "!=", "<", ">"];

/** One response per op of the branch that ran, in order. */
export type TxnOpResult =
  | { op: "put"; revision: number; prevKv?: KeyValue }
  | { op: "delete"; revision: number; deleted: number; prevKvs?: KeyValue[] }
  | { op: "range"; kvs: KeyValue[]; more: boolean };

export interface TxnResult {
  revision: number;
  /** True if every compare held and the `then` branch ran. */
  succeeded: boolean;
  responses: TxnOpResult[];
}

/** A read in a transaction: one key, or a prefix (at most `limit` keys); at a past `revision` if given. */
export interface TxnGetOptions {
  prefix?: boolean;
  limit?: number;
  revision?: number;
}

type WireOp = Record<string, unknown> & { op: "put" | "delete" | "range" };

export class TxnBuilder {
  private readonly compares: Record<string, unknown>[] = [];
  private readonly success: WireOp[] = [];
  private readonly failure: WireOp[] = [];
  private fence?: FenceOption;

  constructor(private readonly sessions: SessionManager) {}

  /**
   * Adds a compare: `key`'s `target` `op` `value`. A missing key has version/revisions/lease 0; a compare on
   * the value of a missing key is false whatever the operator.
   */
  if(key: string, target: CompareTarget, op: CompareOp, value: ValueInput | number): this {
    checkKey("compare.key", key);
    if (!TARGETS.includes(target)) throw invalidArgument("compare.target", TARGETS.join(" | "), target);
    if (!OPS.includes(op)) throw invalidArgument("compare.result", OPS.join(" | "), op);
    const v = target === "value" ? toBytes("compare.value", value) : checkPositiveInt("compare.value", value, 0);
    this.compares.push({ key, target, result: op, value: v });
    return this;
  }

  thenPut(key: string, value: ValueInput, opts: Omit<PutOptions, "fence"> = {}): this {
    this.success.push(putOp(key, value, opts));
    return this;
  }
  thenDelete(key: string, opts: Omit<DeleteOptions, "fence"> = {}): this {
    this.success.push(deleteOp(key, opts));
    return this;
  }
  thenGet(key: string, opts: TxnGetOptions = {}): this {
    this.success.push(rangeOp(key, opts));
    return this;
  }
  elsePut(key: string, value: ValueInput, opts: Omit<PutOptions, "fence"> = {}): this {
    this.failure.push(putOp(key, value, opts));
    return this;
  }
  elseDelete(key: string, opts: Omit<DeleteOptions, "fence"> = {}): this {
    this.failure.push(deleteOp(key, opts));
    return this;
  }
  elseGet(key: string, opts: TxnGetOptions = {}): this {
    this.failure.push(rangeOp(key, opts));
    return this;
  }

  /**
   * Makes the whole transaction conditional on holding lock `lock` with fencing token `token` (and, with
   * `lease`, on that lease being the holder: give it for a semaphore, see FenceOption).
   */
  fenced(lock: string, token: number, lease?: number): this {
    this.fence = checkFence({ lock, token, lease });
    return this;
  }

  async commit(): Promise<TxnResult> {
    const args: Record<string, unknown> = { compare: this.compares, success: this.success, failure: this.failure };
    if (this.fence) args.fence = this.fence;
    const r = await this.sessions.write<{ revision: number; succeeded: boolean; responses: Record<string, unknown>[] }>(
      "txn",
      args,
    );
    const ops = r.succeeded ? this.success : this.failure;
    return {
      revision: r.revision,
      succeeded: r.succeeded,
      responses: (r.responses ?? []).map((resp, i) => decodeResponse(ops[i]?.op ?? "put", resp)),
    };
  }
}

function putOp(key: string, value: ValueInput, opts: Omit<PutOptions, "fence">): WireOp {
  const o: WireOp = { op: "put", key: checkKey("put.key", key), value: toBytes("put.value", value) };
  if (opts.lease) o.lease = checkPositiveInt("put.lease", opts.lease);
  if (opts.prevKv) o.prevKv = true;
  return o;
}

function deleteOp(key: string, opts: Omit<DeleteOptions, "fence">): WireOp {
  const o: WireOp = { op: "delete", key: checkKey("delete.key", key, !!opts.prefix) };
  if (opts.prefix) o.prefix = true;
  if (opts.prevKv) o.prevKv = true;
  return o;
}

function rangeOp(key: string, opts: TxnGetOptions): WireOp {
  const o: WireOp = { op: "range", key: checkKey("range.key", key, !!opts.prefix) };
  if (opts.prefix) o.prefix = true;
  if (opts.limit) o.limit = checkPositiveInt("range.limit", opts.limit);
  if (opts.revision !== undefined) o.revision = checkPositiveInt("range.revision", opts.revision);
  return o;
}

function decodeResponse(op: string, r: Record<string, unknown>): TxnOpResult {
  type W = Parameters<typeof decodeKv>[0];
  if (op === "range") return { op: "range", kvs: ((r.kvs as W[]) ?? []).map(decodeKv), more: !!r.more };
  if (op === "delete") {
    const out: TxnOpResult = { op: "delete", revision: r.revision as number, deleted: (r.deleted as number) ?? 0 };
    if (Array.isArray(r.prevKvs)) out.prevKvs = (r.prevKvs as W[]).map(decodeKv);
    return out;
  }
  const out: TxnOpResult = { op: "put", revision: r.revision as number };
  if (r.prevKv) out.prevKv = decodeKv(r.prevKv as W);
  return out;
}
