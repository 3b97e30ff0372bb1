// Who a client connection is, and what it may do. A connection says who it is in its hello: a bearer token
// from the tokens file, a runtime user's token (from `authenticate`), the forwarding proof of a fellow member,
// or nothing. Each op's access need (read ⊂ write ⊂ admin) and resource kind are declared in the op registry
// (ops.ts).
//
// Two sources of permissions coexist:
//  - the tokens file (--auth-tokens-file): static, per member, unaffected by runtime auth — the bootstrap and
//    break-glass credentials (a tokens-file admin may add users and enable auth);
//  - runtime users and roles (src/statemachine/auth.ts): replicated; they count only while auth is enabled.
// A connection without credentials may do everything when neither restricts it (no tokens file, runtime auth
// disabled); otherwise only `authenticate`.

import { txnNeeds, describeRequest, type Access, type AccessRequest, type ResourceKind } from "../statemachine/auth-permissions.js";
import type { Actor, AuthHandler } from "../statemachine/auth.js";
import type { HelloFrame, RequestFrame } from "../transport/protocol.js";
import { ProtocolError } from "../transport/protocol.js";
import { readUserToken, USER_TOKEN_PREFIX } from "./auth-tokens.js";
import type { AuthCrypto } from "./world.js";

export type { Access, AccessRequest, ResourceKind } from "../statemachine/auth-permissions.js";

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

const ACCESS_RANK: Record<Access, number> = { read: 1, write: 2, admin: 3 };

/**
 * A tokens-file entry's grant: admin ⊇ write ⊇ read. A key permission on prefix P grants a request on key K
 * when K starts with P; for a range or watch by prefix, `name` is the requested prefix, so a grant on "config/"
 * covers "config/db/" but not "" (the whole keyspace).
 */
export function authorize(entry: TokenEntry, request: AccessRequest): boolean {
  if (request.kind === "none") return true;
  const needed = ACCESS_RANK[request.access];
  for (const p of entry.permissions) {
    if (p.kind !== request.kind || ACCESS_RANK[p.access] < needed) continue;
    if (p.kind === "cluster" || request.name.startsWith(p.prefix)) return true;
  }
  return false;
}

/** Who sent a request: nobody in particular, a fellow member forwarding, a tokens-file token's holder, or a runtime user. */
export type Principal =
  | { kind: "anonymous" }
  | { kind: "internal" }
  | { kind: "token"; entry: TokenEntry }
  | { kind: "user"; name: string; generation: number };

/** What authentication consults: the tokens file, the replicated auth state, token signing, the wall clock. */
export interface AuthContext {
  tokens: TokenTable | undefined;
  forwardProof: string;
  runtime: Pick<AuthHandler, "isEnabled" | "user" | "grants">;
  crypto: AuthCrypto;
  wallNow: number;
}

/** The principal a hello establishes, or ProtocolError UNAUTHENTICATED. */
export function authenticate(hello: HelloFrame, ctx: AuthContext): Principal {
  if (hello.forwardedBy !== undefined) {
    if (!constantTimeEqual(hello.forwardedBy, ctx.forwardProof)) throw new ProtocolError("UNAUTHENTICATED", "forwarding proof does not match this cluster's secret");
    return { kind: "internal" };
  }
  if (hello.token?.startsWith(USER_TOKEN_PREFIX)) {
    const claims = readUserToken(hello.token, ctx.crypto, ctx.wallNow);
    if (typeof claims === "string") throw new ProtocolError("UNAUTHENTICATED", `${claims}: authenticate again (CLI: --user)`);
    return { kind: "user", name: claims.user, generation: claims.generation };
  }
  if (!ctx.tokens) return { kind: "anonymous" };
  if (hello.token) {
    const entry = ctx.tokens.lookup(hello.token);
    if (!entry) throw new ProtocolError("UNAUTHENTICATED", "unknown token");
    return { kind: "token", entry };
  }
  // Without credentials: only to authenticate as a runtime user, which needs runtime auth enabled.
  if (!ctx.runtime.isEnabled) {
    throw new ProtocolError("UNAUTHENTICATED", "this cluster requires a bearer token: pass hello.token (CLI: --token or CONCORD_TOKEN); runtime auth is not enabled, so users cannot authenticate");
  }
  return { kind: "anonymous" };
}

