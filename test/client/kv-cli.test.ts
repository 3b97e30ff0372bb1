// The KV, lease and cluster CLI commands against a real 3-member cluster (ports 8400-8421).

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { nodeFileSystem } from "../../src/storage/node-file-system.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/harness/index.js";
import { NODE_ARGS, REPO, runCli } from "./cli.js";

let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, basePort: 8400, logLevel: "warn" });
});

afterAll(async () => {
  await cluster?.teardown();
});

async function concord(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const p = runCli(args, { CONCORD_ENDPOINTS: cluster.endpoints().join(","), ...env });
  const timer = setTimeout(() => p.kill(), 20_000);
  const r = await p.exited;
  clearTimeout(timer);
  return { code: r.code, out: p.stdout(), err: p.stderr() };
}

describe("concord KV commands", () => {
  it("put / get / range / del / cas / txn, human and --json", async () => {
    expect((await concord(["put", "app/a", "1"])).out).toMatch(/^OK revision \d+/);
    await Promise.all([concord(["put", "app/b", "2"]), concord(["put", "app/c", "3"])]);
    const [get, getJson, missing] = await Promise.all([
      concord(["get", "app/a"]),
      concord(["get", "app/a", "--json"]),
      concord(["get", "app/none"]),
    ]);
    expect(get).toMatchObject({ code: 0, out: "1\n" });
    expect(JSON.parse(getJson.out)).toMatchObject({ key: "app/a", value: "1", version: 1 });
    expect(missing.code).toBe(1);
    expect(missing.err.trim().split("\n")).toHaveLength(1);

    const [table, json, page] = await Promise.all([
      concord(["range", "app/"]),
      concord(["range", "app/", "--json"]),
      concord(["range", "app/", "--limit", "2", "--json"]),
    ]);
    expect(table.out.split("\n")[0]).toMatch(/^KEY\s+VALUE\s+MOD_REV\s+VERSION\s+LEASE$/);
    expect(table.out).toMatch(/app\/c\s+3/);
    expect(JSON.parse(json.out).kvs.map((k: { key: string }) => k.key)).toEqual(["app/a", "app/b", "app/c"]);
    expect(JSON.parse(page.out)).toMatchObject({ more: true, cursor: "app/b" });

    const [casBad, casOk] = [await concord(["cas", "app/a", "9", "x"]), await concord(["cas", "app/a", "1", "x"])];
    expect(casBad.code).toBe(1);
    expect(casBad.err).toMatch(/is "1"/);
    expect(casOk.code).toBe(0);

    const txn = JSON.stringify({
      if: [{ key: "app/a", target: "value", op: "=", value: "x" }],
      then: [
        { put: "app/d", value: "4" },
        { get: "app/", prefix: true },
      ],
      else: [],
    });
    const t = await concord(["txn", txn, "--json"]);
    expect(t.code, t.err).toBe(0);
    const tr = JSON.parse(t.out);
    expect(tr.succeeded).toBe(true);
    expect(tr.responses[1].kvs.map((k: { key: string }) => k.key)).toEqual(["app/a", "app/b", "app/c", "app/d"]);

    const del = await concord(["del", "app/", "--prefix"]);
    expect(del.out).toMatch(/^deleted 4 /);
  });

  it("watch --from-revision replays history as JSON lines", async () => {
    const first = await concord(["put", "w/k", "a", "--json"]);
    const rev = JSON.parse(first.out).revision as number;
    await concord(["put", "w/k", "b"]);
    await concord(["del", "w/k"]);
    const w = await concord(["watch", "w/", "--prefix", "--from-revision", String(rev), "--count", "3", "--json"]);
    expect(w.code, w.err).toBe(0);
    const evs = w.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(evs.map((e: { type: string; value?: string }) => `${e.type}:${e.value ?? ""}`)).toEqual([
      "put:a",
      "put:b",
      "delete:",
    ]);
  });

  it("lease grant / ttl / list / revoke, and a leased key disappears on revoke", async () => {
    const g = await concord(["lease", "grant", "30s"]);
    const id = g.out.trim();
    expect(id).toMatch(/^\d+$/);
    await concord(["put", "--lease", id, "leased/k", "v"]);
    const [ttl, list] = await Promise.all([
      concord(["lease", "ttl", id, "--keys", "--json"]),
      concord(["lease", "list", "--json"]),
    ]);
    expect(JSON.parse(ttl.out)).toMatchObject({ id: Number(id), ttlMs: 30000, keys: ["leased/k"] });
    expect(JSON.parse(list.out).map((l: { id: number }) => l.id)).toContain(Number(id));
    expect((await concord(["lease", "revoke", id])).code).toBe(0);
    expect((await concord(["get", "leased/k"])).code).toBe(1);
  });

  it("status and member list show every member and the leader", async () => {
    const [status, members] = await Promise.all([concord(["status"]), concord(["member", "list", "--json"])]);
    expect(status.code, status.err).toBe(0);
    const rows = status.out.trim().split("\n");
    expect(rows[0]).toMatch(/^ENDPOINT\s+MEMBER\s+ROLE\s+LEADER\s+TERM\s+COMMIT\s+APPLIED\s+LAST\s+REVISION\s+HEALTH$/);
    expect(rows).toHaveLength(4);
    expect(rows.filter((r) => /\sleader\s/.test(r))).toHaveLength(1);
    const m = JSON.parse(members.out);
    expect(m.members.map((x: { id: string }) => x.id).sort()).toEqual(["n1", "n2", "n3"]);
    expect(["n1", "n2", "n3"]).toContain(m.leader);
  });

  it("errors: one line on stderr and a non-zero exit code", async () => {
    const [unreachable, badTtl, badJson] = await Promise.all([
      concord(["get", "k", "--request-timeout", "1500"], { CONCORD_ENDPOINTS: "ws://127.0.0.1:8499" }),
      concord(["lease", "grant", "soon"]),
      concord(["txn", "{not json"]),
    ]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.err).toMatch(/^concord get: UNAVAILABLE: .+\n$/);
    expect(badTtl.code).toBe(2);
    expect(badTtl.err).toMatch(/^concord lease grant: INVALID_ARGUMENT: .*'soon'.*expected a duration/);
    expect(badJson.code).toBe(2);
    expect(badJson.err.trim().split("\n")).toHaveLength(1);
  });
});

