// Who a client connection is, and what it may do. A connection says who it is in its hello: a bearer token
// (when the member has a tokens file), the forwarding proof of a fellow member, or nothing. Each op's access
// need (read ⊂ write ⊂ admin) and resource kind are declared in the op registry (ops.ts).

import type { HelloFrame, RequestFrame } from "../transport/protocol.js";
import { ProtocolError } from "../transport/protocol.js";

export type Access = "read" | "write" | "admin";
export type ResourceKind = "key" | "lock" | "election" | "cluster";

export interface Permission {
  kind: ResourceKind;
  /** The permission covers every name starting with `prefix` ("" covers all); always "" for cluster. */
  prefix: string;
  access: Access;
}

export interface TokenEntry {
  /** A label for logs and metrics; never the token itself. */
  name: string;
  permissions: Permission[];
}

export interface TokenTable {
  /** The entry for a presented bearer token, or undefined when the token is unknown. */
  lookup(token: string): TokenEntry | undefined;
  readonly size: number;
}

export interface AccessRequest {
  kind: ResourceKind;
  /** The key, range prefix, lock name or election name asked for; ignored for cluster. */
  name: string;
  access: Access;
}

const ACCESS_RANK: Record<Access, number> = { read: 1, write: 2, admin: 3 };

/**
 * admin ⊇ write ⊇ read. A key permission on prefix P grants a request on key K when K starts with P; for a
 * range or watch by prefix, `name` is the requested prefix, so a grant on "config/" covers "config/db/" but
 * not "" (the whole keyspace).
 */
export function authorize(entry: TokenEntry, request: AccessRequest): boolean {
  const needed = ACCESS_RANK[request.access];
  for (const p of entry.permissions) {
    if (p.kind !== request.kind || ACCESS_RANK[p.access] < needed) continue;
    if (p.kind === "cluster" || request.name.startsWith(p.prefix)) return true;
  }
  return false;
}

/** Who sent a request: anyone (no tokens configured), a fellow member forwarding, or a token's holder. */
export type Principal = { kind: "anyone" } | { kind: "internal" } | { kind: "token"; entry: TokenEntry };

/** The principal a hello establishes, or ProtocolError UNAUTHENTICATED. */
export function authenticate(hello: HelloFrame, tokens: TokenTable | undefined, forwardProof: string): Principal {
  if (hello.forwardedBy !== undefined) {
    if (!constantTimeEqual(hello.forwardedBy, forwardProof)) throw new ProtocolError("UNAUTHENTICATED", "forwarding proof does not match this cluster's secret");
    return { kind: "internal" };
  }
  if (!tokens) return { kind: "anyone" };
  if (!hello.token) throw new ProtocolError("UNAUTHENTICATED", "this cluster requires a bearer token: pass hello.token (CLI: --token or CONCORD_TOKEN)");
  const entry = tokens.lookup(hello.token);
  if (!entry) throw new ProtocolError("UNAUTHENTICATED", "unknown token");
  return { kind: "token", entry };
}

/** What a request needs, as its op declares it: `kind: "none"` needs only a connection. */
export interface AccessNeed {
  access: Access;
  kind: ResourceKind | "none";
  /** The request field naming the resource: by default `key` for keys and `name` otherwise; listings name a `prefix`. */
  nameArg?: string;
}

/** Throws PERMISSION_DENIED unless `p` may make `req`; a transaction needs every key it touches. */
export function checkAccess(p: Principal, req: RequestFrame, need: AccessNeed): void {
  if (p.kind !== "token" || need.kind === "none") return;
  const name = need.kind === "cluster" ? "" : stringField(req[need.nameArg ?? (need.kind === "key" ? "key" : "name")]);
  const request: AccessRequest = { kind: need.kind, name, access: need.access };
  if (!authorize(p.entry, request)) {
    throw new ProtocolError("PERMISSION_DENIED", `token ${p.entry.name} may not ${need.access} ${request.kind} ${JSON.stringify(request.name)}`);
  }
  if (req.op !== "txn") return;
  // Every key a transaction touches must be writable (reads in it, and compares, readable).
  for (const list of [req.compare, req.success, req.failure]) {
    if (!Array.isArray(list)) continue;
    for (const item of list as { key?: unknown; op?: string }[]) {
      const key = stringField(item?.key);
      const access = item?.op === "range" || list === req.compare ? "read" : "write";
      if (!authorize(p.entry, { kind: "key", name: key, access })) {
        throw new ProtocolError("PERMISSION_DENIED", `token ${p.entry.name} may not ${access} key ${JSON.stringify(key)} (in txn)`);
      }
    }
  }
}

const stringField = (v: unknown): string => (typeof v === "string" ? v : "");

/** Compares secrets in time independent of where they differ. */
function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
