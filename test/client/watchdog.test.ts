// The command watchdog (cli/watchdog/main.ts) as a real process guarding a real process group; no cluster, no ports.

import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeMessage, monotonicMs, type WatchdogMessage } from "../../cli/watchdog/protocol.js";
import { waitUntil as waitFor } from "../../src/harness/index.js";
import { REPO } from "./cli.js";
import { liveGroupMembers, readStamps, stampingCommand } from "./supervision.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-watchdog-"));
const started: ChildProcess[] = [];

afterAll(() => {
  for (const p of started) {
    try {
      process.kill(-p.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

interface TestWatchdog {
  send(m: WatchdogMessage): void;
  end(): void;
  stderr(): string;
  exited: Promise<{ code: number | null; at: number }>;
}

async function startWatchdog(graceMs: number): Promise<TestWatchdog> {
  const proc = spawn(process.execPath, ["--import", "tsx", "cli/watchdog/main.ts", "test", String(graceMs)], {
    cwd: REPO,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  started.push(proc);
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((r) =>
    proc.on("exit", (code) => r({ code, at: monotonicMs() })),
  );
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  await waitFor("the watchdog to be ready", 30_000, () => (out === "ready\n" ? true : undefined));
  return {
    send: (m) => proc.stdin!.write(encodeMessage(m)),
    end: () => proc.stdin!.end(),
    stderr: () => err,
    exited,
  };
}

/** A process group running `argv` (its leader's pid names it). */
function startGroup(argv: string[]): number {
  const p = spawn(argv[0], argv.slice(1), { detached: true, stdio: "ignore" });
  started.push(p);
  return p.pid!;
}

/** A group that ignores SIGTERM and stamps lines until SIGKILLed; resolves once it runs. */
async function stampingGroup(name: string): Promise<{ pgid: number; log: string }> {
  const log = path.join(dir, `${name}.log`);
  const pgid = startGroup(stampingCommand(log, path.join(dir, `${name}.pid`)));
  await waitFor("the group to run", 15_000, () => (readStamps(log).length > 0 ? true : undefined));
  return { pgid, log };
}

const gone = (pgid: number) => (liveGroupMembers(pgid).length === 0 ? true : undefined);

describe("the command watchdog", () => {
  it("SIGKILLs the whole group once the last deadline passes unrenewed, and not before", async () => {
    const wd = await startWatchdog(5000);
    const { pgid, log } = await stampingGroup("unfed");
    let deadline = monotonicMs() + 2000;
    wd.send({ kind: "hold", at: deadline });
    wd.send({ kind: "group", pgid });
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 100));
      deadline = monotonicMs() + 2000;
      wd.send({ kind: "hold", at: deadline });
    }
    expect(liveGroupMembers(pgid).length).toBeGreaterThan(0); // fed: still running
    const r = await wd.exited;
    expect(r.code).toBe(0);
    expect(r.at).toBeGreaterThanOrEqual(deadline); // it exits right after the kill, never before the deadline
    await waitFor("the group to be gone", 5000, () => gone(pgid));
    expect(wd.stderr()).toMatch(/not confirmed in time.*SIGKILL to the command's process group/);
    expect(readStamps(log).length).toBeGreaterThan(0);
  });

  it("a final deadline lowers the bound, and no later hold extends it", async () => {
    const wd = await startWatchdog(60_000);
    const { pgid } = await stampingGroup("final");
    wd.send({ kind: "hold", at: monotonicMs() + 60_000 });
    wd.send({ kind: "group", pgid });
    wd.send({ kind: "final", at: monotonicMs() + 300 });
    wd.send({ kind: "hold", at: monotonicMs() + 60_000 });
    expect((await wd.exited).code).toBe(0);
    await waitFor("the group to be gone", 5000, () => gone(pgid));
  });

  it("end of input without done (the supervisor died): SIGTERM to the group at once", async () => {
    const wd = await startWatchdog(1000);
    const log = path.join(dir, "eof-term.log");
    const pgid = startGroup([
      "sh",
      "-c",
      `trap 'echo term >> ${log}; exit 0' TERM; echo up >> ${log}; sleep 60 & wait`,
    ]);
    await waitFor("the group to run", 15_000, () => (fs.existsSync(log) ? true : undefined));
    wd.send({ kind: "hold", at: monotonicMs() + 60_000 });
    wd.send({ kind: "group", pgid });
    wd.end();
    await waitFor("the command's SIGTERM trap", 10_000, () =>
      fs.readFileSync(log, "utf8") === "up\nterm\n" ? true : undefined,
    );
    expect(wd.stderr()).toMatch(/the supervising process exited.*SIGTERM now, SIGKILL in \d+ ms/);
    expect((await wd.exited).code).toBe(0); // after the grace period
    await waitFor("the group to be gone", 5000, () => gone(pgid));
  });

  it("end of input: SIGKILL after the grace period, or at the deadline when that comes first", async () => {
    const short = await startWatchdog(300);
    const a = await stampingGroup("eof-grace");
    short.send({ kind: "hold", at: monotonicMs() + 60_000 });
    short.send({ kind: "group", pgid: a.pgid });
    short.end();
    expect((await short.exited).code).toBe(0);
    await waitFor("the group to be gone", 5000, () => gone(a.pgid));

    const long = await startWatchdog(60_000);
    const b = await stampingGroup("eof-deadline");
    long.send({ kind: "hold", at: monotonicMs() + 300 });
    long.send({ kind: "group", pgid: b.pgid });
    long.end();
    expect((await long.exited).code).toBe(0);
    await waitFor("the group to be gone", 5000, () => gone(b.pgid));
  });

  it("done: exits at once and leaves the group alone", async () => {
    const wd = await startWatchdog(0);
    const { pgid } = await stampingGroup("done");
    wd.send({ kind: "hold", at: monotonicMs() + 60_000 });
    wd.send({ kind: "group", pgid });
    wd.send({ kind: "done" });
    expect((await wd.exited).code).toBe(0);
    expect(liveGroupMembers(pgid).length).toBeGreaterThan(0);
    expect(wd.stderr()).toBe("");
  });
});
