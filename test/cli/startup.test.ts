// A client command starts without the server's modules: scripts run `concord get` and `concord lock` many times,
// and every module loaded is time spent before the command does anything. The modules a start loads are listed by
// a loader hook (module.registerHooks, or module.register on Node 20), in the CLI process the tests run (harnessCommand).

import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { harnessCommand } from "../../src/harness/index.js";

// Each load is written straight to fd 2 (writeSync): the CLI exits at once, and a buffered write from the hooks'
// thread would be lost. Node 22.15+ runs synchronous hooks in the thread itself (registerHooks); Node 20 has only
// the hooks thread (register).
const LIST_LOADS = `data:text/javascript,${encodeURIComponent(`
import * as module from "node:module";
import { writeSync } from "node:fs";
if (module.registerHooks) {
  module.registerHooks({ load(url, context, next) { writeSync(2, "loaded " + url + "\\n"); return next(url, context); } });
} else {
  module.register("data:text/javascript," + encodeURIComponent(
    "import { writeSync } from 'node:fs'; export async function load(url, context, next) { writeSync(2, 'loaded ' + url + '\\\\n'); return next(url, context); }"
  ));
}
`)}`;

function loadedBy(args: string[]): string[] {
  const command = harnessCommand();
  const r = spawnSync(process.execPath, ["--import", LIST_LOADS, ...command.nodeArgs, ...args], {
    cwd: command.cwd,
    encoding: "utf8",
    env: { ...process.env, CONCORD_ENDPOINTS: "ws://127.0.0.1:1" },
  });
  return r.stderr
    .split("\n")
    .filter((l) => l.startsWith("loaded "))
    .map((l) => l.slice("loaded ".length));
}

describe("concord's start", () => {
  it("lists the modules it loads (the check below can see a server module)", () => {
    const loaded = loadedBy(["server", "--help"]);
    expect(loaded.some((u) => u.includes("/cli/concord."))).toBe(true);
    expect(loaded.some((u) => u.includes("/src/server/config."))).toBe(true);
  });

  // statemachine/limits and /errors are the constants and error codes the client shares with the server.
  it.each([
    ["--version"],
    ["get", "k", "--request-timeout", "100ms"],
    ["lock", "--help"],
    ["snapshot", "status", "--help"],
  ])("`concord %s` loads no state machine, storage, Raft or zod module", (...args) => {
    const loaded = loadedBy(args);
    expect(loaded.length).toBeGreaterThan(10);
    expect(
      loaded.filter((u) =>
        /\/src\/storage\/(?!defaults\.)|\/src\/(raft|locks|host)\/|\/src\/statemachine\/(?!limits\.|errors\.)|\/node_modules\/zod\//.test(u),
      ),
    ).toEqual([]);
  });
});
