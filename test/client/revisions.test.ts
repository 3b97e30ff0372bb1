// Revisions end to end, on three real member processes started with auto-compaction in revision mode keeping 20
// revisions (ports 10150-10171): reads at a past revision through the library, a txn and the CLI (`get --rev`,
// `range --rev`); COMPACTED naming the oldest readable revision; `watch --prev-kv`; the leader's automatic
// compaction shown in status; and the flag errors.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, ConcordError, type Client } from "../../src/index.js";
import { LocalCluster, waitUntil } from "../../src/harness/index.js";
import { runCli } from "./cli.js";

let cluster: LocalCluster;
let client: Client;

beforeAll(async () => {
  cluster = await LocalCluster.start({
    size: 3,
    basePort: 10150,
    logLevel: "warn",
    extraArgs: ["--auto-compaction-mode", "revision", "--auto-compaction-retention", "20"],
  });
  client = await connect(cluster.endpoints());
});

afterAll(async () => {
  await client?.close();
  await cluster?.teardown();
});

async function concord(args: string[], env: Record<string, string> = {}) {
  const p = runCli(args, { CONCORD_ENDPOINTS: cluster.endpoints().join(","), ...env });
  const timer = setTimeout(() => p.kill(), 30_000);
  const r = await p.exited;
  clearTimeout(timer);
  return { code: r.code, out: p.stdout(), err: p.stderr() };
}

describe.sequential("revisions", () => {
  let r1 = 0;
  let r2 = 0;
  let r3 = 0;

  it("reads a key and a prefix as they were, through the library, a txn and the CLI", async () => {
    r1 = (await client.put("rev/a", "one")).revision;
    await client.put("rev/b", "bee");
    r2 = (await client.put("rev/a", "two")).revision;
    r3 = (await client.delete("rev/b")).revision;

    expect((await client.get("rev/a", { revision: r1 }))?.text).toBe("one");
    expect((await client.get("rev/a", { revision: r2 }))?.text).toBe("two");
    expect(await client.get("rev/b", { revision: r3 })).toBeNull();
    expect((await client.get("rev/b", { revision: r2, consistency: "serializable" }))?.text).toBe("bee");
    const past = await client.range("rev/", { revision: r2 });
    expect(past.kvs.map((kv) => `${kv.key}=${kv.text}`)).toEqual(["rev/a=two", "rev/b=bee"]);
    const t = await client.txn().thenPut("rev/a", "three").thenGet("rev/a", { revision: r1 }).commit();
    expect(t.responses[1]).toMatchObject({ op: "range" });
    expect((t.responses[1] as { kvs: { text: string }[] }).kvs[0].text).toBe("one");

    const get = await concord(["get", "rev/a", "--rev", String(r1)]);
    expect(get, get.err).toMatchObject({ code: 0, out: "one\n" });
    const gone = await concord(["get", "rev/b", "--rev", String(r3)]);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain(`not found at revision ${r3}`);
    const range = await concord(["range", "rev/", "--rev", String(r2), "--json"]);
    expect(range.code, range.err).toBe(0);
    expect(JSON.parse(range.out).kvs.map((kv: { key: string; value: string }) => `${kv.key}=${kv.value}`)).toEqual([
      "rev/a=two",
      "rev/b=bee",
    ]);
    const txn = await concord(["txn", JSON.stringify({ then: [{ get: "rev/a", rev: r1 }] }), "--json"]);
    expect(txn.code, txn.err).toBe(0);
    expect(txn.out).toContain("one");
  });

  it("watch --prev-kv prints each event's previous value; without it events carry none", async () => {
    const w = await concord(["watch", "rev/a", "--from-revision", String(r1), "--count", "3", "--prev-kv"]);
    expect(w.code, w.err).toBe(0);
    expect(w.out).toBe("PUT rev/a one\nPREV -\nPUT rev/a two\nPREV one\nPUT rev/a three\nPREV two\n");
    const json = await concord(["watch", "rev/a", "--from-revision", String(r2), "--count", "1", "--prev-kv", "--json"]);
    expect(JSON.parse(json.out)).toMatchObject({ type: "put", value: "two", prevKv: { value: "one" } });
    const events = client.watch("rev/a", { fromRevision: r2 });
    for await (const ev of events) {
      expect(ev.prevKv).toBeUndefined();
      break;
    }
  });

  it("the leader compacts automatically, keeping the last 20 revisions; older reads answer COMPACTED", async () => {
    for (let i = 0; i < 60; i++) await client.put("rev/load", String(i));
    const status = await client.status();
    expect(status.autoCompaction).toBe("revision:20");
    const compacted = await waitUntil("the history compacted to within 22 revisions of the current one", 15_000, async () => {
      const s = await client.status();
      return s.revision - s.compactRevision <= 22 && s.compactRevision > r3 ? s : undefined;
    });
    const err = await client.get("rev/a", { revision: r1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConcordError);
    expect((err as ConcordError).code).toBe("COMPACTED");
    expect((err as ConcordError).compactRevision).toBeGreaterThanOrEqual(compacted.compactRevision);
    expect((err as Error).message).toMatch(/the oldest revision still readable is \d+/);
    const cli = await concord(["get", "rev/a", "--rev", String(r1)]);
    expect(cli.code).toBe(1);
    expect(cli.err).toMatch(/COMPACTED.*the oldest revision still readable is \d+/);
    const future = await concord(["get", "rev/a", "--rev", String(compacted.revision + 1000)]);
    expect(future.code).toBe(1);
    expect(future.err).toMatch(/FUTURE_REVISION/);
  });

  it("refuses an incomplete or malformed auto-compaction configuration, naming the flag", async () => {
    const bad = [
      [["--auto-compaction-mode", "revision"], /--auto-compaction-retention: required with --auto-compaction-mode revision/],
      [["--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1"], /a duration with its unit, at least 1s/],
      [["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1h"], /an integer >= 1/],
      [["--auto-compaction-mode", "sometimes", "--auto-compaction-retention", "1"], /auto-compaction-mode/],
    ] as const;
    for (const [args, message] of bad) {
      const r = await concord(["server", "--name", "x", "--data-dir", "/tmp/concord-never-created", ...args]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(message);
    }
  });
});
