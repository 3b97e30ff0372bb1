// concord auth enable / disable / status, concord user …, concord role … (as etcdctl auth, user and role).

import { InvalidArgumentError, Option, type Command } from "commander";
import type { Permission, PermissionAccess, PermissionKind } from "../../src/client/auth.js";
import { clientCommand, printJson, printTable, readPassword, run, type ClientFlags } from "./common.js";

const ACCESS: readonly PermissionAccess[] = ["read", "write", "readwrite"];

function accessArg(v: string): PermissionAccess {
  if (!ACCESS.includes(v as PermissionAccess)) throw new InvalidArgumentError(`expected read, write or readwrite`);
  return v as PermissionAccess;
}

interface PermissionFlags extends ClientFlags {
  prefix?: boolean;
  lock?: boolean;
  election?: boolean;
}

function kindOf(o: PermissionFlags): PermissionKind {
  if (o.lock && o.election) throw new InvalidArgumentError("--lock and --election exclude each other");
  return o.lock ? "lock" : o.election ? "election" : "key";
}

/** --prefix, --lock, --election on a permission command. */
function permissionOptions(cmd: Command): Command {
  return cmd
    .option("--prefix", "every name starting with NAME (\"\" with --prefix: every name)")
    .addOption(new Option("--lock", "NAME is a lock name").conflicts("election"))
    .option("--election", "NAME is an election name");
}

const describePermission = (p: Permission) => `${p.access} ${p.kind} ${p.prefix ? `prefix ${JSON.stringify(p.name)}` : JSON.stringify(p.name)}`;

/** The new password of `user add` / `user passwd`: after the colon, --new-user-password, or asked for. */
async function newPassword(spec: string, flag: string | undefined): Promise<{ name: string; password: string }> {
  const colon = spec.indexOf(":");
  if (colon >= 0) return { name: spec.slice(0, colon), password: spec.slice(colon + 1) };
  return { name: spec, password: flag ?? (await readPassword(`New password for ${spec}: `)) };
}

