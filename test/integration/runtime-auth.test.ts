// Runtime access control end to end, on a real 3-member cluster (ports 8000-8021) with a peer secret and a
// tokens file: every `concord auth|user|role` command through the CLI; a permission matrix (users × roles × ops ×
// keys, lock and election names → allowed or PERMISSION_DENIED) through the library; and a revocation ending the
// affected user's watches, observations, lock holds and leaderships with PERMISSION_DENIED. The tokens file's
// tokens keep their own permissions next to runtime users.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster, waitUntil } from "../../src/harness/index.js";
import { connect, ConcordError, type Client } from "../../src/index.js";
import { runCli } from "../client/cli.js";

const ADMIN_TOKEN = "bootstrap-admin-token-0123456789";
const READER_TOKEN = "reader-token-pub-0123456789";
let cluster: LocalCluster;
let dir: string;
let admin: Client;
const clients: Client[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-runtime-auth-"));
  const tokensFile = path.join(dir, "tokens.json");
  fs.writeFileSync(
    tokensFile,
    JSON.stringify([
      { token: ADMIN_TOKEN, name: "bootstrap", permissions: [{ cluster: true, access: "admin" }, { prefix: "", access: "admin" }] },
      { token: READER_TOKEN, name: "reader", permissions: [{ prefix: "pub/", access: "read" }] },
    ]),
  );
  cluster = await LocalCluster.start({ size: 3, basePort: 8000, logLevel: "warn", peerSecret: "runtime-auth-test-peer-secret", authTokensFile: tokensFile, httpToken: ADMIN_TOKEN });
  admin = await connect(cluster.endpoints(), { token: ADMIN_TOKEN });
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await admin?.close();
  await cluster?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const p = runCli(args, { CONCORD_ENDPOINTS: cluster.endpoints().join(","), ...env });
  const { code } = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}

async function as(name: string, password: string): Promise<Client> {
  const c = await connect(cluster.endpoints(), { user: { name, password } });
  clients.push(c);
  return c;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (e) {
    if (e instanceof ConcordError) return e.code;
    throw e;
  }
}

