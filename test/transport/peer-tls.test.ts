// wss between peers with mutual TLS: certificates made by openssl for this test run.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Message } from "../../src/raft/types.js";
import { PeerTransport, type PeerTransportOptions } from "../../src/transport/peer.js";
import { captureLogger, sleep, waitFor } from "./fixtures.js";

let dir = "";
const pem = (name: string): string => readFileSync(join(dir, name), "utf8");

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** A CA and one node certificate (serverAuth + clientAuth, SAN 127.0.0.1) signed by it. */
function makePki(prefix: string): void {
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${prefix}ca.key`,
    "-out",
    `${prefix}ca.pem`,
    "-days",
    "1",
    "-subj",
    `/CN=${prefix}test-ca`,
  );
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${prefix}node.key`,
    "-out",
    `${prefix}node.csr`,
    "-subj",
    "/CN=node",
  );
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  openssl(
    "x509",
    "-req",
    "-in",
    `${prefix}node.csr`,
    "-CA",
    `${prefix}ca.pem`,
    "-CAkey",
    `${prefix}ca.key`,
    "-CAcreateserial",
    "-out",
    `${prefix}node.pem`,
    "-days",
    "1",
    "-extfile",
    "ext.cnf",
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "concord-tls-"));
  makePki("");
  makePki("rogue-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const running: PeerTransport[] = [];
afterAll(async () => Promise.all(running.map((t) => t.stop())));

async function tlsNode(
  id: string,
  inbox: Message[],
  prefix = "",
  extra: Partial<PeerTransportOptions> = {},
): Promise<PeerTransport> {
  const t = new PeerTransport({
    id,
    clusterId: "c",
    secret: "s",
    listen: { host: "127.0.0.1", port: 0 },
    tls: { cert: pem(`${prefix}node.pem`), key: pem(`${prefix}node.key`), ca: pem(`${prefix}ca.pem`) },
    backoff: { initialMs: 20, maxMs: 100 },
    onMessages: (b) => inbox.push(...b),
    ...extra,
  });
  running.push(t);
  await t.start();
  return t;
}

describe("PeerTransport over TLS", () => {
  it("exchanges messages over wss with client certificates", async () => {
    const inA: Message[] = [];
    const inB: Message[] = [];
    const a = await tlsNode("a", inA);
    const b = await tlsNode("b", inB);
    expect(a.url.startsWith("wss://")).toBe(true);
    a.addPeer("b", b.url);
    b.addPeer("a", a.url);
    await waitFor(() => a.stats().peers.b?.connected === true && b.stats().peers.a?.connected === true, "tls links up");
    a.send([{ type: "timeoutNow", from: "a", to: "b", term: 3 }]);
    b.send([{ type: "readIndex", from: "b", to: "a", term: 3, ctx: "r1" }]);
    await waitFor(() => inA.length === 1 && inB.length === 1, "delivered");
    expect(inB[0]).toEqual({ type: "timeoutNow", from: "a", to: "b", term: 3 });
  });

  it("a node whose certificate another CA signed cannot connect", async () => {
    const log = captureLogger();
    const b = await tlsNode("b2", []);
    const rogue = await tlsNode("rogue", [], "rogue-", { logger: log });
    rogue.addPeer("b2", b.url);
    await sleep(300);
    expect(rogue.stats().peers.b2.connected).toBe(false);
    expect(rogue.stats().peers.b2.reconnects).toBeGreaterThan(0);
    expect(log.records.some((r) => r.level === "warn" && String(r.obj.reason).includes("connection error"))).toBe(true);
  });
});
