// A member runs under the node binary its command names (ConcordCommand.node: bench:compare's --also-node), and
// under this process's node when it names none. No ports: the "member" here is a one-line script that exits.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MemberProcess } from "../../src/harness/member.js";
import { MEMBER_NODE_FLAGS } from "../../src/server/member-node-flags.js";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-member-node-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Prints the node binary it runs on and its arguments after the script, as a member's log would hold them.
const SCRIPT = ["-e", "console.log('ran', process.execPath, process.argv.slice(1).join(' '))"];

async function runOnce(node: string | undefined, logFile: string): Promise<string> {
  const member = new MemberProcess({
    name: "n1",
    command: { node, nodeArgs: SCRIPT, cwd: dir },
    serverArgs: ["--flag", "x"],
    logFile,
  });
  member.start();
  const exit = await member.exited;
  expect(exit.code).toBe(0);
  return fs.readFileSync(logFile, "utf8");
}

it("spawns the member with the command's node binary, and this process's node without one", async () => {
  // A wrapper standing in for another Node: it leaves a mark, then execs this node with the same arguments.
  const wrapper = path.join(dir, "other-node");
  fs.writeFileSync(wrapper, `#!/bin/sh\necho "wrapper $*"\nexec "${process.execPath}" "$@"\n`, { mode: 0o755 });

  const viaWrapper = await runOnce(wrapper, path.join(dir, "a.log"));
  expect(viaWrapper).toContain(`wrapper ${[...MEMBER_NODE_FLAGS, ...SCRIPT].join(" ")} server --flag x`);
  expect(viaWrapper).toContain(`ran ${process.execPath} server --flag x`);

  const direct = await runOnce(undefined, path.join(dir, "b.log"));
  expect(direct).not.toContain("wrapper");
  expect(direct).toContain(`ran ${process.execPath} server --flag x`);
});
