import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

it("stop() leaves no handles: a process that used transports exits on its own", async () => {
  const script = fileURLToPath(new URL("./stop-leaves-no-handles.script.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on("exit", (c, s) => resolve([c, s])),
  );
  clearTimeout(killer);
  expect(signal, `the process had to be killed (a handle outlived stop()):\n${out}`).toBeNull();
  expect(code, out).toBe(0);
  expect(out).toMatch(/stopped after receiving \d+ messages/);
});
