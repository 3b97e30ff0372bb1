// The dashboard's HTTP side on a real 3-member cluster with bearer tokens (ports 11230-11251): the page and its
// files are open and self-contained, the JSON API honours the tokens (cluster read; locks, elections and keys the
// token may read), a follower answers with the leader's view (lease time left), and a dead member is listed with
// the error. The page itself is tested in a browser by test/ui/dashboard.ui.ts (npm run test:ui).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/harness/index.js";
import { connect, type Client } from "../../src/index.js";
import type { ClusterMember, CoordinationAnswer } from "../../src/server/dashboard/routes.js";
import type { MemberView } from "../../src/server/dashboard/views.js";

const OPS = "dashboard-api-ops-token-0123456789";
const NO_CLUSTER = "dashboard-api-no-cluster-0123456789";
const BILLING = "dashboard-api-billing-token-0123456789";

let dir: string;
let cluster: LocalCluster;
let client: Client;
let leader: string;
let follower: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-dashboard-"));
  const tokensFile = path.join(dir, "tokens.json");
  fs.writeFileSync(
    tokensFile,
    JSON.stringify([
      {
        token: OPS,
        name: "ops",
        permissions: [
          { prefix: "", access: "admin" },
          { lock: "", access: "admin" },
          { election: "", access: "admin" },
          { cluster: true, access: "admin" },
        ],
      },
      { token: NO_CLUSTER, name: "no-cluster", permissions: [{ prefix: "", access: "read" }] },
      {
        token: BILLING,
        name: "billing",
        permissions: [
          { prefix: "billing/", access: "read" },
          { lock: "billing/", access: "read" },
          { cluster: true, access: "read" },
        ],
      },
    ]),
  );
  cluster = await LocalCluster.start({
    size: 3,
    basePort: 11230,
    logLevel: "warn",
    authTokensFile: tokensFile,
    httpToken: OPS,
    peerSecret: "dashboard-api-peer-secret-0123456789",
  });
  client = await connect(cluster.endpoints(), { token: OPS });
  leader = await cluster.waitForLeader();
  follower = cluster.members().find((m) => m.name !== leader)!.name;
});

