// Inspection and administration commands end to end — `concord lock status|list`, `elect status|list`, `lease
// list|ttl --keys`, `member update`, `move-leader`, `snapshot status`, `endpoint health`, `status --cluster` and
// `-w table|json` — as real CLI processes against a real 3-member cluster (ports 10100-10121).

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { waitUntil } from "../../src/harness/index.js";
import { connect } from "../../src/index.js";
import { CliSuite, type CliProcess } from "./cli.js";

const suite = new CliSuite(10100, "inspect-cli");

async function concord(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = suite.cli(args);
  const { code } = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}

/** `concord ARGS -w json`, which must succeed: its output parsed. */
async function json<T>(args: string[]): Promise<T> {
  const r = await concord([...args, "-w", "json"]);
  expect(r.code, `concord ${args.join(" ")}: ${r.err}`).toBe(0);
  return JSON.parse(r.out) as T;
}

/** Waits until a CLI process printed a line on stdout (e.g. a granted token) and returns it. */
function firstLine(p: CliProcess): Promise<string> {
  return waitUntil("the CLI's first line", 15_000, () => (p.stdout().includes("\n") ? p.stdout().split("\n")[0] : undefined));
}

interface LockStatusJson {
  name: string;
  limit: number;
  holders: { lease: number; token: number }[];
  waiters: number[];
}

describe("concord lock status / lock list", () => {
  it("show the holder with its token and the waiters in the order they queued, and follow a hand-over", async () => {
    const name = "insp/lock";
    const holder = await suite.client.lock(name, { ttlMs: 30_000 });
    // Waiters queue one at a time, so the order they joined is known independently of the listing.
    const waiterProcs: CliProcess[] = [];
    const waiterLeases: number[] = [];
    for (let i = 0; i < 2; i++) {
      waiterProcs.push(suite.cli(["lock", name, "--ttl", "30s"]));
      const s = await waitUntil(`waiter ${i + 1} queued`, 15_000, async () => {
        const st = await suite.client.lockStatus(name);
        return st.waiters.length === i + 1 ? st : undefined;
      });
      expect(s.waiters.slice(0, i)).toEqual(waiterLeases);
      waiterLeases.push(s.waiters[i]);
    }

    const status = await json<LockStatusJson>(["lock", "status", name]);
    expect(status).toEqual({ name, limit: 1, holders: [{ lease: holder.lease.id, token: holder.token }], waiters: waiterLeases });
    const table = await concord(["lock", "status", name]);
    expect(table.code, table.err).toBe(0);
    const rows = table.out.trim().split("\n").slice(2).map((l) => l.split(/\s+/));
    expect(rows).toEqual([
      ["holder", "1", String(holder.lease.id), String(holder.token)],
      ["waiter", "1", String(waiterLeases[0]), "-"],
      ["waiter", "2", String(waiterLeases[1]), "-"],
    ]);

    // The holder lets go: the first waiter is granted (its CLI prints the token the listing shows).
    await holder.release();
    const token = Number(await firstLine(waiterProcs[0]));
    expect(token).toBeGreaterThan(holder.token);
    const list = await json<LockStatusJson[]>(["lock", "list", "--prefix", "insp/"]);
    expect(list).toEqual([{ name, limit: 1, holders: [{ lease: waiterLeases[0], token }], waiters: [waiterLeases[1]] }]);
    const listTable = await concord(["lock", "list", "--prefix", "insp/"]);
    expect(listTable.out.trim().split("\n")[1].split(/\s+/)).toEqual([name, "1", `${waiterLeases[0]}:${token}`, String(waiterLeases[1])]);

    for (const p of waiterProcs) p.kill("SIGINT");
    await Promise.all(waiterProcs.map((p) => p.exited));
    await waitUntil("the lock freed", 15_000, async () => ((await suite.client.lockStatus(name)).limit === 0 ? true : undefined));
    expect(await json<LockStatusJson[]>(["lock", "list", "--prefix", "insp/"])).toEqual([]);
    expect((await concord(["lock", "status", name])).out).toContain("is free");
  });
});

