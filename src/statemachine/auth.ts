// Runtime access control as replicated state (etcd's auth): users, roles, the roles' permissions and whether
// auth is enabled. Every member applies the same changes at the same index, so a revocation takes effect on
// all of them at once; commands carry their sender (`actor`, stamped by the member that received them) and are
// checked here at apply time against the state at that index — a write sent before a revocation was applied
// but ordered after it is refused, whichever member forwarded it.
//
// Decisions:
//  - Passwords are never here: a user holds a salted scrypt hash and its parameters, computed by the member
//    outside this deterministic code (World.authCrypto); verifying a password is done there too.
//  - A user's `generation` is the log index that set its password (add or passwd). Tokens name it, so a
//    password change or a delete-and-re-add ends every token issued before.
//  - The role `root` always exists, grants everything and cannot be changed or deleted; enabling auth needs a
//    user `root` holding it, and while auth is enabled that user cannot be deleted or lose the role (there is
//    always someone who can administer the cluster).
//  - A command without an actor (proposed by a member itself, or sent with a tokens-file token) is not checked:
//    those are authorized by the member before proposing. An actor with user "" is a connection that gave no
//    credentials: refused while auth is enabled.
//  - Every change bumps the auth `revision` and emits `{ kind: "authChanged", revision }`, so members can end
//    streams whose user just lost access.
//
// Snapshot section "auth": { enabled, revision, users: [[name, user]...] sorted, roles: [[name, perms]...] sorted }.

import type { ApplyContext, CommandHandler } from "./state-machine.js";
import { Invalid, extensionValidator as validator, ok, failed, type Command, type ExtensionCommand, type ExtensionValidator, type Outcome } from "./commands.js";
import { commandError, invalidArgument, type CommandError } from "./errors.js";
import { utf8Length } from "./limits.js";
import { ROOT, commandNeeds, describeRequest, rolesGrant, type AccessRequest, type PermissionAccess, type PermissionKind, type RolePermission } from "./auth-permissions.js";

/** A salted scrypt hash and the parameters it was made with. */
export interface PasswordRecord {
  salt: Uint8Array;
  hash: Uint8Array;
  N: number;
  r: number;
  p: number;
}

export interface AuthUser {
  password: PasswordRecord;
  /** Sorted, without duplicates. */
  roles: string[];
  /** Log index that set the password: tokens carry it (see the header). */
  generation: number;
}

/** Who sent a command: the runtime user and the generation its token named; user "" = no credentials. */
export interface Actor {
  user: string;
  generation: number;
}

export const AUTH_LIMITS = { maxNameBytes: 256, maxPermissionNameBytes: 8192, maxUsers: 10_000, maxRoles: 10_000, maxRolesPerUser: 256, maxPermissionsPerRole: 1024 } as const;

export type AuthEvent = { kind: "authChanged"; revision: number };

type Fields = Record<string, unknown>;

function nameField(o: Fields, field: string, maxBytes: number = AUTH_LIMITS.maxNameBytes, allowEmpty = false): string {
  const v = o[field];
  if (typeof v !== "string" || (!allowEmpty && v.length === 0)) throw new Invalid(invalidArgument(field, allowEmpty ? "a string" : "a non-empty string", v));
  const bytes = utf8Length(v);
  if (bytes < 0) throw new Invalid(invalidArgument(field, "a string without lone surrogates (valid UTF-16)", v));
  if (bytes > maxBytes) throw new Invalid(invalidArgument(field, `at most ${maxBytes} UTF-8 bytes`, `a name of ${bytes} bytes`));
  return v;
}

function intIn(o: Fields, field: string, min: number, max: number): number {
  const v = o[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) throw new Invalid(invalidArgument(field, `an integer from ${min} to ${max}`, v));
  return v;
}

function bytesIn(o: Fields, field: string, min: number, max: number): Uint8Array {
  const v = o[field];
  if (!(v instanceof Uint8Array) || v.length < min || v.length > max) throw new Invalid(invalidArgument(field, `${min} to ${max} bytes`, v));
  return v.slice(); // kept in the auth state: its own copy, not a view of the entry (decodeCommand)
}

function record(v: unknown, field: string, what: string): Fields {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) throw new Invalid(invalidArgument(field, what, v));
  return v as Fields;
}

/** A password record as proposed: parameters within what a member may choose (N a power of two). */
export function passwordRecord(v: unknown, field = "password"): PasswordRecord {
  const o = record(v, field, "a map { salt, hash, N, r, p } (a salted scrypt hash)");
  const N = intIn(o, "N", 2, 1 << 20);
  if ((N & (N - 1)) !== 0) throw new Invalid(invalidArgument(`${field}.N`, "a power of two", N));
  return { salt: bytesIn(o, "salt", 8, 64), hash: bytesIn(o, "hash", 16, 128), N, r: intIn(o, "r", 1, 64), p: intIn(o, "p", 1, 16) };
}