describe.sequential("runtime auth", () => {
  it("every concord auth, user and role command, end to end", async () => {
    const boot = { CONCORD_TOKEN: ADMIN_TOKEN };
    expect(await cli(["user", "add", "root:rootpw"], boot)).toMatchObject({ code: 0, out: "user root added\n" });
    expect(await cli(["user", "grant-role", "root", "root"], boot)).toMatchObject({ code: 0, out: "role root granted to user root\n" });
    expect(await cli(["auth", "status"], boot)).toMatchObject({ code: 0, out: expect.stringMatching(/^auth disabled \(revision \d+\)\n$/) });
    // Runtime auth disabled: with a tokens file, user credentials do not let a client in.
    expect(await cli(["get", "x"], { CONCORD_USER: "root:rootpw" })).toMatchObject({ code: 1, err: expect.stringMatching(/UNAUTHENTICATED: .*runtime auth is not enabled/) });
    expect(await cli(["auth", "enable"], boot)).toMatchObject({ code: 0, out: "auth enabled\n" });
    const root = { CONCORD_USER: "root", CONCORD_PASSWORD: "rootpw" };
    expect(await cli(["auth", "status", "--json"], root)).toMatchObject({ code: 0, out: expect.stringContaining('"enabled":true') });
    // No credentials: nothing but authenticate (and a tokens-file token keeps working).
    const anon = await cli(["auth", "status"]);
    expect(anon.code).toBe(1);
    expect(anon.err).toMatch(/UNAUTHENTICATED/);
    expect(await cli(["auth", "status"], { CONCORD_USER: "root:wrong" })).toMatchObject({ code: 1, err: expect.stringMatching(/AUTH_FAILED/) });

    expect(await cli(["role", "add", "app"], root)).toMatchObject({ code: 0, out: "role app added\n" });
    expect(await cli(["role", "grant-permission", "app", "readwrite", "app/", "--prefix"], root)).toMatchObject({ code: 0, out: 'role app may now readwrite key prefix "app/"\n' });
    expect(await cli(["role", "grant-permission", "app", "write", "jobs/", "--prefix", "--lock"], root)).toMatchObject({ code: 0 });
    expect(await cli(["role", "grant-permission", "app", "read", "x", "--lock", "--election"], root)).toMatchObject({ code: 2 });
    expect(await cli(["role", "grant-permission", "app", "all", "x"], root)).toMatchObject({ code: 2, err: expect.stringMatching(/read, write or readwrite/) });
    expect(await cli(["user", "add", "alice", "--new-user-password", "alicepw"], root)).toMatchObject({ code: 0, out: "user alice added\n" });
    expect(await cli(["user", "grant-role", "alice", "app"], root)).toMatchObject({ code: 0 });
    expect(JSON.parse((await cli(["user", "list", "--json"], root)).out)).toEqual([
      { name: "alice", roles: ["app"] },
      { name: "root", roles: ["root"] },
    ]);
    expect((await cli(["user", "list"], root)).out).toMatch(/USER\s+ROLES\nalice\s+app\nroot\s+root\n/);
    expect(JSON.parse((await cli(["role", "list", "--json"], root)).out)).toEqual([
      {
        name: "app",
        permissions: [
          { kind: "key", name: "app/", prefix: true, access: "readwrite" },
          { kind: "lock", name: "jobs/", prefix: true, access: "write" },
        ],
      },
      { name: "root", permissions: [] },
    ]);
    expect((await cli(["role", "list"], root)).out).toMatch(/root\s+\(everything\)/);
    // alice, by CONCORD_PASSWORD: within her prefix only; user management is root's.
    const alice = { CONCORD_USER: "alice", CONCORD_PASSWORD: "alicepw" };
    expect(await cli(["put", "app/x", "1"], alice)).toMatchObject({ code: 0 });
    expect(await cli(["put", "other", "1"], alice)).toMatchObject({ code: 1, err: expect.stringMatching(/PERMISSION_DENIED: user "alice" may not write key "other"/) });
    expect(await cli(["user", "list"], alice)).toMatchObject({ code: 1, err: expect.stringMatching(/PERMISSION_DENIED/) });
    // passwd: the old password stops working.
    expect(await cli(["user", "passwd", "alice:newpw"], root)).toMatchObject({ code: 0, out: "password of alice changed\n" });
    expect(await cli(["get", "app/x"], alice)).toMatchObject({ code: 1, err: expect.stringMatching(/AUTH_FAILED/) });
    const alice2 = { CONCORD_USER: "alice:newpw" };
    expect(await cli(["get", "app/x"], alice2)).toMatchObject({ code: 0, out: "1\n" });
    // revoke-permission, revoke-role, role delete, user delete: each takes access away at once.
    expect(await cli(["role", "revoke-permission", "app", "app/", "--prefix"], root)).toMatchObject({ code: 0 });
    expect(await cli(["get", "app/x"], alice2)).toMatchObject({ code: 1, err: expect.stringMatching(/PERMISSION_DENIED/) });
    expect(await cli(["role", "grant-permission", "app", "read", "app/", "--prefix"], root)).toMatchObject({ code: 0 });
    expect(await cli(["get", "app/x"], alice2)).toMatchObject({ code: 0 });
    expect(await cli(["user", "revoke-role", "alice", "app"], root)).toMatchObject({ code: 0, out: "role app revoked from user alice\n" });
    expect(await cli(["get", "app/x"], alice2)).toMatchObject({ code: 1, err: expect.stringMatching(/PERMISSION_DENIED/) });
    expect(await cli(["role", "revoke-permission", "app", "nothing"], root)).toMatchObject({ code: 1, err: expect.stringMatching(/PERMISSION_NOT_GRANTED/) });
    expect(await cli(["role", "delete", "app"], root)).toMatchObject({ code: 0, out: "role app deleted\n" });
    expect(await cli(["user", "delete", "alice"], root)).toMatchObject({ code: 0, out: "user alice deleted\n" });
    expect(await cli(["get", "app/x"], alice2)).toMatchObject({ code: 1, err: expect.stringMatching(/AUTH_FAILED/) });
    expect(await cli(["user", "delete", "root"], root)).toMatchObject({ code: 1, err: expect.stringMatching(/ROOT_PROTECTED/) });
    // The tokens file's reader keeps its own permissions whatever runtime auth says.
    await admin.put("pub/a", "p");
    expect(await cli(["get", "pub/a"], { CONCORD_TOKEN: READER_TOKEN })).toMatchObject({ code: 0, out: "p\n" });
    expect(await cli(["put", "pub/a", "1"], { CONCORD_TOKEN: READER_TOKEN })).toMatchObject({ code: 1, err: expect.stringMatching(/PERMISSION_DENIED: token reader/) });
    expect(await cli(["auth", "disable"], root)).toMatchObject({ code: 0, out: "auth disabled\n" });
    expect(await cli(["auth", "status"], boot)).toMatchObject({ code: 0, out: expect.stringMatching(/^auth disabled/) });
    // Disabled, with a tokens file: a user's credentials no longer count.
    expect(await cli(["get", "app/x"], root)).toMatchObject({ code: 1, err: expect.stringMatching(/UNAUTHENTICATED/) });
  }, 120_000);

  it("a permission matrix: users × roles × ops × keys, locks and elections", async () => {
    const a = admin.auth;
    await a.enable().catch(() => {});
    await a.addRole("kv-rw");
    await a.grantPermission("kv-rw", { kind: "key", name: "m/", prefix: true, access: "readwrite" });
    await a.addRole("kv-ro");
    await a.grantPermission("kv-ro", { kind: "key", name: "m/", prefix: true, access: "read" });
    await a.addRole("kv-one");
    await a.grantPermission("kv-one", { kind: "key", name: "m/one", prefix: false, access: "write" });
    await a.addRole("coord");
    await a.grantPermission("coord", { kind: "lock", name: "jobs/", prefix: true, access: "readwrite" });
    await a.grantPermission("coord", { kind: "election", name: "el/", prefix: true, access: "readwrite" });
    const users: Record<string, string[]> = { mroot: ["root"], rw: ["kv-rw"], ro: ["kv-ro"], one: ["kv-one"], co: ["coord"], both: ["kv-ro", "coord"], none: [] };
    for (const [name, roles] of Object.entries(users)) {
      await a.addUser(name, `${name}-pw`);
      for (const r of roles) await a.grantRole(name, r);
    }
    // A lease with one key under m/: its key list is shown only to those who may read that key.
    const leased = await admin.grantLease(60_000);
    await admin.put("m/leased", "v", { lease: leased.id });
    await a.enable();

    type Op = (c: Client) => Promise<unknown>;
    const ops: Record<string, Op> = {
      "get m/one": (c) => c.get("m/one"),
      "put m/one": (c) => c.put("m/one", "v"),
      "put m/two": (c) => c.put("m/two", "v"),
      "range m/": (c) => c.range("m/"),
      "range all": (c) => c.range(""),
      "delete m/ prefix": (c) => c.delete("m/", { prefix: true }),
      "put other": (c) => c.put("other", "v"),
      "txn m/one": (c) => c.txn().if("m/one", "version", ">", 0).thenPut("m/one", "v").elsePut("m/one", "v").commit(),
      "lockStatus jobs/a": (c) => c.lockStatus("jobs/a"),
      "lock jobs/a": async (c) => (await c.lock("jobs/a", { ttlMs: 2000 })).release(),
      "lock other": async (c) => (await c.lock("other", { ttlMs: 2000 })).release(),
      "campaign el/a": async (c) => (await c.election("el/a").campaign("v", { ttlMs: 2000 })).resign(),
      "leader el/a": (c) => c.election("el/a").leader(),
      "leader other": (c) => c.election("other").leader(),
      "lockList jobs/": (c) => c.lockList("jobs/"),
      "lockList all": (c) => c.lockList(),
      "electionList el/": (c) => c.electionList("el/"),
      "leaseTtl with keys": (c) => c.leaseTimeToLive(leased.id),
      "leaseTtl without keys": (c) => c.leaseTimeToLive(leased.id, { keys: false }),
      status: (c) => c.status(),
      "user list": (c) => c.auth.users(),
      compact: (c) => c.compact(1),
    };
    // Expected by hand, from the roles above (not computed by the code under test).
    const allowed: Record<string, string[]> = {
      mroot: Object.keys(ops),
      rw: ["get m/one", "put m/one", "put m/two", "range m/", "delete m/ prefix", "txn m/one", "leaseTtl with keys", "leaseTtl without keys", "status"],
      ro: ["get m/one", "range m/", "leaseTtl with keys", "leaseTtl without keys", "status"],
      one: ["put m/one", "leaseTtl without keys", "status"],
      co: ["lockStatus jobs/a", "lock jobs/a", "campaign el/a", "leader el/a", "lockList jobs/", "electionList el/", "leaseTtl without keys", "status"],
      both: ["get m/one", "range m/", "lockStatus jobs/a", "lock jobs/a", "campaign el/a", "leader el/a", "lockList jobs/", "electionList el/", "leaseTtl with keys", "leaseTtl without keys", "status"],
      none: ["leaseTtl without keys", "status"],
    };
    const got: Record<string, Record<string, string>> = {};
    const want: Record<string, Record<string, string>> = {};
    for (const name of Object.keys(users)) {
      const c = await as(name, `${name}-pw`);
      await admin.put("m/leased", "v", { lease: leased.id }); // again: a user before may have deleted m/
      got[name] = {};
      want[name] = {};
      for (const [op, run] of Object.entries(ops)) {
        got[name][op] = await code(run(c));
        want[name][op] = allowed[name].includes(op) ? "OK" : "PERMISSION_DENIED";
      }
    }
    expect(got).toEqual(want);
    // A wrong password, and a user that does not exist, answer the same.
    await expect(connect(cluster.endpoints(), { user: { name: "rw", password: "nope" } })).rejects.toMatchObject({ code: "AUTH_FAILED" });
    await expect(connect(cluster.endpoints(), { user: { name: "ghost", password: "nope" } })).rejects.toMatchObject({ code: "AUTH_FAILED" });
    // A user token works on every member (signed with the cluster's key), as --token too.
    const { token } = await (await as("ro", "ro-pw")).auth.authenticate("ro", "ro-pw");
    for (const url of cluster.endpoints()) {
      const c = await connect([url], { token, followLeader: false });
      clients.push(c);
      expect(await code(c.get("m/one"))).toBe("OK");
      expect(await code(c.put("m/one", "x"))).toBe("PERMISSION_DENIED");
    }
    const forged = token.replace(/\.[^.]+$/, ".AAAA");
    await expect(connect(cluster.endpoints(), { token: forged })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
  }, 120_000);

  it("ends the revoked user's watches, observations, lock holds and leaderships with PERMISSION_DENIED", async () => {
    const a = admin.auth;
    await a.addRole("streams");
    const grants = [
      { kind: "key", name: "s/", prefix: true, access: "readwrite" },
      { kind: "lock", name: "s/", prefix: true, access: "readwrite" },
      { kind: "election", name: "s/", prefix: true, access: "readwrite" },
    ] as const;
    for (const g of grants) await a.grantPermission("streams", g);
    await a.addUser("streamer", "pw");
    await a.grantRole("streamer", "streams");
    const c = await as("streamer", "pw");
    const watch = c.watch("s/", { prefix: true });
    // How each stream ended, caught at once (a rejection left unhandled until the expect below is reported).
    const ending = (p: Promise<void>) => p.then(() => "ended without an error", (e: unknown) => e);
    const watched = ending(
      (async () => {
        for await (const _ of watch) {
          // events until the end
        }
      })(),
    );
    const hold = await c.lock("s/lock", { ttlMs: 5000 });
    const campaign = await c.election("s/el").campaign("me", { ttlMs: 5000 });
    const observed = ending(
      (async () => {
        for await (const _ of c.election("s/el").observe()) {
          // changes until the end
        }
      })(),
    );
    await admin.put("s/k", "1");
    await new Promise((r) => setTimeout(r, 300));
    expect(hold.lost.aborted).toBe(false);
    // A waiting acquire ends too: a root user (from the matrix above) holds s/wait, the streamer queues behind it.
    const root = await as("mroot", "mroot-pw");
    const adminHold = await root.lock("s/wait", { ttlMs: 5000 });
    const queued = ending(c.lock("s/wait", { ttlMs: 5000 }).then((h) => void h.release()));
    await waitUntil("the streamer to queue", 5000, async () => ((await root.lockStatus("s/wait")).waiters.length === 1 ? true : undefined));
    await a.revokePermission("streams", { kind: "lock", name: "s/", prefix: true });
    await waitUntil("the lock hold to end", 5000, () => hold.lost.aborted || undefined);
    expect(hold.lost.reason).toMatchObject({ code: "PERMISSION_DENIED" });
    expect(await queued).toMatchObject({ code: "PERMISSION_DENIED", message: expect.stringContaining("stopped waiting") });
    await adminHold.release();
    expect(campaign.lost.aborted).toBe(false); // election access untouched
    await a.revokeRole("streamer", "streams");
    await waitUntil("the leadership to end", 5000, () => campaign.lost.aborted || undefined);
    expect(campaign.lost.reason).toMatchObject({ code: "PERMISSION_DENIED" });
    expect(await watched).toMatchObject({ code: "PERMISSION_DENIED" });
    expect(await observed).toMatchObject({ code: "PERMISSION_DENIED" });
  }, 60_000);
});