interface ElectionJson {
  name: string;
  leader: { lease: number; token: number; value: string } | null;
  candidates: number[];
}

describe("concord elect status / elect list", () => {
  it("show the leader's lease, value and token and the candidates in order, and follow a resignation", async () => {
    const name = "insp/election";
    const lead = await suite.client.election(name).campaign("host-a", { ttlMs: 30_000 });
    const second = suite.cli(["elect", name, "host-b", "--ttl", "30s"]);
    const queued = await waitUntil("the second candidate queued", 15_000, async () => {
      const s = await suite.client.election(name).status();
      return s.candidates.length === 2 ? s : undefined;
    });
    const secondLease = queued.candidates[1];

    expect(await json<ElectionJson>(["elect", "status", name])).toEqual({
      name,
      leader: { lease: lead.lease.id, token: lead.token, value: "host-a" },
      candidates: [lead.lease.id, secondLease],
    });
    const table = await concord(["elect", "status", name]);
    expect(table.out).toContain(`leader lease ${lead.lease.id}, token ${lead.token}, value host-a`);

    await lead.resign();
    const token = Number(await firstLine(second));
    expect(token).toBeGreaterThan(lead.token);
    expect(await json<ElectionJson[]>(["elect", "list", "--prefix", "insp/"])).toEqual([
      { name, leader: { lease: secondLease, token, value: "host-b" }, candidates: [secondLease] },
    ]);
    const listTable = await concord(["elect", "list", "--prefix", "insp/"]);
    expect(listTable.out.trim().split("\n")[1].split(/\s+/)).toEqual([name, String(secondLease), String(token), "host-b", String(secondLease)]);

    second.kill("SIGINT");
    await second.exited;
    // Resigned on exit: the election stays listed, idle, without a leader.
    await waitUntil("no leader", 15_000, async () => ((await suite.client.election(name).status()).leader === null ? true : undefined));
    expect(await json<ElectionJson[]>(["elect", "list", "--prefix", "insp/"])).toEqual([{ name, leader: null, candidates: [] }]);
  });
});

interface LeaseJson {
  id: number;
  ttlMs: number;
  remainingMs: number;
  keyCount: number;
  keys?: string[];
}

describe("concord lease list / lease ttl --keys", () => {
  it("list leases with their time left and keys", async () => {
    const { id } = await json<{ id: number }>(["lease", "grant", "1m"]);
    for (const key of ["insp/lease/b", "insp/lease/a"]) expect((await concord(["put", "--lease", String(id), key, "v"])).code).toBe(0);

    const listed = (await json<LeaseJson[]>(["lease", "list", "--keys"])).find((l) => l.id === id);
    expect(listed).toMatchObject({ id, ttlMs: 60_000, keyCount: 2, keys: ["insp/lease/a", "insp/lease/b"] });
    expect(listed!.remainingMs).toBeGreaterThan(0);
    expect(listed!.remainingMs).toBeLessThanOrEqual(60_000);
    const withoutKeys = (await json<LeaseJson[]>(["lease", "list"])).find((l) => l.id === id);
    expect(withoutKeys).not.toHaveProperty("keys");
    expect(withoutKeys!.keyCount).toBe(2);
    const table = await concord(["lease", "list", "--keys"]);
    const row = table.out.split("\n").find((l) => l.startsWith(`${id} `))!;
    expect(row.split(/\s+/)).toEqual([String(id), "60000", expect.stringMatching(/^\d+$/), "insp/lease/a,insp/lease/b"]);

    const ttl = await concord(["lease", "ttl", String(id), "--keys"]);
    expect(ttl.out).toMatch(new RegExp(`^lease ${id}: ttl 60000 ms, remaining \\d+ ms, keys: insp/lease/a, insp/lease/b\\n$`));
    expect((await concord(["lease", "ttl", String(id)])).out).toContain("2 keys");
    expect(await json<LeaseJson>(["lease", "ttl", String(id), "--keys"])).toMatchObject({ id, keyCount: 2, keys: ["insp/lease/a", "insp/lease/b"] });

    expect((await concord(["lease", "revoke", String(id)])).code).toBe(0);
    expect((await json<LeaseJson[]>(["lease", "list"])).some((l) => l.id === id)).toBe(false);
  });
});

