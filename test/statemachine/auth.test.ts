// Runtime auth as replicated state (src/statemachine/auth.ts): users, roles, permissions, enabling, the
// apply-time check of commands by their actor, snapshots, and the permission rules (auth-permissions.ts).

import { describe, expect, it } from "vitest";
import { restoreCoordinationStateMachine } from "../../src/locks/index.js";
import { commandNeeds, rolesGrant, type RolePermission } from "../../src/statemachine/auth-permissions.js";
import { encodeCommand, type Command } from "../../src/statemachine/index.js";
import { StateMachine } from "../../src/statemachine/state-machine.js";
import { decodeSnapshot, encodeSnapshot } from "../../src/statemachine/snapshot.js";
import { bytes, errorCode, harness, value, type Harness } from "../locks/harness.js";

const password = (seed: number) => ({ salt: new Uint8Array(16).fill(seed), hash: new Uint8Array(32).fill(seed), N: 16384, r: 8, p: 1 });
const cmd = (op: string, fields: Record<string, unknown> = {}) => ({ op, ...fields }) as unknown as Command;
const as = (c: Record<string, unknown>, user: string, generation: number) => ({ ...c, actor: { user, generation } }) as unknown as Command;
const perm = (name: string, access: string, extra: Partial<RolePermission> = {}) => ({ kind: "key", name, prefix: false, access, ...extra });

/** A harness with user root (role root) and user alice (role app: readwrite on app/ prefix), auth enabled. */
function withUsers(): Harness & { gen: Record<string, number> } {
  const h = harness();
  const gen: Record<string, number> = {};
  for (const [name, seed] of [["root", 1], ["alice", 2]] as const) {
    value(h.run(cmd("authUserAdd", { name, password: password(seed) })).result);
    gen[name] = h.c.stateMachine.lastApplied;
  }
  value(h.run(cmd("authUserGrantRole", { name: "root", role: "root" })).result);
  value(h.run(cmd("authRoleAdd", { name: "app" })).result);
  value(h.run(cmd("authRoleGrantPermission", { name: "app", permission: perm("app/", "readwrite", { prefix: true }) })).result);
  value(h.run(cmd("authUserGrantRole", { name: "alice", role: "app" })).result);
  value(h.run(cmd("authEnable")).result);
  return Object.assign(h, { gen });
}