const KINDS: readonly PermissionKind[] = ["key", "lock", "election"];
const ACCESSES: readonly PermissionAccess[] = ["read", "write", "readwrite"];

function permissionField(v: unknown, withAccess: boolean): RolePermission {
  const o = record(v, "permission", `a map { kind: key | lock | election, name, prefix${withAccess ? ", access: read | write | readwrite" : ""} }`);
  const kind = o.kind === undefined ? "key" : o.kind;
  if (typeof kind !== "string" || !KINDS.includes(kind as PermissionKind)) throw new Invalid(invalidArgument("permission.kind", "key, lock or election", kind));
  const prefix = o.prefix === undefined ? false : o.prefix;
  if (typeof prefix !== "boolean") throw new Invalid(invalidArgument("permission.prefix", "a boolean", prefix));
  const name = nameField(o, "name", AUTH_LIMITS.maxPermissionNameBytes, prefix);
  const access = withAccess ? o.access : "read";
  if (typeof access !== "string" || !ACCESSES.includes(access as PermissionAccess)) throw new Invalid(invalidArgument("permission.access", "read, write or readwrite", access));
  return { kind: kind as PermissionKind, name, prefix, access: access as PermissionAccess };
}

/** The sender of a command, as the member that received it stamped it (validateCommand keeps it). */
export function validateActor(v: unknown): Actor | CommandError {
  try {
    const o = record(v, "actor", "a map { user, generation }");
    return { user: nameField(o, "user", AUTH_LIMITS.maxNameBytes, true), generation: intIn(o, "generation", 0, Number.MAX_SAFE_INTEGER) };
  } catch (e) {
    if (e instanceof Invalid) return e.error;
    throw e;
  }
}

const cmd = (op: string, fields: Record<string, unknown> = {}): Command => ({ op, ...fields }) as Command;

export const AUTH_VALIDATORS: Readonly<Record<string, ExtensionValidator>> = {
  authEnable: validator(() => cmd("authEnable")),
  authDisable: validator(() => cmd("authDisable")),
  authUserAdd: validator((o) => cmd("authUserAdd", { name: nameField(o, "name"), password: passwordRecord(o.password) })),
  authUserDelete: validator((o) => cmd("authUserDelete", { name: nameField(o, "name") })),
  authUserPasswd: validator((o) => cmd("authUserPasswd", { name: nameField(o, "name"), password: passwordRecord(o.password) })),
  authUserGrantRole: validator((o) => cmd("authUserGrantRole", { name: nameField(o, "name"), role: nameField(o, "role") })),
  authUserRevokeRole: validator((o) => cmd("authUserRevokeRole", { name: nameField(o, "name"), role: nameField(o, "role") })),
  authRoleAdd: validator((o) => cmd("authRoleAdd", { name: nameField(o, "name") })),
  authRoleDelete: validator((o) => cmd("authRoleDelete", { name: nameField(o, "name") })),
  authRoleGrantPermission: validator((o) => cmd("authRoleGrantPermission", { name: nameField(o, "name"), permission: permissionField(o.permission, true) })),
  authRoleRevokePermission: validator((o) => cmd("authRoleRevokePermission", { name: nameField(o, "name"), permission: permissionField(o.permission, false) })),
};

const byName = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
const samePlace = (a: RolePermission, b: RolePermission) => a.kind === b.kind && a.name === b.name && a.prefix === b.prefix;
function comparePermissions(a: RolePermission, b: RolePermission): number {
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return Number(a.prefix) - Number(b.prefix);
}
const describePermission = (p: RolePermission) => `${p.kind} ${p.prefix ? "prefix " : ""}${JSON.stringify(p.name)}`;

const userNotFound = (name: string) => commandError("USER_NOT_FOUND", `user ${JSON.stringify(name)} does not exist`);
const roleNotFound = (name: string) => commandError("ROLE_NOT_FOUND", `role ${JSON.stringify(name)} does not exist`);

export interface AuthStatus {
  enabled: boolean;
  revision: number;
}

export class AuthHandler implements CommandHandler {
  readonly section = "auth";
  readonly sectionOptional = true;
  readonly ops = AUTH_VALIDATORS;
  readonly opsAllowedWhenFull: ReadonlySet<string> = new Set(["authEnable", "authDisable", "authUserDelete", "authUserRevokeRole", "authRoleDelete", "authRoleRevokePermission"]);
  private enabled = false;
  private revision = 0;
  private users = new Map<string, AuthUser>();
  private roles = new Map<string, RolePermission[]>();
  private bytes = 0;

  // ----------------------------------------------------------------------------------------------------------
  // Reads between applies

