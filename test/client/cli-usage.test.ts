// The CLI does what docs/cli.md says: every argument error (commander's own included) is one line on stderr and
// exit code 2; --version; durations with units wherever a duration is taken; `concord status` finds every member
// from one endpoint. Real CLI processes against a real 3-member cluster (ports 8550-8571).

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { CliSuite, REPO } from "./cli.js";

const suite = new CliSuite(8550, "cli-usage");

async function concord(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = suite.cli(args);
  const r = await p.exited;
  return { code: r.code, out: p.stdout(), err: p.stderr() };
}

describe("argument errors", () => {
  it("exit 2 with one line on stderr, in the format of every other error", async () => {
    const cases: [string[], RegExp][] = [
      [["put"], /^concord put: INVALID_ARGUMENT: missing required argument 'key' \(see `concord put --help`\)$/],
      [["put", "k", "v", "--bogus"], /^concord put: INVALID_ARGUMENT: unknown option '--bogus'/],
      [["put", "k", "v", "extra"], /^concord put: INVALID_ARGUMENT: too many arguments/],
      [["nope"], /^concord: INVALID_ARGUMENT: unknown command 'nope'/],
      [["lease", "grant", "soon"], /^concord lease grant: INVALID_ARGUMENT: .*'soon'.*expected a duration/],
      [["lock", "x", "--ttl", "10x"], /^concord lock: INVALID_ARGUMENT: option '--ttl <duration>' argument '10x'/],
      [["lock", "x", "--ttl", "50ms"], /^concord lock: INVALID_ARGUMENT: .*at least 100ms/],
      [["watch", "k", "--count", "0"], /^concord watch: INVALID_ARGUMENT: .*expected an integer >= 1/],
      [
        ["get", "k", "--raw", "--json"],
        /^concord get: INVALID_ARGUMENT: option '--raw' cannot be used with option '--json'/,
      ],
      [["get", "k", "--request-timeout", "soon"], /^concord get: INVALID_ARGUMENT: .*expected a duration/],
      [["member", "add", "n4"], /^concord member add: INVALID_ARGUMENT: missing required argument 'peer-url'/],
    ];
    const results = await Promise.all(cases.map(([args]) => concord(args)));
    cases.forEach(([args, expected], i) => {
      const r = results[i];
      expect(r.code, `concord ${args.join(" ")}: ${r.err}`).toBe(2);
      expect(r.out).toBe("");
      expect(r.err.endsWith("\n") && r.err.split("\n").length === 2, r.err).toBe(true);
      expect(r.err.trim()).toMatch(expected);
    });
    // No command at all: the help, on stderr, as a usage error.
    const bare = await concord([]);
    expect(bare.code).toBe(2);
    expect(bare.err).toMatch(/^Usage: concord/);
  });

  it("--version prints the package version; --help exits 0", async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string })
      .version;
    const [v, help] = await Promise.all([concord(["--version"]), concord(["put", "--help"])]);
    expect(v).toEqual({ code: 0, out: `${version}\n`, err: "" });
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: concord put/);
  });
});

describe("durations and discovery", () => {
  it("durations take units everywhere: --request-timeout 2s, --ttl 10h, lease grant 10h", async () => {
    const put = await concord(["put", "usage/k", "v", "--request-timeout", "2s"]);
    expect(put.code, put.err).toBe(0);
    const [lock, lease] = await Promise.all([
      concord(["lock", "usage-lock", "--ttl", "10h", "--grace", "1.5s", "--timeout", "1m", "--", "true"]),
      concord(["lease", "grant", "10h", "--json"]),
    ]);
    expect(lock.code, lock.err).toBe(0);
    expect(lease.code, lease.err).toBe(0);
    const { id, ttlMs } = JSON.parse(lease.out) as { id: number; ttlMs: number };
    expect(ttlMs).toBe(10 * 3600 * 1000);
    expect((await suite.client.leaseTimeToLive(id))?.ttlMs).toBe(10 * 3600 * 1000);
  });

  it("concord status given one endpoint shows every member, asking each itself", async () => {
    const one = suite.cluster.members()[1].clientUrl;
    const p = suite.cli(["status", "--endpoints", one, "--json"]);
    const r = await p.exited;
    expect(r.code, p.stderr()).toBe(0);
    const rows = JSON.parse(p.stdout()) as { endpoint: string; status: { id: string; role: string } }[];
    expect(rows.map((x) => x.endpoint).sort()).toEqual(suite.cluster.members().map((m) => m.clientUrl).sort());
    // Each row is the member's own view (asked at its own URL), not the first endpoint's.
    for (const row of rows) {
      expect(row.status.id).toBe(suite.cluster.members().find((m) => m.clientUrl === row.endpoint)!.name);
    }
    expect(rows.filter((x) => x.status.role === "leader")).toHaveLength(1);
  });
});
