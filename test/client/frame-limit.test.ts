// Oversized requests get an answer, never a timeout: members announce their frame limit in the welcome and
// answer FRAME_TOO_LARGE (logging the refusal); the client refuses before sending what it knows is too large;
// and a connection closed for size anyway (WebSocket 1009) fails the request with FRAME_TOO_LARGE at once.
// Real member processes and the real CLI (ports 8750-8771).

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Client } from "../../src/index.js";
import { ClientSocket } from "../../src/transport/client-socket.js";
import { LocalCluster } from "../../src/harness/index.js";
import { waitUntil as waitFor } from "../../src/harness/index.js";
import { NODE_ARGS, REPO } from "./cli.js";

/** The members' default --max-request-bytes (1.5 MiB). */
const LIMIT = 1.5 * 1024 * 1024;

let cluster: LocalCluster;
let client: Client;
let dir: string;

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, basePort: 8750, logLevel: "warn" });
  client = await connect(cluster.endpoints().join(","));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-frame-limit-"));
});

afterAll(async () => {
  await client?.close();
  await cluster?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const { code, message } = e as { code: string; message: string };
    return { code, message };
  }
  throw new Error("expected a refusal, but the request succeeded");
}

/** A raw connection to n1 that does not know the member's limit (as with a member that does not announce it). */
async function unknowingSocket(): Promise<ClientSocket> {
  const sock = await ClientSocket.connect(cluster.members()[0].clientUrl);
  expect(sock.welcome.maxFrameBytes).toBe(LIMIT);
  delete sock.welcome.maxFrameBytes;
  return sock;
}

function memberLog(name: string): string {
  return fs.readFileSync(cluster.member(name).logFile, "utf8");
}

describe("oversized requests", () => {
  it("concord put of a 10 MB value from stdin fails at once with FRAME_TOO_LARGE naming the limit", async () => {
    const file = path.join(dir, "10mb");
    fs.writeFileSync(file, Buffer.alloc(10 * 1024 * 1024, 0x61));
    const input = fs.openSync(file, "r");
    const child = spawn(process.execPath, [...NODE_ARGS, "put", "big", "-"], {
      cwd: REPO,
      env: { ...process.env, CONCORD_ENDPOINTS: cluster.endpoints().join(",") },
      stdio: [input, "pipe", "pipe"],
    });
    fs.closeSync(input);
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const started = performance.now();
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    expect(code).toBe(1);
    expect(out).toBe("");
    expect(err).toMatch(
      new RegExp(`^concord put: FRAME_TOO_LARGE: put request of \\d+ bytes exceeds the limit of ${LIMIT} bytes`),
    );
    expect(err).not.toMatch(/TIMEOUT/);
    // Refused before sending, not after the 10 s request deadline (a generous bound for a loaded machine).
    expect(performance.now() - started).toBeLessThan(9000);
    expect(await client.get("big")).toBeNull();
  });

  it("the library refuses before sending, and the connection stays usable", async () => {
    const r = await refusal(client.put("big", Buffer.alloc(2 * LIMIT)));
    expect(r.code).toBe("FRAME_TOO_LARGE");
    expect(r.message).toContain(`limit of ${LIMIT} bytes`);
    expect((await client.put("small", "fits")).revision).toBeGreaterThan(0);
  });

  it("a member answers a frame just over its limit with FRAME_TOO_LARGE for that request, and logs it", async () => {
    const sock = await unknowingSocket();
    try {
      const r = await refusal(sock.request("put", { key: "over", value: Buffer.alloc(LIMIT) }, 10_000));
      expect(r.code).toBe("FRAME_TOO_LARGE");
      expect(r.message).toMatch(new RegExp(`^put request of \\d+ bytes exceeds this member's limit of ${LIMIT} bytes`));
      // The connection stays open: the next request is served.
      const ok = await sock.request<{ kvs: unknown[] }>("range", { key: "over" }, 10_000);
      expect(ok.kvs).toEqual([]);
    } finally {
      sock.close();
    }
    await waitFor("n1 to log the refusal", 10_000, () =>
      /refused a client frame: put request of \d+ bytes exceeds/.test(memberLog("n1")) ? true : undefined,
    );
  });

  it("a connection closed for size (WebSocket 1009) fails the request with FRAME_TOO_LARGE, not a timeout", async () => {
    const sock = await unknowingSocket();
    const started = performance.now();
    const r = await refusal(sock.request("put", { key: "far-over", value: Buffer.alloc(10 * 1024 * 1024) }, 30_000));
    expect(r.code).toBe("FRAME_TOO_LARGE");
    expect(r.message).toMatch(
      /^put request of \d+ bytes: .* closed the connection because a frame was too large \(WebSocket 1009\)/,
    );
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(sock.isOpen).toBe(false);
    await waitFor("n1 to log the closed connection", 10_000, () =>
      /closed a client connection \(WebSocket 1009\)/.test(memberLog("n1")) ? true : undefined,
    );
    // The client library's connection to the cluster is unaffected.
    expect((await client.get("small"))?.text).toBe("fits");
  });
});