describe("runtime auth state", () => {
  it("keeps users with their roles and roles with their permissions, sorted, never listing password records", () => {
    const h = withUsers();
    expect(h.c.auth.userList()).toEqual([
      { name: "alice", roles: ["app"] },
      { name: "root", roles: ["root"] },
    ]);
    expect(h.c.auth.roleList()).toEqual([
      { name: "app", permissions: [{ kind: "key", name: "app/", prefix: true, access: "readwrite" }] },
      { name: "root", permissions: [] },
    ]);
    expect(h.c.auth.status()).toEqual({ enabled: true, revision: 7 });
    expect(h.c.auth.user("alice")!.generation).toBe(h.gen.alice);
  });

  it("enables only with a user root holding the role root, and then protects that user and role", () => {
    const h = harness();
    expect(errorCode(h.run(cmd("authEnable")).result)).toBe("ROOT_USER_REQUIRED");
    value(h.run(cmd("authUserAdd", { name: "root", password: password(1) })).result);
    expect(errorCode(h.run(cmd("authEnable")).result)).toBe("ROOT_USER_REQUIRED");
    value(h.run(cmd("authUserGrantRole", { name: "root", role: "root" })).result);
    value(h.run(cmd("authEnable")).result);
    expect(errorCode(h.run(cmd("authUserDelete", { name: "root" })).result)).toBe("ROOT_PROTECTED");
    expect(errorCode(h.run(cmd("authUserRevokeRole", { name: "root", role: "root" })).result)).toBe("ROOT_PROTECTED");
    expect(errorCode(h.run(cmd("authRoleDelete", { name: "root" })).result)).toBe("ROOT_PROTECTED");
    expect(errorCode(h.run(cmd("authRoleGrantPermission", { name: "root", permission: perm("a", "read") })).result)).toBe("ROOT_PROTECTED");
    value(h.run(cmd("authDisable")).result);
    value(h.run(cmd("authUserDelete", { name: "root" })).result);
  });

  it("answers typed errors for what does not exist or already does, and changes nothing then", () => {
    const h = withUsers();
    const before = h.c.auth.status().revision;
    expect(errorCode(h.run(cmd("authUserAdd", { name: "alice", password: password(3) })).result)).toBe("USER_EXISTS");
    expect(errorCode(h.run(cmd("authUserDelete", { name: "bob" })).result)).toBe("USER_NOT_FOUND");
    expect(errorCode(h.run(cmd("authUserGrantRole", { name: "alice", role: "nope" })).result)).toBe("ROLE_NOT_FOUND");
    expect(errorCode(h.run(cmd("authUserRevokeRole", { name: "alice", role: "root" })).result)).toBe("ROLE_NOT_GRANTED");
    expect(errorCode(h.run(cmd("authRoleAdd", { name: "app" })).result)).toBe("ROLE_EXISTS");
    expect(errorCode(h.run(cmd("authRoleRevokePermission", { name: "app", permission: { kind: "key", name: "app/" } })).result)).toBe("PERMISSION_NOT_GRANTED");
    expect(h.c.auth.status().revision).toBe(before);
    // Granting what is granted changes nothing and bumps nothing.
    value(h.run(cmd("authUserGrantRole", { name: "alice", role: "app" })).result);
    expect(h.c.auth.status().revision).toBe(before);
  });

  it("validates structure: names, permission kinds and access, password records", () => {
    const h = harness();
    expect(errorCode(h.run(cmd("authUserAdd", { name: "", password: password(1) })).result)).toBe("INVALID_ARGUMENT");
    expect(errorCode(h.run(cmd("authUserAdd", { name: "x", password: { ...password(1), N: 1000 } })).result)).toBe("INVALID_ARGUMENT");
    expect(errorCode(h.run(cmd("authUserAdd", { name: "x", password: "plain" })).result)).toBe("INVALID_ARGUMENT");
    value(h.run(cmd("authRoleAdd", { name: "r" })).result);
    expect(errorCode(h.run(cmd("authRoleGrantPermission", { name: "r", permission: perm("a", "all") })).result)).toBe("INVALID_ARGUMENT");
    expect(errorCode(h.run(cmd("authRoleGrantPermission", { name: "r", permission: perm("a", "read", { kind: "queue" as never }) })).result)).toBe("INVALID_ARGUMENT");
    expect(errorCode(h.run(as({ op: "put", key: "k", value: bytes("v") }, 7 as never, 0)).result)).toBe("INVALID_ARGUMENT");
  });

  it("refuses at apply what an actor may not do, and applies what it may", () => {
    const h = withUsers();
    const put = (key: string) => ({ op: "put", key, value: bytes("v") });
    value(h.run(as(put("app/x"), "alice", h.gen.alice)).result);
    expect(errorCode(h.run(as(put("other"), "alice", h.gen.alice)).result)).toBe("PERMISSION_DENIED");
    expect(errorCode(h.run(as({ op: "delete", key: "", prefix: true }, "alice", h.gen.alice)).result)).toBe("PERMISSION_DENIED");
    value(h.run(as({ op: "delete", key: "app/", prefix: true }, "alice", h.gen.alice)).result);
    // A transaction needs every key it touches.
    const txn = (key: string) => ({ op: "txn", compare: [], success: [{ op: "put", key, value: bytes("v") }], failure: [] });
    value(h.run(as(txn("app/y"), "alice", h.gen.alice)).result);
    expect(errorCode(h.run(as(txn("secret"), "alice", h.gen.alice)).result)).toBe("PERMISSION_DENIED");
    // Locks need a lock permission; admin ops need root.
    const lease = h.lease();
    expect(errorCode(h.run(as({ op: "lockAcquire", name: "app/l", lease }, "alice", h.gen.alice)).result)).toBe("PERMISSION_DENIED");
    expect(errorCode(h.run(as({ op: "compact", revision: 1 }, "alice", h.gen.alice)).result)).toBe("PERMISSION_DENIED");
    expect(errorCode(h.run(as({ op: "authDisable" }, "alice", h.gen.alice)).result)).toBe("PERMISSION_DENIED");
    value(h.run(as({ op: "lockAcquire", name: "app/l", lease }, "root", h.gen.root)).result);
    // Leases need no resource.
    value(h.run(as({ op: "leaseGrant", ttlMs: 1000, grantedAt: 0 }, "alice", h.gen.alice)).result);
    // No credentials: refused; no actor (a member's own command, a tokens-file holder's): applied.
    expect(errorCode(h.run(as(put("app/z"), "", 0)).result)).toBe("PERMISSION_DENIED");
    value(h.run(cmd("put", { key: "other", value: bytes("v") })).result);
  });

  it("ends a user's access at the index that revokes it, deletes it or changes its password", () => {
    const h = withUsers();
    const put = as({ op: "put", key: "app/x", value: bytes("v") }, "alice", h.gen.alice);
    value(h.run(put).result);
    const out = h.run(cmd("authRoleRevokePermission", { name: "app", permission: { kind: "key", name: "app/", prefix: true } }));
    expect(out.events).toContainEqual({ type: "extension", section: "auth", event: { kind: "authChanged", revision: h.c.auth.status().revision } });
    expect(errorCode(h.run(put).result)).toBe("PERMISSION_DENIED");
    value(h.run(cmd("authRoleGrantPermission", { name: "app", permission: perm("app/", "write", { prefix: true }) })).result);
    value(h.run(put).result);
    value(h.run(cmd("authUserPasswd", { name: "alice", password: password(9) })).result);
    expect(errorCode(h.run(put).result)).toBe("PERMISSION_DENIED"); // the old generation
    const gen = h.c.auth.user("alice")!.generation;
    value(h.run(as({ op: "put", key: "app/x", value: bytes("v") }, "alice", gen)).result);
    value(h.run(cmd("authRoleDelete", { name: "app" })).result);
    expect(h.c.auth.user("alice")!.roles).toEqual([]);
    expect(errorCode(h.run(as({ op: "put", key: "app/x", value: bytes("v") }, "alice", gen)).result)).toBe("PERMISSION_DENIED");
    value(h.run(cmd("authUserDelete", { name: "alice" })).result);
    value(h.run(cmd("authDisable")).result);
    // Disabled: nothing is checked.
    value(h.run(as({ op: "put", key: "secret", value: bytes("v") }, "alice", gen)).result);
  });

  it("carries the actor through the command encoding", () => {
    const h = withUsers();
    const sm = h.c.stateMachine;
    const denied = sm.apply(sm.lastApplied + 1, encodeCommand(as({ op: "put", key: "nope", value: bytes("v") }, "alice", h.gen.alice)));
    expect(errorCode(denied.result)).toBe("PERMISSION_DENIED");
  });

  it("snapshots and restores byte for byte; a snapshot without the auth section restores with auth disabled", () => {
    const h = withUsers();
    const snap = h.c.stateMachine.snapshot();
    const r = restoreCoordinationStateMachine(snap);
    expect(r.stateMachine.snapshot()).toEqual(snap);
    expect(r.auth.userList()).toEqual(h.c.auth.userList());
    expect(r.auth.user("alice")!.password).toEqual(password(2));
    expect(r.auth.status()).toEqual(h.c.auth.status());
    expect(r.stateMachine.sizeBytes).toBe(h.c.stateMachine.sizeBytes);
    const state = decodeSnapshot(snap);
    const old = encodeSnapshot({ ...state, extensions: state.extensions.filter(([s]) => s !== "auth") });
    const o = restoreCoordinationStateMachine(old);
    expect(o.auth.status()).toEqual({ enabled: false, revision: 0 });
    expect(() => StateMachine.restore(snap)).toThrow(/without a handler/);
  });
});