export function registerAuthCommands(program: Command): void {
  const auth = program
    .command("auth")
    .description("enable, disable or show runtime access control (users and roles; see `concord user`, `concord role`)")
    .addHelpText(
      "after",
      `
Enabling needs a user "root" holding the role "root" (which grants everything), and every member started with
--peer-secret. Once enabled, clients authenticate with --user name[:password] (or CONCORD_USER and
CONCORD_PASSWORD); tokens of --auth-tokens-file keep working with their own permissions.

Examples:
  concord user add root:s3cret && concord user grant-role root root && concord auth enable
  concord auth status --user root    # the password from CONCORD_PASSWORD, or asked for`,
    );
  clientCommand(auth.command("enable").description("turn runtime access control on (needs user root with role root)")).action((o: ClientFlags) =>
    run("auth enable", o, async (c) => {
      await c.auth.enable();
      console.log("auth enabled");
    }),
  );
  clientCommand(auth.command("disable").description("turn runtime access control off (users and roles are kept)")).action((o: ClientFlags) =>
    run("auth disable", o, async (c) => {
      await c.auth.disable();
      console.log("auth disabled");
    }),
  );
  clientCommand(auth.command("status").description("whether runtime access control is on, and its revision"), { json: true }).action((o: ClientFlags) =>
    run("auth status", o, async (c) => {
      const s = await c.auth.status();
      if (o.json) printJson(s);
      else console.log(`auth ${s.enabled ? "enabled" : "disabled"} (revision ${s.revision})`);
    }),
  );

  const user = program.command("user").description("add, delete and list runtime users, change passwords, grant and revoke roles (needs root)");
  const withNewPassword = (cmd: Command) => cmd.option("--new-user-password <password>", "the password (default: after a colon in NAME, else asked for, or the first line of stdin)");
  clientCommand(withNewPassword(user.command("add").description("add a user").argument("<name[:password]>"))).action(
    (spec: string, o: ClientFlags & { newUserPassword?: string }) =>
      run("user add", o, async (c) => {
        const { name, password } = await newPassword(spec, o.newUserPassword);
        await c.auth.addUser(name, password);
        console.log(`user ${name} added`);
      }),
  );
  clientCommand(user.command("delete").description("delete a user (its tokens stop working, its streams end)").argument("<name>")).action((name: string, o: ClientFlags) =>
    run("user delete", o, async (c) => {
      await c.auth.deleteUser(name);
      console.log(`user ${name} deleted`);
    }),
  );
  clientCommand(withNewPassword(user.command("passwd").description("change a user's password (its existing tokens stop working)").argument("<name[:password]>"))).action(
    (spec: string, o: ClientFlags & { newUserPassword?: string }) =>
      run("user passwd", o, async (c) => {
        const { name, password } = await newPassword(spec, o.newUserPassword);
        await c.auth.changePassword(name, password);
        console.log(`password of ${name} changed`);
      }),
  );
  clientCommand(user.command("grant-role").description("give a user a role").argument("<user>").argument("<role>")).action((name: string, role: string, o: ClientFlags) =>
    run("user grant-role", o, async (c) => {
      await c.auth.grantRole(name, role);
      console.log(`role ${role} granted to user ${name}`);
    }),
  );
  clientCommand(user.command("revoke-role").description("take a role from a user").argument("<user>").argument("<role>")).action((name: string, role: string, o: ClientFlags) =>
    run("user revoke-role", o, async (c) => {
      await c.auth.revokeRole(name, role);
      console.log(`role ${role} revoked from user ${name}`);
    }),
  );
  clientCommand(user.command("list").description("users and their roles"), { json: true }).action((o: ClientFlags) =>
    run("user list", o, async (c) => {
      const users = await c.auth.users();
      if (o.json) printJson(users);
      else printTable(["USER", "ROLES"], users.map((u) => [u.name, u.roles.join(",")]));
    }),
  );

  const role = program.command("role").description("add, delete and list roles, grant and revoke their permissions (needs root)").addHelpText(
    "after",
    `
A permission is read, write or readwrite on one exact key (or lock or election name) or, with --prefix, on every
name starting with it. The role "root" always exists and grants everything.

Examples:
  concord role add app && concord role grant-permission app readwrite app/ --prefix
  concord role grant-permission app write jobs/ --prefix --lock
  concord role revoke-permission app app/ --prefix`,
  );
  clientCommand(role.command("add").description("add a role without permissions").argument("<name>")).action((name: string, o: ClientFlags) =>
    run("role add", o, async (c) => {
      await c.auth.addRole(name);
      console.log(`role ${name} added`);
    }),
  );
  clientCommand(role.command("delete").description("delete a role (and take it from every user)").argument("<name>")).action((name: string, o: ClientFlags) =>
    run("role delete", o, async (c) => {
      await c.auth.deleteRole(name);
      console.log(`role ${name} deleted`);
    }),
  );
  clientCommand(
    permissionOptions(
      role.command("grant-permission").description("grant a role read, write or readwrite on a name or prefix").argument("<role>").argument("<access>", "read | write | readwrite", accessArg).argument("<name>"),
    ),
  ).action((r: string, access: PermissionAccess, name: string, o: PermissionFlags) =>
    run("role grant-permission", o, async (c) => {
      const p: Permission = { kind: kindOf(o), name, prefix: o.prefix === true, access };
      await c.auth.grantPermission(r, p);
      console.log(`role ${r} may now ${describePermission(p)}`);
    }),
  );
  clientCommand(permissionOptions(role.command("revoke-permission").description("revoke a role's permission on a name or prefix").argument("<role>").argument("<name>"))).action(
    (r: string, name: string, o: PermissionFlags) =>
      run("role revoke-permission", o, async (c) => {
        await c.auth.revokePermission(r, { kind: kindOf(o), name, prefix: o.prefix === true });
        console.log(`permission on ${kindOf(o)} ${o.prefix ? "prefix " : ""}${JSON.stringify(name)} revoked from role ${r}`);
      }),
  );
  clientCommand(role.command("list").description("roles and their permissions"), { json: true }).action((o: ClientFlags) =>
    run("role list", o, async (c) => {
      const roles = await c.auth.roles();
      if (o.json) printJson(roles);
      else printTable(["ROLE", "PERMISSIONS"], roles.map((x) => [x.name, x.name === "root" ? "(everything)" : x.permissions.map(describePermission).join("; ")]));
    }),
  );
}
