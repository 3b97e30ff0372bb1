// A plain reference model of the state machine's specification: a Map, linear scans and array filters, no
// indexes. The property tests apply the same commands to both and require identical results and events.
// It shares only the command/result types with the implementation.

import type { Command, Compare, KeyValue, TxnOp } from "../../src/statemachine/commands.js";
import type { Limits } from "../../src/statemachine/limits.js";

export type ModelError = { code: string; field?: string; compactRevision?: number };
export type ModelOutcome = { ok: true; value: unknown } | { ok: false; error: ModelError };
type Event = Record<string, unknown> & { type: string };

const READ_ONLY = new Set(["range", "leaseTimeToLive", "leaseList"]);

function byteLength(s: string): number {
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)) return -1;
  return new TextEncoder().encode(s).length;
}
function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const sa = Array.from(a);
  const sb = Array.from(b);
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) if (sa[i] !== sb[i]) return sa[i] - sb[i];
  return sa.length - sb.length;
}
const fail = (code: string, extra: Partial<ModelError> = {}): ModelOutcome => ({
  ok: false,
  error: { code, ...extra },
});

export class Model {
  kvs = new Map<string, KeyValue>();
  revision = 0;
  compactRevision = 0;
  history: Event[] = [];
  /** The whole store at each revision still readable (≥ compactRevision): what a read at a past revision sees. */
  pastStores = new Map<number, Map<string, KeyValue>>([[0, new Map()]]);
  leases = new Map<number, { ttlMs: number; grantedAt: number }>();
  sessions = new Map<number, { lease: number; low: number; responses: Map<number, ModelOutcome> }>();
  private pending = 0;
  private events: Event[] = [];
  private index = 0;

  constructor(readonly limits: Limits) {}

  apply(index: number, cmd: Command): { result: ModelOutcome; events: Event[] } {
    this.index = index;
    this.pending = 0;
    this.events = [];
    let result: ModelOutcome;
    const tag = cmd.session;
    if (tag === undefined || READ_ONLY.has(cmd.op)) result = this.run(cmd);
    else {
      const s = this.sessions.get(tag.clientId);
      if (!s) result = fail("SESSION_EXPIRED");
      else {
        if (tag.lowestUnacked > s.low) {
          s.low = tag.lowestUnacked;
          for (const seq of [...s.responses.keys()]) if (seq < s.low) s.responses.delete(seq);
        }
        if (s.responses.has(tag.seq)) result = s.responses.get(tag.seq)!;
        else if (tag.seq < s.low) result = fail("STALE_SEQ");
        else if (s.responses.size >= this.limits.maxSessionResponses) result = fail("SESSION_BUSY");
        else {
          result = this.run(cmd);
          s.responses.set(tag.seq, result);
        }
      }
    }
    if (this.pending) {
      this.revision = this.pending;
      this.compactRevision = Math.max(this.compactRevision, this.revision - this.limits.historyRevisions);
      this.history = this.history.filter((e) => (e.revision as number) > this.compactRevision);
      while (this.history.length > this.limits.historyMaxEvents) {
        this.compactRevision = this.history[0].revision as number;
        this.history = this.history.filter((e) => (e.revision as number) > this.compactRevision);
      }
      this.pastStores.set(this.revision, new Map(this.kvs));
    }
    this.forgetPastStores();
    return { result, events: this.events };
  }

  private forgetPastStores(): void {
    for (const r of this.pastStores.keys()) if (r < this.compactRevision) this.pastStores.delete(r);
  }

  watch(from: number): ModelOutcome {
    if (from <= this.compactRevision) return fail("COMPACTED", { compactRevision: this.compactRevision });
    return { ok: true, value: this.history.filter((e) => (e.revision as number) >= from) };
  }

  private rev(): number {
    if (!this.pending) this.pending = this.revision + 1;
    return this.pending;
  }
  private after(): number {
    return this.pending || this.revision;
  }