describe("permission rules", () => {
  const roles: Record<string, RolePermission[]> = {
    exact: [{ kind: "key", name: "a", prefix: false, access: "read" }],
    pre: [{ kind: "key", name: "p/", prefix: true, access: "write" }],
    rw: [{ kind: "lock", name: "l/", prefix: true, access: "readwrite" }],
  };
  const grants = (rs: string[], kind: "key" | "lock" | "cluster" | "none", name: string, access: "read" | "write" | "admin", prefix = false) =>
    rolesGrant(rs, (r) => roles[r], { kind, name, prefix, access });

  it("read, write and readwrite on exact names and prefixes; admin for root only", () => {
    expect(grants(["exact"], "key", "a", "read")).toBe(true);
    expect(grants(["exact"], "key", "a", "write")).toBe(false);
    expect(grants(["exact"], "key", "ab", "read")).toBe(false);
    expect(grants(["exact"], "key", "a", "read", true)).toBe(false); // a prefix read covers more than "a"
    expect(grants(["pre"], "key", "p/x", "write")).toBe(true);
    expect(grants(["pre"], "key", "p/x", "read")).toBe(false); // write does not imply read (etcd)
    expect(grants(["pre"], "key", "p/sub/", "write", true)).toBe(true);
    expect(grants(["pre"], "key", "p", "write", true)).toBe(false);
    expect(grants(["rw"], "lock", "l/1", "read")).toBe(true);
    expect(grants(["rw"], "lock", "l/1", "write")).toBe(true);
    expect(grants(["rw"], "key", "l/1", "read")).toBe(false); // kinds are separate
    expect(grants(["pre", "rw"], "cluster", "", "read")).toBe(true);
    expect(grants(["pre", "rw"], "cluster", "", "admin")).toBe(false);
    expect(grants(["root"], "cluster", "", "admin")).toBe(true);
    expect(grants([], "none", "", "write")).toBe(true);
  });

  it("knows what each command needs; unknown ops need admin", () => {
    expect(commandNeeds({ op: "put", key: "k" })).toEqual([{ kind: "key", name: "k", prefix: false, access: "write" }]);
    expect(commandNeeds({ op: "electionProclaim", name: "e" })).toEqual([{ kind: "election", name: "e", prefix: false, access: "write" }]);
    expect(commandNeeds({ op: "somethingNew" })).toEqual([{ kind: "cluster", name: "", prefix: false, access: "admin" }]);
    expect(commandNeeds({ op: "txn", compare: [{ key: "c" }], success: [{ op: "range", key: "r", prefix: true }], failure: [{ op: "delete", key: "d" }] })).toEqual([
      { kind: "key", name: "c", prefix: false, access: "read" },
      { kind: "key", name: "r", prefix: true, access: "read" },
      { kind: "key", name: "d", prefix: false, access: "write" },
    ]);
  });
});