afterAll(async () => {
  await client?.close();
  await cluster?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function get(member: string, urlPath: string, token?: string): Promise<Response> {
  return fetch(`${cluster.member(member).httpBase}${urlPath}`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
}

async function getJson<T>(member: string, urlPath: string, token = OPS): Promise<T> {
  const res = await get(member, urlPath, token);
  expect(res.status, `${urlPath}: ${await res.clone().text()}`).toBe(200);
  return (await res.json()) as T;
}

describe("the dashboard's HTTP side", () => {
  it("serves the page and every file it loads from the member, without a token", async () => {
    const page = await get(follower, "/ui");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await page.text();
    // Every script and style the page names, and every module its import map names, is served here.
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g), ...html.matchAll(/"(\/ui\/assets\/[^"]+)"/g)]
      .map((m) => m[1])
      .filter((u) => !u.startsWith("data:")); // inline (the empty favicon): nothing to load
    expect(urls.length).toBeGreaterThanOrEqual(5);
    for (const u of new Set(urls)) {
      expect(u.startsWith("/ui/assets/"), `${u} is not served by the member`).toBe(true);
      const res = await get(follower, u);
      expect(res.status, u).toBe(200);
      expect(res.headers.get("content-type"), u).toMatch(/^text\/(javascript|css); charset=utf-8$/);
      expect((await res.text()).length, u).toBeGreaterThan(100);
    }
    const missing = await get(follower, "/ui/assets/nothing.js");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { endpoints: string[] }).endpoints).toContain("/ui/assets/app.js");
  });

  it("asks for a token with cluster read on /ui/api/, as on /status", async () => {
    for (const p of ["/ui/api/member", "/ui/api/cluster", "/ui/api/coordination"]) {
      const none = await get(follower, p);
      expect(none.status, p).toBe(401);
      expect(none.headers.get("www-authenticate")).toBe('Bearer realm="concord"');
      expect((await get(follower, p, "not-a-token-of-this-cluster")).status, p).toBe(401);
      const denied = await get(follower, p, NO_CLUSTER);
      expect(denied.status, p).toBe(403);
      expect(((await denied.json()) as { message: string }).message).toBe(`token no-cluster may not read the cluster (${p})`);
    }
    const bad = await get(follower, "/ui/api/coordination?limit=0", OPS);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toBe('limit is "0"; expected an integer from 1 to 500');
    expect((await get(follower, "/ui/api/nothing", OPS)).status).toBe(404);
  });

  it("lists every member's status and the leader each saw", async () => {
    const answer = await getJson<{ self: string; members: ClusterMember[] }>(follower, "/ui/api/cluster");
    expect(answer.self).toBe(follower);
    expect(answer.members.map((m) => m.id).sort()).toEqual(["n1", "n2", "n3"]);
    for (const m of answer.members) {
      expect(m.error, m.id).toBeUndefined();
      expect(m.view!.status.id).toBe(m.id);
      expect(m.view!.status.role).toBe(m.id === leader ? "leader" : "follower");
      expect(m.view!.leaderHistory.at(-1)!.leader).toBe(leader);
    }
  });

  it("shows locks with holder, token, lease time left and waiters in order, elections, leases and keys", async () => {
    const first = await client.lock("billing/invoices", { ttlMs: 30_000 });
    const queued = [client.lock("billing/invoices", { ttlMs: 30_000 }), client.lock("billing/invoices", { ttlMs: 30_000 })];
    await client.lock("payroll/run", { ttlMs: 30_000 });
    const leadership = await client.election("scheduler").campaign("worker-7", { ttlMs: 30_000 });
    await client.put("billing/a", "1");
    await client.put("billing/b", new Uint8Array([0xff, 0x00, 0x41]));
    await client.put("other/c", "3");
    let answer: CoordinationAnswer;
    do answer = await getJson<CoordinationAnswer>(follower, "/ui/api/coordination?prefix=billing/");
    while (answer.view.locks.find((l) => l.name === "billing/invoices")?.waiters.length !== 2);
    const status = await client.lockStatus("billing/invoices");

    // The follower answers with the leader's view: lease deadlines are known only there.
    expect(answer.note).toBeUndefined();
    expect(answer.view.member).toBe(leader);
    expect(answer.view.leader).toBe(true);
    const lock = answer.view.locks.find((l) => l.name === "billing/invoices")!;
    expect(lock.holders.map((h) => [h.lease, h.token])).toEqual([[first.lease.id, first.token]]);
    expect(lock.waiters.map((w) => w.lease)).toEqual(status.waiters);
    expect(lock.holders[0].remainingMs).toBeGreaterThan(20_000);
    expect(lock.holders[0].remainingMs).toBeLessThanOrEqual(30_000);
    expect(answer.view.locks.map((l) => l.name)).toEqual(["billing/invoices", "payroll/run"]);
    const election = answer.view.elections.find((e) => e.name === "scheduler")!;
    expect(election.leader).toMatchObject({ lease: leadership.lease.id, token: leadership.token, value: { text: "worker-7", encoding: "utf8", bytes: 8 } });
    expect(answer.view.counts.leases).toBe(answer.view.leases.length);
    expect(answer.view.leases.map((l) => l.lease)).toContain(first.lease.id);
    expect(answer.view.keys).toMatchObject({
      prefix: "billing/",
      more: false,
      kvs: [
        { key: "billing/a", value: { text: "1", encoding: "utf8" }, version: 1 },
        { key: "billing/b", value: { text: "ff0041", encoding: "hex", bytes: 3 } },
      ],
    });

    // ?local=1 on a follower: its own applied state, without lease time left.
    const local = await getJson<CoordinationAnswer>(follower, "/ui/api/coordination?local=1");
    expect(local.view.member).toBe(follower);
    expect(local.view.leader).toBe(false);
    expect(local.view.locks.find((l) => l.name === "billing/invoices")!.holders[0].remainingMs).toBeNull();

    // A token sees only the locks and keys it may read, and elections not at all without permission.
    const billing = await getJson<CoordinationAnswer>(follower, "/ui/api/coordination?prefix=other/", BILLING);
    expect(billing.view.locks.map((l) => l.name)).toEqual(["billing/invoices"]);
    expect(billing.view.counts).toMatchObject({ locks: 1, hiddenLocks: 1, elections: 0, hiddenElections: 1 });
    expect(billing.view.keys).toEqual({ prefix: "other/", error: 'this token may not read keys under "other/"' });

    await leadership.resign();
    await first.release();
    for (const q of queued) await (await q).release();
  });

  it("lists a member that stopped answering with the error, and the new leader everyone else saw", async () => {
    const survivor = cluster.members().find((m) => m.name !== leader)!.name;
    await cluster.kill(leader);
    const next = await cluster.waitForLeader(20_000, { exclude: [leader] });
    const answer = await getJson<{ members: ClusterMember[] }>(survivor, "/ui/api/cluster");
    const dead = answer.members.find((m) => m.id === leader)!;
    expect(dead.view).toBeUndefined();
    expect(dead.error).toMatch(/ECONNREFUSED|timed out/);
    for (const m of answer.members.filter((x) => x.id !== leader)) {
      expect(m.view!.status.leader).toBe(next);
      expect(m.view!.leaderHistory.map((c) => c.leader)).toContain(next);
    }
    const member = await getJson<MemberView>(survivor, "/ui/api/member");
    expect(member.leaderHistory.at(-1)).toMatchObject({ leader: next });
    expect(member.leaderHistory.at(-1)!.term).toBeGreaterThan(member.leaderHistory[0].term);
  });
});