describe("-w / --write-out", () => {
  it("accepts table or json only, and not together with --json", async () => {
    const bad = await concord(["lease", "list", "-w", "yaml"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("Allowed choices are table, json");
    const both = await concord(["member", "list", "--json", "-w", "table"]);
    expect(both.code).toBe(2);
    expect(both.err).toContain("cannot be used with");
    const before = await concord(["lock", "-w", "json", "list"]);
    expect(before.code).toBe(2);
    expect(before.err).toContain("give options after the subcommand");
  });
});

interface MemberJson {
  id: string;
  peerUrl: string;
  clientUrl: string;
  role: string;
}

describe("concord member update", () => {
  it("re-points every member's link to the new peer URL, and back, keeping the member a voter", async () => {
    const target = suite.cluster.members()[2];
    // A TCP relay on a new port to the member's real peer port: the new URL works only if the others dial it.
    let relayed = 0;
    const relay = net.createServer((inbound) => {
      relayed++;
      const out = net.connect(target.peerPort, "127.0.0.1");
      inbound.pipe(out).pipe(inbound);
      const end = () => (inbound.destroy(), out.destroy());
      inbound.on("error", end).on("close", end);
      out.on("error", end).on("close", end);
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
    const relayUrl = `ws://127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
    try {
      const r = await concord(["member", "update", target.name, "--peer-urls", relayUrl]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain(`updated ${target.name}: peer URL ${relayUrl}, client URL ${target.clientUrl}`);
      // Every member knows the new URL (each asked itself), and the target is still a voter.
      for (const m of suite.cluster.members()) {
        const c = await connect([m.clientUrl], { followLeader: false });
        try {
          const members = (await c.members()).members as MemberJson[];
          await waitUntil(`${m.name} applied the update`, 10_000, async () =>
            (await c.members()).members.find((x) => x.id === target.name)?.peerUrl === relayUrl ? true : undefined,
          );
          expect(members.find((x) => x.id === target.name)?.role).toBe("voter");
        } finally {
          await c.close();
        }
      }
      // The others now reach the target through the relay: it keeps up with new writes.
      await waitUntil("the others dial the new URL", 15_000, () => (relayed >= 2 ? true : undefined));
      const put = await suite.client.put("insp/member", "after-update");
      const status = await waitUntil("the target applied a write made after the update", 15_000, async () => {
        const s = await suite.cluster.status(target.name);
        return s.revision >= put.revision ? s : undefined;
      });
      expect(status.members.find((x) => x.id === target.name)?.peerUrl).toBe(relayUrl);

      const refused = await concord(["member", "update", target.name, "--peer-urls", suite.cluster.members()[0].peerUrl]);
      expect(refused.code).toBe(2);
      expect(refused.err).toContain(`is the peer URL of ${suite.cluster.members()[0].name}`);
      const two = await concord(["member", "update", target.name, "--peer-urls", `${relayUrl},${target.peerUrl}`]);
      expect(two.code).toBe(2);
      expect(two.err).toContain("takes one URL");
      const unknown = await concord(["member", "update", "n9", "--peer-urls", "ws://127.0.0.1:1"]);
      expect(unknown.code).toBe(1);
      expect(unknown.err).toContain("MEMBER_NOT_FOUND");
    } finally {
      const back = await concord(["member", "update", target.name, "--peer-urls", target.peerUrl]);
      expect(back.code, back.err).toBe(0);
      relay.close();
    }
    // Back on its own URL (the relay is gone): it still keeps up.
    const put = await suite.client.put("insp/member", "after-restore");
    await waitUntil("the target applied a write after the restore", 15_000, async () =>
      (await suite.cluster.status(target.name)).revision >= put.revision ? true : undefined,
    );
  });
});

describe("concord move-leader", () => {
  it("moves leadership to the named voter and answers once it leads", async () => {
    const { leader } = await suite.client.members();
    const to = suite.cluster.members().find((m) => m.name !== leader)!.name;
    const r = await concord(["move-leader", to]);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim()).toBe(`leadership moved from ${leader} to ${to}`);
    expect((await suite.cluster.status(to)).role).toBe("leader");
    expect(await json<{ from: string; leader: string }>(["move-leader", to])).toMatchObject({ from: to, leader: to });
    const bad = await concord(["move-leader", "n9"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("MEMBER_NOT_FOUND");
  });
});

describe("concord snapshot status", () => {
  it("reports a saved snapshot's index, term, revision, keys, hash and size", async () => {
    const file = path.join(suite.dir, "inspect.snap");
    const saved = await json<{ index: number; term: number; hash: string; bytes: number }>([
      "snapshot",
      "save",
      file,
      "--endpoints",
      suite.cluster.members()[0].clientUrl,
    ]);
    const s = await json<{ index: number; term: number; hash: string; bytes: number; revision: number; keys: number; members: MemberJson[] }>([
      "snapshot",
      "status",
      file,
    ]);
    expect(s).toMatchObject({ index: saved.index, term: saved.term, hash: saved.hash, bytes: fs.statSync(file).size });
    expect(s.term).toBeGreaterThan(0);
    expect(s.keys).toBeGreaterThan(0);
    expect(s.revision).toBeGreaterThan(0);
    expect(s.members.map((m) => m.id).sort()).toEqual(suite.cluster.members().map((m) => m.name).sort());
    const table = await concord(["snapshot", "status", file]);
    expect(table.out.trim().split("\n")[1].split(/\s+/).slice(0, 3)).toEqual([saved.hash, String(saved.index), String(saved.term)]);

    const damaged = path.join(suite.dir, "damaged.snap");
    fs.writeFileSync(damaged, fs.readFileSync(file).subarray(0, 200));
    const bad = await concord(["snapshot", "status", damaged]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("is not a valid Concord snapshot");
  });
});

interface HealthJson {
  endpoint: string | null;
  member: string | null;
  health: boolean;
  tookMs: number | null;
  error?: string;
}

describe("concord endpoint health / status discovering members", () => {
  it("from one endpoint, --cluster finds and checks every member", async () => {
    const one = suite.cluster.members()[1].clientUrl;
    const rows = await json<HealthJson[]>(["endpoint", "health", "--cluster", "--endpoints", one]);
    expect(rows.map((r) => r.member).sort()).toEqual(suite.cluster.members().map((m) => m.name).sort());
    for (const r of rows) expect(r).toMatchObject({ health: true, tookMs: expect.any(Number) });
    const alone = await json<HealthJson[]>(["endpoint", "health", "--endpoints", one]);
    expect(alone.map((r) => r.member)).toEqual([suite.cluster.members()[1].name]);
    const table = await concord(["endpoint", "health", "--cluster", "--endpoints", one]);
    expect(table.code).toBe(0);
    expect(table.out.trim().split("\n")).toHaveLength(4);

    // status discovers by default (as it always has); --cluster is accepted as etcdctl spells it.
    for (const flags of [[], ["--cluster"]]) {
      const statusRows = await json<{ endpoint: string; status: { id: string } }[]>(["status", ...flags, "--endpoints", one]);
      expect(statusRows.map((r) => r.status.id).sort()).toEqual(suite.cluster.members().map((m) => m.name).sort());
    }
    expect((await json<unknown[]>(["status", "--no-cluster", "--endpoints", one])).length).toBe(1);
  });

  it("reports an endpoint that does not answer as unhealthy, exit 1", async () => {
    const dead = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const endpoints = `${suite.cluster.members()[0].clientUrl},ws://127.0.0.1:${dead}`;
    const r = await concord(["endpoint", "health", "--endpoints", endpoints, "-w", "json"]);
    expect(r.code).toBe(1);
    const rows = JSON.parse(r.out) as HealthJson[];
    expect(rows.find((x) => x.endpoint === `ws://127.0.0.1:${dead}`)).toMatchObject({ health: false, member: null, error: expect.stringContaining("unreachable") });
    expect(rows.find((x) => x.member === suite.cluster.members()[0].name)?.health).toBe(true);
  });
});