  private keyError(key: string, field: string): ModelOutcome | null {
    const n = byteLength(key);
    if (n < 0) return fail("INVALID_ARGUMENT", { field });
    if (n > this.limits.maxKeyBytes) return fail("KEY_TOO_LARGE", { field });
    return null;
  }
  private opError(op: TxnOp, path: string): ModelOutcome | null {
    const bad = this.keyError(op.key, path + "key");
    if (bad) return bad;
    if (op.op === "put" && op.value.length > this.limits.maxValueBytes)
      return fail("VALUE_TOO_LARGE", { field: path + "value" });
    if (op.op === "range" && op.revision !== undefined) {
      if (op.revision > this.revision) return fail("FUTURE_REVISION", { field: path + "revision" });
      if (op.revision < this.compactRevision) return fail("COMPACTED", { compactRevision: this.compactRevision });
    }
    return null;
  }
  private writesError(ops: TxnOp[]): ModelOutcome | null {
    const created = new Set<string>();
    for (const op of ops) {
      if (op.op !== "put") continue;
      if (op.lease && !this.leases.has(op.lease)) return fail("LEASE_NOT_FOUND");
      if (!this.kvs.has(op.key)) created.add(op.key);
    }
    if (this.kvs.size + created.size > this.limits.maxKeys) return fail("TOO_MANY_KEYS");
    return null;
  }

  private put(op: Extract<TxnOp, { op: "put" }>): Record<string, unknown> {
    const revision = this.rev();
    const prev = this.kvs.get(op.key);
    const kv: KeyValue = {
      key: op.key,
      value: op.value,
      createRevision: prev ? prev.createRevision : revision,
      modRevision: revision,
      version: prev ? prev.version + 1 : 1,
      lease: op.lease ?? 0,
    };
    this.kvs.set(op.key, kv);
    const ev: Event = prev ? { type: "put", revision, kv, prevKv: prev } : { type: "put", revision, kv };
    this.history.push(ev);
    this.events.push(ev);
    return op.prevKv && prev ? { op: "put", revision, prevKv: prev } : { op: "put", revision };
  }
  private del(key: string): KeyValue | undefined {
    const prev = this.kvs.get(key);
    if (!prev) return undefined;
    this.kvs.delete(key);
    const ev: Event = { type: "delete", revision: this.rev(), key, prevKv: prev };
    this.history.push(ev);
    this.events.push(ev);
    return prev;
  }
  private sortedKeys(): string[] {
    return [...this.kvs.keys()].sort();
  }
  private delete(op: Extract<TxnOp, { op: "delete" }>): Record<string, unknown> {
    const keys = op.prefix ? this.sortedKeys().filter((k) => k.startsWith(op.key)) : [op.key];
    const prevKvs = keys.map((k) => this.del(k)).filter((kv) => kv !== undefined);
    const r: Record<string, unknown> = { op: "delete", revision: this.after(), deleted: prevKvs.length };
    if (op.prevKv) r.prevKvs = prevKvs;
    return r;
  }
  private range(op: Extract<TxnOp, { op: "range" }>): Record<string, unknown> {
    // A txn's own writes are pending: a read at the revision before them sees the store without them.
    const store = op.revision !== undefined && op.revision < this.after() ? this.pastStores.get(op.revision)! : this.kvs;
    const sorted = [...store.keys()].sort();
    let keys = op.prefix ? sorted.filter((k) => k.startsWith(op.key)) : store.has(op.key) ? [op.key] : [];
    if (op.after !== undefined) keys = keys.filter((k) => k > op.after!);
    const limit = op.prefix && op.limit ? op.limit : Infinity;
    const page = keys.slice(0, limit);
    const r: Record<string, unknown> = {
      revision: this.after(),
      kvs: page.map((k) => store.get(k)),
      more: keys.length > page.length,
    };
    if (keys.length > page.length) r.cursor = page[page.length - 1];
    return r;
  }
  private endLease(id: number, reason: string): number {
    const keys = this.sortedKeys().filter((k) => this.kvs.get(k)!.lease === id);
    for (const k of keys) this.del(k);
    for (const [clientId, s] of [...this.sessions]) if (s.lease === id) this.sessions.delete(clientId);
    this.leases.delete(id);
    this.events.push({ type: "leaseEnded", id, reason });
    return keys.length;
  }

