// Runtime access control (as etcd's auth): enabling it, users, roles and their permissions. Managing them needs
// the root role (or a tokens-file admin token); see docs/operations.md "Access control".

import type { RolePermission } from "../statemachine/auth-permissions.js";
import type { Connection } from "./connection.js";
import { checkKey } from "./values.js";

export type { PermissionAccess, PermissionKind } from "../statemachine/auth-permissions.js";
/** A role's grant: `access` on one exact name, or (with `prefix`) on every name starting with `name`. */
export type Permission = RolePermission;

export interface AuthStatus {
  enabled: boolean;
  /** Bumped by every change of users, roles, permissions or enabling. */
  revision: number;
}

/** Admin calls are not retried: one answered TIMEOUT may have happened (check with the lists). */
const once = { retry: false } as const;

export class AuthApi {
  constructor(private readonly conn: Connection) {}

  status(): Promise<AuthStatus> {
    return this.conn.call("authStatus", {});
  }
  /** Needs a user "root" holding the role "root". */
  enable(): Promise<{ revision: number }> {
    return this.conn.call("authEnable", {}, once);
  }
  disable(): Promise<{ revision: number }> {
    return this.conn.call("authDisable", {}, once);
  }
  /** A token for `name` (signed; valid on every member until it expires, or the user's password changes). */
  authenticate(name: string, password: string): Promise<{ token: string; ttlMs: number }> {
    return this.conn.call("authenticate", { name: checkKey("name", name), password });
  }

  addUser(name: string, password: string): Promise<{ revision: number }> {
    return this.conn.call("userAdd", { name: checkKey("name", name), password }, once);
  }
  deleteUser(name: string): Promise<{ revision: number }> {
    return this.conn.call("userDelete", { name: checkKey("name", name) }, once);
  }
  changePassword(name: string, password: string): Promise<{ revision: number }> {
    return this.conn.call("userPasswd", { name: checkKey("name", name), password }, once);
  }
  grantRole(user: string, role: string): Promise<{ revision: number }> {
    return this.conn.call("userGrantRole", { name: checkKey("user", user), role: checkKey("role", role) }, once);
  }
  revokeRole(user: string, role: string): Promise<{ revision: number }> {
    return this.conn.call("userRevokeRole", { name: checkKey("user", user), role: checkKey("role", role) }, once);
  }
  async users(): Promise<{ name: string; roles: string[] }[]> {
    return (await this.conn.call<{ users: { name: string; roles: string[] }[] }>("userList", {})).users;
  }

  addRole(name: string): Promise<{ revision: number }> {
    return this.conn.call("roleAdd", { name: checkKey("name", name) }, once);
  }
  deleteRole(name: string): Promise<{ revision: number }> {
    return this.conn.call("roleDelete", { name: checkKey("name", name) }, once);
  }
  /** Grants (or changes the access of) a permission on one name or prefix. */
  grantPermission(role: string, permission: Permission): Promise<{ revision: number }> {
    return this.conn.call("roleGrantPermission", { name: checkKey("role", role), permission }, once);
  }
  revokePermission(role: string, permission: Omit<Permission, "access">): Promise<{ revision: number }> {
    return this.conn.call("roleRevokePermission", { name: checkKey("role", role), permission }, once);
  }
  async roles(): Promise<{ name: string; permissions: Permission[] }[]> {
    return (await this.conn.call<{ roles: { name: string; permissions: Permission[] }[] }>("roleList", {})).roles;
  }
}
