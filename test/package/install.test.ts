// What people deploy: `npm pack`'s tarball installed into an empty directory, with nothing from this repository
// beside it. The installed `concord` must run a member and serve its own client commands, and the install must
// succeed without a C compiler (the malloc_trim addon is optional). Slow (build, two installs from the registry):
// run by `npm run test:package` (vitest.package.config.ts), which .ci/run calls; not part of `npm test`.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../src/harness/index.js";

const exec = promisify(execFile);
const CLIENT_PORT = 11400;
const PEER_PORT = 11401;
const ENDPOINT = `ws://127.0.0.1:${CLIENT_PORT}`;

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "concord-package-"));
let tarball = "";
let server: ChildProcess | undefined;

/** `npm install <tarball>` into a new empty directory; returns npm's output (install scripts' included). */
async function installInto(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  fs.mkdirSync(dir);
  const args = ["install", "--no-audit", "--no-fund", "--foreground-scripts", tarball];
  const { stdout, stderr } = await exec("npm", args, { cwd: dir, env, timeout: 240_000 });
  return stdout + stderr;
}

/** The installed `concord`, run from outside the repository. */
function concord(dir: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return exec(path.join(dir, "node_modules/.bin/concord"), args, { cwd: dir, env: { ...process.env, ...env }, timeout: 30_000 });
}

async function waitReady(deadlineMs: number): Promise<void> {
  let last = "";
  while (Date.now() < deadlineMs) {
    if (server?.exitCode !== null) throw new Error(`concord server exited (${server?.exitCode}) before it was ready`);
    try {
      const res = await fetch(`http://127.0.0.1:${CLIENT_PORT}/ready`);
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`concord server not ready within the deadline (last: ${last})`);
}

describe("the npm package", () => {
  beforeAll(async () => {
    // prepack builds dist/ from a clean slate, so this packs what `npm publish` would.
    const { stdout } = await exec("npm", ["pack", "--json", "--pack-destination", scratch], {
      cwd: REPO_ROOT,
      timeout: 300_000,
    });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
    tarball = path.join(scratch, packed.filename);
    expect(packed.files.map((f) => f.path)).toContain("dist/cli/concord.js");
  }, 360_000);

  afterAll(() => {
    if (server?.pid !== undefined && server.exitCode === null) server.kill("SIGKILL");
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("installs into an empty directory and runs a one-member server that the installed CLI writes to and reads from", async () => {
    const dir = path.join(scratch, "app");
    await installInto(dir);
    expect(fs.existsSync(path.join(dir, "node_modules/concord/src")), "sources are not shipped").toBe(false);
    // CI has a C compiler (as test/server/c-heap.test.ts assumes): there the package's install script built the addon.
    if (process.env.CI) expect(fs.existsSync(path.join(dir, "node_modules/concord/build/Release/malloc_trim.node"))).toBe(true);
    expect((await concord(dir, ["--version"])).stdout.trim()).toBe(pkg.version);

    const data = path.join(dir, "data");
    server = spawn(
      path.join(dir, "node_modules/.bin/concord"),
      ["server", "--name", "n1", "--data-dir", data, "--client-url", ENDPOINT,
        "--peer-url", `ws://127.0.0.1:${PEER_PORT}`, "--log-level", "warn"],
      { cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    server.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => server!.on("exit", (code) => r(code)));
    try {
      await waitReady(Date.now() + 30_000);
      const env = { CONCORD_ENDPOINTS: ENDPOINT };
      await concord(dir, ["put", "deploy/check", "from-the-tarball"], env);
      expect((await concord(dir, ["get", "deploy/check"], env)).stdout.trim()).toBe("from-the-tarball");
      expect(fs.existsSync(path.join(data, "wal")), "the member wrote its WAL in --data-dir").toBe(true);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nserver stderr:\n${stderr}`);
    } finally {
      server.kill("SIGTERM");
    }
    expect(await exited, `graceful stop; server stderr:\n${stderr}`).toBe(0);
  }, 300_000);

  it("installs without a C compiler: the optional addon is skipped and `concord` still runs", async () => {
    // A compiler that does not exist: node-gyp's make fails at the first compile, as on a host without one.
    const env = { ...process.env, CC: "/nonexistent/cc", CXX: "/nonexistent/c++" };
    const dir = path.join(scratch, "no-compiler");
    const output = await installInto(dir, env);
    expect(output).toContain("concord: the malloc_trim addon was not built");
    expect(fs.existsSync(path.join(dir, "node_modules/concord/build/Release/malloc_trim.node"))).toBe(false);
    expect((await concord(dir, ["--version"])).stdout.trim()).toBe(pkg.version);
  }, 300_000);
});