  status(): AuthStatus {
    return { enabled: this.enabled, revision: this.revision };
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  user(name: string): AuthUser | undefined {
    return this.users.get(name);
  }

  /** Users with their roles, sorted by name (never their password records). */
  userList(): { name: string; roles: string[] }[] {
    return [...this.users.entries()].sort(byName).map(([name, u]) => ({ name, roles: [...u.roles] }));
  }

  /** Roles with their permissions, sorted by name; `root` first-class, with no listed permission (it has all). */
  roleList(): { name: string; permissions: RolePermission[] }[] {
    const all: [string, RolePermission[]][] = [[ROOT, []], ...this.roles.entries()];
    return all.sort(byName).map(([name, perms]) => ({ name, permissions: perms.map((p) => ({ ...p })) }));
  }

  /** Whether `user` (as of now) may make `request`; false for a user that does not exist. */
  grants(user: string, request: AccessRequest): boolean {
    const u = this.users.get(user);
    return u !== undefined && rolesGrant(u.roles, (r) => this.roles.get(r), request);
  }

  /**
   * The apply-time check (the state machine's `authorizer`): null to apply `command`, else PERMISSION_DENIED.
   * Only commands that carry an actor are checked, and only while auth is enabled (see the header).
   */
  readonly authorize = (command: Command): CommandError | null => {
    const actor = (command as { actor?: Actor }).actor;
    if (!this.enabled || actor === undefined) return null;
    if (actor.user === "") return commandError("PERMISSION_DENIED", "authentication is enabled: a connection without credentials may not change anything (authenticate first)");
    const u = this.users.get(actor.user);
    if (u === undefined || u.generation !== actor.generation) {
      return commandError("PERMISSION_DENIED", `user ${JSON.stringify(actor.user)} was deleted or changed its password since it authenticated: authenticate again`);
    }
    for (const need of commandNeeds(command as unknown as { op: string } & Record<string, unknown>)) {
      if (!rolesGrant(u.roles, (r) => this.roles.get(r), need)) return commandError("PERMISSION_DENIED", `user ${JSON.stringify(actor.user)} may not ${describeRequest(need)}`);
    }
    return null;
  };

  // ----------------------------------------------------------------------------------------------------------
  // Apply

  apply(command: ExtensionCommand, ctx: ApplyContext): Outcome {
    const c = command as ExtensionCommand & { name: string; role: string; password: PasswordRecord; permission: RolePermission };
    const r = this.change(c, ctx.index);
    if (r === null) return ok({ revision: this.revision });
    if ("code" in r) return failed(r as CommandError);
    this.revision++;
    ctx.emit({ kind: "authChanged", revision: this.revision } satisfies AuthEvent);
    this.recount();
    return ok({ revision: this.revision });
  }

  /** Makes the change: {} when something changed, null when nothing needed to, or the error. */
  private change(c: { op: string; name: string; role: string; password: PasswordRecord; permission: RolePermission }, index: number): CommandError | Record<string, never> | null {
    switch (c.op) {
      case "authEnable": {
        if (this.enabled) return null;
        const root = this.users.get(ROOT);
        if (!root || !root.roles.includes(ROOT)) {
          return commandError("ROOT_USER_REQUIRED", `auth cannot be enabled without a user "root" holding the role "root" (add it: user add root, user grant-role root root)`);
        }
        this.enabled = true;
        return {};
      }
      case "authDisable":
        if (!this.enabled) return null;
        this.enabled = false;
        return {};
      case "authUserAdd":
        if (this.users.has(c.name)) return commandError("USER_EXISTS", `user ${JSON.stringify(c.name)} already exists`);
        if (this.users.size >= AUTH_LIMITS.maxUsers) return commandError("TOO_MANY_USERS", `at most ${AUTH_LIMITS.maxUsers} users`);
        this.users.set(c.name, { password: c.password, roles: [], generation: index });
        return {};
      case "authUserDelete":
        if (!this.users.has(c.name)) return userNotFound(c.name);
        if (this.enabled && c.name === ROOT) return commandError("ROOT_PROTECTED", `user "root" cannot be deleted while auth is enabled (disable auth first)`);
        this.users.delete(c.name);
        return {};
      case "authUserPasswd": {
        const u = this.users.get(c.name);
        if (!u) return userNotFound(c.name);
        this.users.set(c.name, { ...u, password: c.password, generation: index });
        return {};
      }
      case "authUserGrantRole": {
        const u = this.users.get(c.name);
        if (!u) return userNotFound(c.name);
        if (c.role !== ROOT && !this.roles.has(c.role)) return roleNotFound(c.role);
        if (u.roles.includes(c.role)) return null;
        if (u.roles.length >= AUTH_LIMITS.maxRolesPerUser) return commandError("TOO_MANY_ROLES", `a user holds at most ${AUTH_LIMITS.maxRolesPerUser} roles`);
        this.users.set(c.name, { ...u, roles: [...u.roles, c.role].sort() });
        return {};
      }
      case "authUserRevokeRole": {
        const u = this.users.get(c.name);
        if (!u) return userNotFound(c.name);
        if (!u.roles.includes(c.role)) return commandError("ROLE_NOT_GRANTED", `user ${JSON.stringify(c.name)} does not hold role ${JSON.stringify(c.role)}`);
        if (this.enabled && c.name === ROOT && c.role === ROOT) return commandError("ROOT_PROTECTED", `user "root" cannot lose the role "root" while auth is enabled (disable auth first)`);
        this.users.set(c.name, { ...u, roles: u.roles.filter((r) => r !== c.role) });
        return {};
      }
      case "authRoleAdd":
        if (c.name === ROOT || this.roles.has(c.name)) return commandError("ROLE_EXISTS", `role ${JSON.stringify(c.name)} already exists`);
        if (this.roles.size >= AUTH_LIMITS.maxRoles) return commandError("TOO_MANY_ROLES", `at most ${AUTH_LIMITS.maxRoles} roles`);
        this.roles.set(c.name, []);
        return {};
      case "authRoleDelete":
        if (c.name === ROOT) return commandError("ROOT_PROTECTED", `the role "root" cannot be deleted`);
        if (!this.roles.delete(c.name)) return roleNotFound(c.name);
        for (const [name, u] of this.users) if (u.roles.includes(c.name)) this.users.set(name, { ...u, roles: u.roles.filter((r) => r !== c.name) });
        return {};
      case "authRoleGrantPermission": {
        if (c.name === ROOT) return commandError("ROOT_PROTECTED", `the role "root" already grants everything`);
        const perms = this.roles.get(c.name);
        if (!perms) return roleNotFound(c.name);
        const at = perms.findIndex((p) => samePlace(p, c.permission));
        if (at >= 0 && perms[at].access === c.permission.access) return null;
        if (at < 0 && perms.length >= AUTH_LIMITS.maxPermissionsPerRole) return commandError("TOO_MANY_PERMISSIONS", `a role holds at most ${AUTH_LIMITS.maxPermissionsPerRole} permissions`);
        const next = perms.filter((_, i) => i !== at);
        next.push(c.permission);
        this.roles.set(c.name, next.sort(comparePermissions));
        return {};
      }
      case "authRoleRevokePermission": {
        if (c.name === ROOT) return commandError("ROOT_PROTECTED", `the role "root" cannot lose permissions`);
        const perms = this.roles.get(c.name);
        if (!perms) return roleNotFound(c.name);
        const next = perms.filter((p) => !samePlace(p, c.permission));
        if (next.length === perms.length) return commandError("PERMISSION_NOT_GRANTED", `role ${JSON.stringify(c.name)} has no permission on ${describePermission(c.permission)}`);
        this.roles.set(c.name, next);
        return {};
      }
      default:
        return commandError("MALFORMED_COMMAND", `op ${JSON.stringify(c.op)} is not an auth op`);
    }
  }

  // ----------------------------------------------------------------------------------------------------------
  // Snapshot and space

  snapshot(): unknown {
    return {
      enabled: this.enabled,
      revision: this.revision,
      users: [...this.users.entries()].sort(byName).map(([name, u]) => [name, { password: { salt: u.password.salt, hash: u.password.hash, N: u.password.N, r: u.password.r, p: u.password.p }, roles: u.roles, generation: u.generation }]),
      roles: [...this.roles.entries()].sort(byName).map(([name, perms]) => [name, perms.map((p) => ({ kind: p.kind, name: p.name, prefix: p.prefix, access: p.access }))]),
    };
  }

  restore(data: unknown): void {
    // A snapshot from before runtime auth existed has no section: no users, no roles, auth disabled.
    if (data === undefined) return;
    const s = data as { enabled: boolean; revision: number; users: [string, AuthUser][]; roles: [string, RolePermission[]][] };
    this.enabled = s.enabled;
    this.revision = s.revision;
    this.users = new Map(s.users.map(([name, u]) => [name, { password: u.password, roles: [...u.roles], generation: u.generation }]));
    this.roles = new Map(s.roles.map(([name, perms]) => [name, perms.map((p) => ({ ...p }))]));
    this.recount();
  }

  sizeBytes(): number {
    return this.bytes;
  }

  /** Counts as space.ts does for the core: the bytes held plus a fixed overhead per record. */
  private recount(): void {
    let n = 0;
    for (const [name, u] of this.users) {
      n += 64 + name.length * 2 + u.password.salt.length + u.password.hash.length;
      for (const r of u.roles) n += 16 + r.length * 2;
    }
    for (const [name, perms] of this.roles) {
      n += 64 + name.length * 2;
      for (const p of perms) n += 32 + p.name.length * 2;
    }
    this.bytes = n;
  }
}