/** What a request needs, as its op declares it: "none" needs only an identity, "public" not even that. */
export interface AccessNeed {
  access: Access;
  kind: ResourceKind | "none" | "public";
  /** The request field naming the resource, when not `key` (keys) or `name`: listings name a `prefix`. */
  nameArg?: "prefix";
}

/** Ops whose key or name may be a prefix (`prefix: true`). */
const PREFIXED_OPS: ReadonlySet<string> = new Set(["range", "delete", "watch"]);

/** Every resource a request reaches: its key or name, or for a transaction every key it touches. */
export function requestNeeds(req: RequestFrame, need: AccessNeed, p: Principal): AccessRequest[] {
  if (need.kind === "public") return [];
  if (need.kind === "none" || need.kind === "cluster") return [{ kind: need.kind, name: "", access: need.access }];
  // A listing reaches every name under its prefix (none given: all of them).
  if (need.nameArg === "prefix") return [{ kind: need.kind, name: stringField(req.prefix), prefix: true, access: need.access }];
  if (req.op === "txn") {
    const needs = txnNeeds(req as { compare?: unknown; success?: unknown; failure?: unknown });
    // The tokens file's rule, unchanged: a transaction also needs write on the whole keyspace.
    return p.kind === "token" ? [{ kind: "key", name: "", access: "write" }, ...needs] : needs;
  }
  const name = stringField(need.kind === "key" ? req.key : req.name);
  return [{ kind: need.kind, name, prefix: PREFIXED_OPS.has(req.op) && req.prefix === true, access: need.access }];
}

/**
 * Why `p` may not make requests needing `needs` now, as [code, message], or null when it may. Runtime users
 * are judged by the replicated state as this member has applied it.
 */
export function refusal(p: Principal, needs: readonly AccessRequest[], ctx: Pick<AuthContext, "tokens" | "runtime">): [string, string] | null {
  switch (p.kind) {
    case "internal":
      return null;
    case "token": {
      const denied = needs.find((n) => !authorize(p.entry, n));
      return denied ? ["PERMISSION_DENIED", `token ${p.entry.name} may not ${describeRequest(denied)}`] : null;
    }
    case "anonymous":
    case "user": {
      if (needs.length === 0) return null;
      if (!ctx.runtime.isEnabled) {
        // Runtime auth disabled: a user's token counts as no credentials.
        return ctx.tokens ? ["UNAUTHENTICATED", "this cluster requires a bearer token: pass hello.token (CLI: --token or CONCORD_TOKEN)"] : null;
      }
      if (p.kind === "anonymous") return ["UNAUTHENTICATED", "authentication is enabled: authenticate first (CLI: --user name[:password])"];
      const u = ctx.runtime.user(p.name);
      if (!u || u.generation !== p.generation) return ["UNAUTHENTICATED", `user ${JSON.stringify(p.name)} was deleted or changed its password since it authenticated: authenticate again`];
      const denied = needs.find((n) => !ctx.runtime.grants(p.name, n));
      return denied ? ["PERMISSION_DENIED", `user ${JSON.stringify(p.name)} may not ${describeRequest(denied)}`] : null;
    }
  }
}

/**
 * The sender to stamp on a request this member proposes or forwards (checked again at apply: auth.ts), or
 * undefined for those the apply-time check trusts (tokens-file holders, members). A forwarded request keeps the
 * actor its first member stamped; a client cannot set one itself.
 */
export function actorOf(p: Principal, req: RequestFrame): Actor | undefined {
  switch (p.kind) {
    case "internal":
      return req.actor as Actor | undefined;
    case "token":
      return undefined;
    case "anonymous":
      return { user: "", generation: 0 };
    case "user":
      return { user: p.name, generation: p.generation };
  }
}

/** The principal a forwarded request's actor stands for (the leader checks it again against its own state). */
export function actorPrincipal(actor: unknown): Principal | undefined {
  if (typeof actor !== "object" || actor === null) return undefined;
  const { user, generation } = actor as { user?: unknown; generation?: unknown };
  if (typeof user !== "string" || typeof generation !== "number") return undefined;
  return user === "" ? { kind: "anonymous" } : { kind: "user", name: user, generation };
}

const stringField = (v: unknown): string => (typeof v === "string" ? v : "");

/** Compares secrets in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