  private run(cmd: Command): ModelOutcome {
    const c = cmd as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const ok = (value: unknown): ModelOutcome => ({ ok: true, value });
    switch (c.op) {
      case "put":
      case "delete": {
        const bad = this.opError(c as TxnOp, "") ?? (c.fence ? fail("FENCED") : null) ?? this.writesError([c as TxnOp]);
        if (bad) return bad;
        const { op: _op, ...r } = c.op === "put" ? this.put(c as never) : this.delete(c as never);
        r.revision = this.after();
        return ok(r);
      }
      case "range":
        return this.opError(c as TxnOp, "") ?? ok(this.range(c as never));
      case "txn": {
        for (const name of ["compare", "success", "failure"]) {
          if (c[name].length > this.limits.maxTxnOps) return fail("TXN_TOO_LARGE");
        }
        for (let i = 0; i < c.compare.length; i++) {
          const bad = this.keyError(c.compare[i].key, `compare[${i}].key`);
          if (bad) return bad;
        }
        for (const name of ["success", "failure"]) {
          for (let i = 0; i < c[name].length; i++) {
            const bad = this.opError(c[name][i], `${name}[${i}].`);
            if (bad) return bad;
          }
        }
        if (c.fence) return fail("FENCED");
        const succeeded = c.compare.every((cmp: Compare) => {
          const kv = this.kvs.get(cmp.key);
          let order: number;
          if (cmp.target === "value") {
            if (!kv) return false;
            order = cmpBytes(kv.value, cmp.value as Uint8Array);
          } else order = (kv ? (kv as unknown as Record<string, number>)[cmp.target] : 0) - (cmp.value as number);
          return { "=": order === 0, "!=": order !== 0, "<": order < 0, ">": order > 0 }[cmp.result as "="];
        });
        const branch: TxnOp[] = succeeded ? c.success : c.failure;
        const bad = this.writesError(branch);
        if (bad) return bad;
        const responses = branch.map((op) =>
          op.op === "put" ? this.put(op) : op.op === "delete" ? this.delete(op) : { op: "range", ...this.range(op) },
        );
        for (const r of responses) r.revision = this.after();
        return ok({ revision: this.after(), succeeded, responses });
      }
      case "compact":
        if (c.revision > this.revision) return fail("FUTURE_REVISION");
        if (c.revision <= this.compactRevision) return fail("COMPACTED", { compactRevision: this.compactRevision });
        this.compactRevision = c.revision;
        this.history = this.history.filter((e) => (e.revision as number) > c.revision);
        return ok({ revision: this.revision, compactRevision: c.revision });
      case "leaseGrant":
        if (c.ttlMs < this.limits.minLeaseTtlMs || c.ttlMs > this.limits.maxLeaseTtlMs) {
          return fail("INVALID_ARGUMENT", { field: "ttlMs" });
        }
        this.leases.set(this.index, { ttlMs: c.ttlMs, grantedAt: c.grantedAt });
        this.events.push({ type: "leaseGranted", id: this.index, ttlMs: c.ttlMs });
        return ok({ id: this.index, ttlMs: c.ttlMs });
      case "leaseRevoke": {
        if (!this.leases.has(c.id)) return fail("LEASE_NOT_FOUND");
        const deleted = this.endLease(c.id, "revoked");
        return ok({ revision: this.after(), deleted });
      }
      case "leaseExpire": {
        const expired: number[] = [];
        for (const id of c.ids as number[]) {
          if (!this.leases.has(id)) continue;
          this.endLease(id, "expired");
          expired.push(id);
        }
        return ok({ revision: this.after(), expired });
      }
      case "leaseTimeToLive": {
        const l = this.leases.get(c.id);
        if (!l) return ok({ lease: null });
        const keys = this.sortedKeys().filter((k) => this.kvs.get(k)!.lease === c.id);
        return ok({ lease: { id: c.id, ttlMs: l.ttlMs, grantedAt: l.grantedAt, keys } });
      }
      case "leaseList":
        return ok({ leases: [...this.leases].sort((a, b) => a[0] - b[0]).map(([id, l]) => ({ id, ttlMs: l.ttlMs })) });
      case "registerClient":
        if (!this.leases.has(c.lease)) return fail("LEASE_NOT_FOUND");
        this.sessions.set(this.index, { lease: c.lease, low: 1, responses: new Map() });
        return ok({ clientId: this.index });
      default:
        throw new Error(`model: unknown op ${c.op}`);
    }
  }
}
