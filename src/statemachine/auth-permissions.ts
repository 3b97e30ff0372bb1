// What a request or command needs, and whether a set of runtime permissions grants it (pure; used by the
// state machine at apply time and by the host before serving). Runtime permissions are etcd's: read, write or
// readwrite, on one exact key (or lock or election name) or on every name starting with a prefix. The `root`
// role grants everything; only root may administer the cluster (compaction, membership, auth itself).

export type Access = "read" | "write" | "admin";
export type ResourceKind = "key" | "lock" | "election" | "cluster";
export type PermissionAccess = "read" | "write" | "readwrite";
export type PermissionKind = "key" | "lock" | "election";

/** One grant of a role. `prefix`: every name starting with `name` ("" with prefix: every name). */
export interface RolePermission {
  kind: PermissionKind;
  name: string;
  prefix: boolean;
  access: PermissionAccess;
}

/** One need of a request: `prefix` when it reaches every name starting with `name` (range, watch, delete by prefix). */
export interface AccessRequest {
  kind: ResourceKind | "none";
  name: string;
  prefix?: boolean;
  access: Access;
}

export const ROOT = "root";

/**
 * Whether a runtime user with `roles` (their permissions looked up by `permissionsOf`) may make `request`.
 * Root may do anything; everyone else may do what needs no resource ("none": leases, sessions) and read the
 * cluster's own state, never administer it, and reach a key, lock or election name only through a permission
 * that covers the whole request: a prefix request needs a prefix grant that contains its prefix.
 */
export function rolesGrant(roles: readonly string[], permissionsOf: (role: string) => readonly RolePermission[] | undefined, request: AccessRequest): boolean {
  if (roles.includes(ROOT)) return true;
  if (request.kind === "none") return true;
  if (request.kind === "cluster") return request.access === "read";
  if (request.access === "admin") return false;
  for (const role of roles) {
    for (const p of permissionsOf(role) ?? []) {
      if (p.kind !== request.kind || !(p.access === "readwrite" || p.access === request.access)) continue;
      if (p.prefix ? request.name.startsWith(p.name) : !request.prefix && request.name === p.name) return true;
    }
  }
  return false;
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");

/**
 * The keys a transaction touches: compares and ranges read, puts and deletes write. Defensive about its input
 * (a request not validated yet): anything malformed is asked for as the empty key, which only a grant on
 * every key covers, and is refused later by validation anyway.
 */
export function txnNeeds(txn: { compare?: unknown; success?: unknown; failure?: unknown }): AccessRequest[] {
  const needs: AccessRequest[] = [];
  for (const c of Array.isArray(txn.compare) ? txn.compare : []) {
    needs.push({ kind: "key", name: str((c as { key?: unknown })?.key), prefix: false, access: "read" });
  }
  for (const list of [txn.success, txn.failure]) {
    for (const item of Array.isArray(list) ? list : []) {
      const o = (item ?? {}) as { op?: unknown; key?: unknown; prefix?: unknown };
      needs.push({ kind: "key", name: str(o.key), prefix: o.prefix === true, access: o.op === "range" ? "read" : "write" });
    }
  }
  return needs;
}

/** Ops of extension handlers that need a named resource (the rest of theirs need admin unless listed in ANY_USER_OPS). */
const NAMED_OPS: Readonly<Record<string, { kind: ResourceKind; access: Access }>> = {
  lockAcquire: { kind: "lock", access: "write" },
  lockRelease: { kind: "lock", access: "write" },
  lockStatus: { kind: "lock", access: "read" },
  electionCampaign: { kind: "election", access: "write" },
  electionProclaim: { kind: "election", access: "write" },
  electionResign: { kind: "election", access: "write" },
  electionLeader: { kind: "election", access: "read" },
};
const ANY_USER_OPS: ReadonlySet<string> = new Set(["leaseGrant", "leaseRevoke", "leaseTimeToLive", "leaseList", "registerClient"]);

/** What an applied command needs of its actor. Unknown ops need admin: a new op is closed until declared here. */
export function commandNeeds(command: { op: string } & Record<string, unknown>): AccessRequest[] {
  switch (command.op) {
    case "put":
      return [{ kind: "key", name: str(command.key), prefix: false, access: "write" }];
    case "delete":
      return [{ kind: "key", name: str(command.key), prefix: command.prefix === true, access: "write" }];
    case "range":
      return [{ kind: "key", name: str(command.key), prefix: command.prefix === true, access: "read" }];
    case "txn":
      return txnNeeds(command as { compare?: unknown; success?: unknown; failure?: unknown });
  }
  if (ANY_USER_OPS.has(command.op)) return [{ kind: "none", name: "", prefix: false, access: "write" }];
  const named = NAMED_OPS[command.op];
  if (named) return [{ kind: named.kind, name: str(command.name), prefix: false, access: named.access }];
  return [{ kind: "cluster", name: "", prefix: false, access: "admin" }];
}

/** "read key "a"" / "write every key starting with "a/"": what a refusal names. */
export function describeRequest(r: AccessRequest): string {
  if (r.kind === "none") return `${r.access}`;
  if (r.kind === "cluster") return `${r.access} cluster`;
  return r.prefix ? `${r.access} every ${r.kind} name starting with ${JSON.stringify(r.name)}` : `${r.access} ${r.kind} ${JSON.stringify(r.name)}`;
}
