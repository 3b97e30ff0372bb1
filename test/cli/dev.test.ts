// `concord dev` end to end with real processes (ports 8500–8521, 8530–8551, 8560–8581): --fresh never deletes data a
// running member holds (and the cluster keeps its acknowledged writes), a second cluster on a held data directory
// and a cluster whose port is taken both exit non-zero with the members' reason, leaving no member behind.

import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitUntil } from "../../src/harness/index.js";
import { connect } from "../../src/index.js";
import { lockHolder } from "../../src/storage/data-dir.js";
import { runCli, type CliProcess } from "../client/cli.js";

const MEMBERS = ["n1", "n2", "n3"];
const dataDirs: string[] = [];
const devs: CliProcess[] = [];

function tempData(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-dev-test-"));
  dataDirs.push(dir);
  return dir;
}

function dev(args: string[]): CliProcess {
  const p = runCli(["dev", "--log-level", "warn", ...args]);
  devs.push(p);
  return p;
}

const endpoints = (basePort: number) => MEMBERS.map((_, i) => `ws://127.0.0.1:${basePort + 10 * i}`);

/** Resolves once `concord dev` says its cluster is up; fails at once if it exits first. */
async function untilUp(p: CliProcess): Promise<void> {
  await Promise.race([
    waitUntil("concord dev to report its cluster up", 45_000, () =>
      p.stdout().includes("Up: leader") ? true : undefined,
    ),
    p.exited.then((r) => {
      throw new Error(`concord dev exited (${r.code ?? r.signal}) before it was up:\n${p.stderr()}`);
    }),
  ]);
}

/** Ctrl-C: the members stop gracefully and `concord dev` exits 0. */
async function interrupt(p: CliProcess): Promise<void> {
  p.kill("SIGINT");
  const r = await p.exited;
  expect(r.code, p.stderr()).toBe(0);
}

/** Exit of a `concord dev` expected to fail, bounded in time. */
async function failure(p: CliProcess): Promise<number | null> {
  const timer = setTimeout(() => p.kill("SIGKILL"), 45_000);
  const r = await p.exited;
  clearTimeout(timer);
  return r.code;
}

afterAll(async () => {
  // A dev cluster still running (a failed assertion): stop it gracefully, then make sure no member is left.
  for (const p of devs) p.kill("SIGTERM");
  await Promise.all(devs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 15_000))])));
  for (const dir of dataDirs) {
    for (const m of MEMBERS) {
      const pid = lockHolder(path.join(dir, m));
      if (pid !== undefined) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe.sequential("concord dev", () => {
  it("--fresh refuses to delete a running dev cluster's data (naming the directory and pid, exit 1); the writes survive", async () => {
    const data = tempData();
    const running = dev(["--data", data, "--base-port", "8500"]);
    await untilUp(running);
    const c = await connect(endpoints(8500));
    await c.put("dev/acknowledged", "kept");
    await c.close();
    const holder = lockHolder(path.join(data, "n1"));
    expect(holder).toBeGreaterThan(0);

    const fresh = dev(["--fresh", "--data", data, "--base-port", "8500"]);
    expect(await failure(fresh)).toBe(1);
    expect(fresh.stderr()).toContain(`refusing to delete ${data}`);
    expect(fresh.stderr()).toContain(`${path.join(data, "n1")} (held by pid ${holder})`);
    expect(fs.existsSync(path.join(data, "n1", "wal"))).toBe(true);

    // Without --fresh, a second cluster on the same data (other ports) cannot start either: its members find the
    // directories locked, and it says so.
    const second = dev(["--data", data, "--base-port", "8560"]);
    expect(await failure(second)).toBe(1);
    expect(second.stderr()).toMatch(/the cluster did not start: member n\d exited \(exit code 1\)/);
    expect(second.stderr()).toMatch(/is locked by the running process \d+/);

    // The running cluster still serves the write, and keeps it across a stop and start.
    const c2 = await connect(endpoints(8500));
    expect((await c2.get("dev/acknowledged"))?.text).toBe("kept");
    await c2.close();
    await interrupt(running);
    const again = dev(["--data", data, "--base-port", "8500"]);
    await untilUp(again);
    const c3 = await connect(endpoints(8500));
    expect((await c3.get("dev/acknowledged"))?.text).toBe("kept");
    await c3.close();
    await interrupt(again);

    // With nothing running, --fresh does delete.
    const fresher = dev(["--fresh", "--data", data, "--base-port", "8500"]);
    await untilUp(fresher);
    const c4 = await connect(endpoints(8500));
    expect(await c4.get("dev/acknowledged")).toBeNull();
    await c4.close();
    await interrupt(fresher);
  }, 240_000);

  it("a member that cannot start (its client port is taken) makes concord dev exit 1 with the member's reason", async () => {
    const blocker = net.createServer((s) => s.destroy()); // holds the port, serves nothing
    await new Promise<void>((r) => blocker.listen(8540, "127.0.0.1", r)); // n2's client port
    try {
      const data = tempData();
      const p = dev(["--data", data, "--base-port", "8530"]);
      expect(await failure(p)).toBe(1);
      expect(p.stderr()).toContain("member n2 exited (exit code 1) before the cluster was up");
      expect(p.stderr()).toMatch(/EADDRINUSE[^\n]*8540/);
      expect(p.stderr()).toContain(path.join(data, "n2.log"));
      // No member was left running.
      for (const m of MEMBERS) expect(lockHolder(path.join(data, m)), m).toBeUndefined();
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 90_000);
});