describe("concord snapshot save / restore", () => {
  it("streams a member's state to a file whose content restores to the same store", async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { decodeNodeSnapshot } = await import("../../src/host/node-snapshot.js");
    const { restoreCoordinationStateMachine } = await import("../../src/locks/index.js");
    const dir = mkdtempSync(join(tmpdir(), "concord-snap-"));
    try {
      await concord(["put", "snap/a", "alpha"]);
      await concord(["put", "snap/b", "beta"]);
      const file = join(dir, "backup.snap");
      const r = await concord(["snapshot", "save", file, "--json"]);
      expect(r.code).toBe(0);
      expect(r.err).toBe(""); // stderr is a pipe: no progress bar, no control characters
      const info = JSON.parse(r.out);
      expect(info.index).toBeGreaterThan(0);
      // The file is the member's snapshot format: membership plus the state machine's deterministic bytes.
      const snap = decodeNodeSnapshot(readFileSync(file));
      expect(snap.members.map((m) => m.id).sort()).toEqual(["n1", "n2", "n3"]);
      const sm = restoreCoordinationStateMachine(snap.sm).stateMachine;
      expect(Buffer.from(sm.get("snap/a")!.value).toString()).toBe("alpha");
      expect(sm.hash()).toBe(info.hash);

      // restore: a new member's data directory starting from that state and index, with the new membership.
      const dataDir = join(dir, "n1");
      const restored = await concord(["snapshot", "restore", file, "--data", dataDir, "--name", "n1", "--initial-cluster", "n1=ws://127.0.0.1:9991", "--json"]);
      expect(restored.code).toBe(0);
      expect(restored.err).toBe("");
      expect(JSON.parse(restored.out)).toMatchObject({ index: info.index, hash: info.hash, restored: true });
      const { DurableStorage } = await import("../../src/storage/durable-storage.js");
      const disk = await DurableStorage.open(nodeFileSystem, dataDir);
      expect(disk.snapshot?.metadata).toMatchObject({ index: info.index, confState: { voters: ["n1"] } });
      expect(disk.hardState.commit).toBe(info.index);
      await disk.close();
      const again = await concord(["snapshot", "restore", file, "--data", dataDir, "--name", "n1", "--initial-cluster", "n1=ws://127.0.0.1:9991"]);
      expect(again.code).not.toBe(0);
      expect(again.err).toMatch(/not empty/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("on a terminal (a pseudo-terminal from script(1)), snapshot save draws its progress bar to 100%", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-snap-tty-"));
    try {
      const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
      const command = [process.execPath, ...NODE_ARGS, "snapshot", "save", path.join(dir, "tty.snap")].map(quote).join(" ");
      const child = spawn("script", ["-qfec", command, "/dev/null"], {
        cwd: REPO,
        env: { ...process.env, CONCORD_ENDPOINTS: cluster.endpoints().join(",") },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
      clearTimeout(timer);
      expect(code, out).toBe(0);
      const text = out.replace(/\x1b(?:\[[0-9;?]*[A-Za-z]|[78])/g, ""); // eslint-disable-line no-control-regex
      expect(text).toMatch(new RegExp(`snapshot \\[#{30}\\] 100% (\\d+\\.\\d)/\\1 MiB`));
      expect(text).toMatch(/saved .*tty\.snap: \d+ bytes, index \d+/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
