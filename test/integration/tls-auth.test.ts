// Client TLS (wss) and bearer-token auth on a real 3-member cluster: certificates from a throwaway CA made
// with openssl; wss works (also for writes a follower forwards to the leader), plain ws and a wrong CA fail
// clearly; missing and unknown tokens are refused with UNAUTHENTICATED; permissions hold per key, lock and
// cluster prefix; the CLI (--cacert/--cert/--key) and the library use TLS and tokens; HTTP /status and /metrics
// follow the tokens while /health and /ready stay open.

import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect as connectClient } from "../../src/index.js";
import { ClientSocket, RequestError } from "../../src/transport/client-socket.js";
import { LocalCluster, retrying } from "../../src/harness/index.js";
import { runCli } from "../client/cli.js";

const TOKENS = {
  admin: "admin-token-0123456789abcdef",
  writer: "writer-token-0123456789abcdef",
  reader: "reader-token-0123456789abcdef",
};
const PEER_SECRET = "peer-secret-0123456789abcdef";

interface Certificates {
  ca: string;
  /** Server certificate for 127.0.0.1 (client and peer ports), signed by `ca`. */
  cert: string;
  key: string;
  /** A client certificate signed by `ca`. */
  clientCert: string;
  clientKey: string;
  /** An unrelated CA, and a client certificate it signed. */
  otherCa: string;
  otherClientCert: string;
  otherClientKey: string;
}

/** A throwaway PKI made with openssl in `dir`. */
function makeCertificates(dir: string): Certificates {
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) =>
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const signed = (name: string, cn: string, ca: string, ext?: string) => {
    openssl("req", ...ec, "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/CN=${cn}`);
    openssl(
      "x509",
      "-req",
      "-in",
      f(`${name}.csr`),
      "-CA",
      f(`${ca}.pem`),
      "-CAkey",
      f(`${ca}.key`),
      "-CAcreateserial",
      "-out",
      f(`${name}.pem`),
      "-days",
      "2",
      ...(ext ? ["-extfile", ext] : []),
    );
  };
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=concord test CA",
  );
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    f("other-ca.key"),
    "-out",
    f("other-ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=someone else's CA",
  );
  fs.writeFileSync(f("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  signed("server", "127.0.0.1", "ca", f("san.cnf"));
  signed("client", "test-client", "ca");
  signed("other-client", "intruder", "other-ca");
  return {
    ca: f("ca.pem"),
    cert: f("server.pem"),
    key: f("server.key"),
    clientCert: f("client.pem"),
    clientKey: f("client.key"),
    otherCa: f("other-ca.pem"),
    otherClientCert: f("other-client.pem"),
    otherClientKey: f("other-client.key"),
  };
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RequestError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected the request to be refused, but it succeeded");
}

describe.sequential("TLS and token auth", () => {
  let cluster: LocalCluster;
  let dir: string;
  let certs: Certificates;
  let leader: string;
  let follower: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-tls-"));
    certs = makeCertificates(dir);
    const tokensFile = path.join(dir, "tokens.json");
    fs.writeFileSync(
      tokensFile,
      JSON.stringify([
        {
          token: TOKENS.admin,
          name: "admin",
          permissions: [
            { prefix: "", access: "admin" },
            { lock: "", access: "admin" },
            { election: "", access: "admin" },
            { cluster: true, access: "admin" },
          ],
        },
        {
          token: TOKENS.writer,
          name: "app-writer",
          permissions: [
            { prefix: "app/", access: "write" },
            { lock: "jobs/", access: "write" },
          ],
        },
        { token: TOKENS.reader, name: "app-reader", permissions: [{ prefix: "app/", access: "read" }] },
      ]),
    );
    cluster = await LocalCluster.start({
      size: 3,
      basePort: 9500,
      tickMs: 50,
      clientTls: {
        cert: certs.cert,
        key: certs.key,
        ca: certs.ca,
        clientCert: { cert: certs.clientCert, key: certs.clientKey },
      },
      peerTls: { cert: certs.cert, key: certs.key, ca: certs.ca },
      // With tokens, members need a peer secret besides mutual TLS: it keys the forwarding proof.
      peerSecret: PEER_SECRET,
      authTokensFile: tokensFile,
      httpToken: TOKENS.admin,
    });
    leader = await cluster.waitForLeader();
    follower = cluster.running().find((n) => n !== leader)!;
  });
  afterAll(async () => {
    await cluster?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const connect = (name: string, token?: string) =>
    cluster.connect(name, token === undefined ? {} : { hello: { token } });

  describe.sequential("TLS", () => {
    it("serves wss with mutual TLS, including writes a follower forwards to the leader; peers talk wss", async () => {
      expect(cluster.member(follower).clientUrl).toMatch(/^wss:/);
      const sock = await connect(follower, TOKENS.admin);
      try {
        const put = await retrying(() =>
          sock.request<{ revision: number }>("put", { key: "app/tls", value: "over wss" }, 5000),
        );
        const got = await sock.request<{ kvs: { value: Uint8Array; modRevision: number }[] }>(
          "range",
          { key: "app/tls" },
          5000,
        );
        expect(Buffer.from(got.kvs[0].value).toString()).toBe("over wss");
        expect(got.kvs[0].modRevision).toBe(put.revision);
      } finally {
        sock.close();
      }
      expect((await cluster.httpGet(follower, "/health")).status).toBe(200);
      // Replication runs over the wss peer port: every member applied the write.
      const commit = (await cluster.status(leader)).commit;
      for (const n of cluster.running()) {
        const s = await cluster.waitForApplied(n, commit);
        expect(s.members.map((m) => m.peerUrl.slice(0, 6))).toEqual(["wss://", "wss://", "wss://"]);
      }
    });

    it("refuses plain ws on the TLS port", async () => {
      const url = cluster.member(leader).clientUrl.replace("wss:", "ws:");
      const r = await refusal(ClientSocket.connect(url, { hello: { token: TOKENS.admin }, connectTimeoutMs: 3000 }));
      expect(r.code).toBe("UNAVAILABLE");
      expect(r.message).toContain(url);
    });

    it("fails with a certificate error when the client does not trust the server's CA", async () => {
      const url = cluster.member(leader).clientUrl;
      const own = cluster.clientTlsOptions()!;
      const wrongCa = await refusal(
        ClientSocket.connect(url, {
          hello: { token: TOKENS.admin },
          tls: { ...own, ca: fs.readFileSync(certs.otherCa) },
          connectTimeoutMs: 3000,
        }),
      );
      expect(wrongCa.code).toBe("UNAVAILABLE");
      expect(wrongCa.message).toMatch(/certificate/i);
      const noCa = await refusal(
        ClientSocket.connect(url, {
          hello: { token: TOKENS.admin },
          tls: { cert: own.cert, key: own.key },
          connectTimeoutMs: 3000,
        }),
      );
      expect(noCa.message).toMatch(/certificate/i);
    });

    it("refuses a client without a certificate, or with one its CA did not sign", async () => {
      const url = cluster.member(leader).clientUrl;
      const ca = fs.readFileSync(certs.ca);
      const none = await refusal(
        ClientSocket.connect(url, { hello: { token: TOKENS.admin }, tls: { ca }, connectTimeoutMs: 3000 }),
      );
      expect(none.code).toBe("UNAVAILABLE");
      expect(none.message).toMatch(/certificate required/);
      const foreign = await refusal(
        ClientSocket.connect(url, {
          hello: { token: TOKENS.admin },
          tls: { ca, cert: fs.readFileSync(certs.otherClientCert), key: fs.readFileSync(certs.otherClientKey) },
          connectTimeoutMs: 3000,
        }),
      );
      expect(foreign.code).toBe("UNAVAILABLE");
      console.log(`mutual TLS refusals: no certificate → ${none.message}; foreign certificate → ${foreign.message}`);
      // Both failed the TLS handshake, before reaching the gateway: counted by reason.
      const metrics = (await cluster.httpGet(leader, "/metrics")).body;
      const tls = /^concord_client_connections_refused_total\{reason="tls"\} (\d+)$/m.exec(metrics);
      expect(Number(tls?.[1])).toBeGreaterThanOrEqual(2);
    });
  });

  describe.sequential("tokens", () => {
    it("refuses a missing or unknown token with UNAUTHENTICATED", async () => {
      const missing = await refusal(connect(leader));
      expect(missing.code).toBe("UNAUTHENTICATED");
      expect(missing.message).toMatch(/token/);
      const unknown = await refusal(connect(follower, "not-a-known-token-000000"));
      expect(unknown).toEqual({ code: "UNAUTHENTICATED", message: "unknown token" });
    });

    it("a client cannot pass for a forwarding member with a proof keyed by the cluster id (which its welcome shows)", async () => {
      const reader = await connect(leader, TOKENS.reader);
      const clusterId = reader.welcome.clusterId;
      reader.close();
      const forged = createHmac("sha256", clusterId).update(`concord-forward:${clusterId}`).digest("hex");
      for (const member of [leader, follower]) {
        const refused = await refusal(cluster.connect(member, { hello: { forwardedBy: forged } }));
        expect(refused).toEqual({ code: "UNAUTHENTICATED", message: "forwarding proof does not match this cluster's secret" });
      }
    });

    it("a read-only token reads its prefix and nothing else, and cannot write", async () => {
      const admin = await connect(leader, TOKENS.admin);
      await retrying(() => admin.request("put", { key: "app/r", value: "1" }, 5000));
      await retrying(() => admin.request("put", { key: "secret/r", value: "2" }, 5000));
      admin.close();
      for (const member of [leader, follower]) {
        const sock = await connect(member, TOKENS.reader);
        try {
          const got = await sock.request<{ kvs: unknown[] }>("range", { key: "app/r" }, 5000);
          expect(got.kvs).toHaveLength(1);
          const denied = [
            sock.request("put", { key: "app/r", value: "x" }),
            sock.request("delete", { key: "app/r" }),
            sock.request("range", { key: "secret/r" }),
            sock.request("range", { key: "", prefix: true }), // a prefix read of everything
            sock.request("watch", { key: "secret/", prefix: true }),
            sock.request("txn", { compare: [], success: [{ op: "range", key: "app/r" }], failure: [] }),
          ];
          for (const p of denied) expect((await refusal(p)).code).toBe("PERMISSION_DENIED");
        } finally {
          sock.close();
        }
      }
    });

    it("a prefix writer writes its prefix and locks, but not other keys, other locks or the cluster", async () => {
      const sock = await connect(follower, TOKENS.writer);
      try {
        await retrying(() => sock.request("put", { key: "app/w", value: "mine" }, 5000));
        const lease = await sock.request<{ id: number }>("leaseGrant", { ttlMs: 30_000 }, 5000);
        const lock = await sock.request<{ granted: boolean; token: number }>(
          "lockAcquire",
          { name: "jobs/1", lease: lease.id, wait: false },
          5000,
        );
        expect(lock.granted).toBe(true);
        // Listing locks needs read permission on the listed prefix, as a lock op on its name.
        const mine = await sock.request<{ locks: { name: string; holders: { lease: number }[] }[] }>("lockList", { prefix: "jobs/" }, 5000);
        expect(mine.locks.map((l) => [l.name, l.holders[0].lease])).toEqual([["jobs/1", lease.id]]);
        const cases: [string, Record<string, unknown>][] = [
          ["lockList", {}],
          ["lockList", { prefix: "jo" }],
          ["lockStatus", { name: "other/1" }],
          ["electionList", { prefix: "jobs/" }],
          ["electionStatus", { name: "jobs/1" }],
          ["memberUpdate", { member: "n1", peerUrl: "ws://127.0.0.1:1" }],
          ["put", { key: "secret/w", value: "x" }],
          ["put", { key: "ap", value: "x" }],
          [
            "txn",
            {
              compare: [],
              success: [
                { op: "put", key: "app/ok", value: "1" },
                { op: "put", key: "secret/no", value: "1" },
              ],
              failure: [],
            },
          ],
          [
            "txn",
            { compare: [{ key: "secret/r", target: "version", result: ">", value: 0 }], success: [], failure: [] },
          ],
          ["lockAcquire", { name: "other/1", lease: lease.id, wait: false }],
          ["memberRemove", { member: "n1" }],
          ["compact", { revision: 1 }],
          ["transferLeader", { to: leader }],
        ];
        for (const [op, args] of cases) {
          const r = await refusal(sock.request(op, args, 5000));
          expect(r.code, `${op} ${JSON.stringify(args)}`).toBe("PERMISSION_DENIED");
          expect(r.message).toContain("app-writer");
        }
        // The refused transaction wrote nothing, not even its permitted half.
        const got = await sock.request<{ kvs: unknown[] }>("range", { key: "app/ok" }, 5000);
        expect(got.kvs).toHaveLength(0);
      } finally {
        sock.close();
      }
    });

    it("an admin token passes authorization for cluster operations", async () => {
      const sock = await connect(follower, TOKENS.admin);
      try {
        // Authorized, then refused on its merits (forwarded to the leader, which validates the member).
        const r = await refusal(sock.request("memberRemove", { member: "n9" }, 5000));
        expect(r.code).toBe("MEMBER_NOT_FOUND");
        const members = await sock.request<{ members: { id: string }[] }>("members", {}, 5000);
        expect(members.members.map((m) => m.id).sort()).toEqual(["n1", "n2", "n3"]);
      } finally {
        sock.close();
      }
    });
  });

  describe.sequential("the CLI, the library and HTTP with TLS and tokens", () => {
    /** `concord ARGS` (the real CLI) with `env`; resolves with its exit code and output. */
    async function concord(args: string[], env: Record<string, string> = {}) {
      const p = runCli(args, { CONCORD_ENDPOINTS: "", ...env });
      const r = await p.exited;
      return { code: r.code, out: p.stdout(), err: p.stderr() };
    }
    const tlsFlags = () => ["--cacert", certs.ca, "--cert", certs.clientCert, "--key", certs.clientKey];

    it("the CLI speaks wss with a client certificate from --cacert/--cert/--key or CONCORD_CACERT/CERT/KEY", async () => {
      const endpoint = cluster.member(follower).clientUrl;
      const put = await concord([
        "put",
        "app/cli",
        "over wss",
        "--endpoints",
        endpoint,
        "--token",
        TOKENS.writer,
        ...tlsFlags(),
      ]);
      expect(put.code, put.err).toBe(0);
      const get = await concord(["get", "app/cli"], {
        CONCORD_ENDPOINTS: endpoint,
        CONCORD_TOKEN: TOKENS.reader,
        CONCORD_CACERT: certs.ca,
        CONCORD_CERT: certs.clientCert,
        CONCORD_KEY: certs.clientKey,
      });
      expect(get).toMatchObject({ code: 0, out: "over wss\n" });
      // Members require a client certificate: without one the connection is refused, and the error says why.
      const noCert = await concord([
        "get",
        "app/cli",
        "--endpoints",
        endpoint,
        "--token",
        TOKENS.reader,
        "--cacert",
        certs.ca,
        "--request-timeout",
        "2s",
      ]);
      expect(noCert.code).toBe(1);
      expect(noCert.err).toMatch(/^concord get: UNAVAILABLE: .*certificate/);
      const [certOnly, missing] = await Promise.all([
        concord(["get", "k", "--endpoints", endpoint, "--cacert", certs.ca, "--cert", certs.clientCert]),
        concord(["get", "k", "--endpoints", endpoint, "--cacert", path.join(dir, "absent.pem")]),
      ]);
      expect(certOnly.code).toBe(2);
      expect(certOnly.err).toMatch(/^concord get: INVALID_ARGUMENT: --cert and --key go together/);
      expect(missing.code).toBe(2);
      expect(missing.err).toMatch(/^concord get: INVALID_ARGUMENT: .*cannot read .*absent\.pem/);
    });

    it("the library connects with tls { ca, cert, key } and a token", async () => {
      const c = await connectClient(cluster.member(follower).clientUrl, {
        token: TOKENS.writer,
        tls: {
          ca: fs.readFileSync(certs.ca),
          cert: fs.readFileSync(certs.clientCert),
          key: fs.readFileSync(certs.clientKey),
        },
      });
      try {
        await c.put("app/lib", "hello");
        expect((await c.get("app/lib"))?.text).toBe("hello");
      } finally {
        await c.close();
      }
    });

    it("concord status works with a token that may read the cluster, and names the refusal without one", async () => {
      const one = cluster.member(follower).clientUrl;
      const ok = await concord(["status", "--cluster", "--endpoints", one, "--token", TOKENS.admin, "--json", ...tlsFlags()]);
      expect(ok.code, ok.err).toBe(0);
      const rows = JSON.parse(ok.out) as { status: { id: string } }[];
      expect(rows.map((r) => r.status.id).sort()).toEqual(["n1", "n2", "n3"]);
      const denied = await concord(["status", "--endpoints", one, "--token", TOKENS.reader, ...tlsFlags()]);
      expect(denied.code).toBe(1);
      expect(denied.out).toMatch(/PERMISSION_DENIED: token app-reader may not read cluster/);
    });

    it("HTTP /status and /metrics need a token with cluster read; /health and /ready stay open", async () => {
      const own = cluster.clientTlsOptions()!;
      const get = (urlPath: string, token?: string) =>
        new Promise<{ status: number; body: string; authenticate?: string }>((resolve, reject) => {
          const headers = token ? { Authorization: `Bearer ${token}` } : {};
          const req = https.get(
            `${cluster.member(leader).httpBase}${urlPath}`,
            { ...own, headers, timeout: 5000 },
            (res) => {
              let body = "";
              res.on("data", (d: Buffer) => (body += d.toString()));
              res.on("end", () =>
                resolve({ status: res.statusCode ?? 0, body, authenticate: res.headers["www-authenticate"] }),
              );
            },
          );
          req.on("error", reject);
        });
      for (const p of ["/status", "/metrics"]) {
        const none = await get(p);
        expect(none.status, p).toBe(401);
        expect(none.authenticate).toBe('Bearer realm="concord"');
        expect(JSON.parse(none.body).message).toMatch(/Authorization: Bearer/);
        expect((await get(p, "not-a-known-token-000000")).status, p).toBe(401);
        const reader = await get(p, TOKENS.reader);
        expect(reader.status, p).toBe(403);
        expect(JSON.parse(reader.body).message).toMatch(/token app-reader may not read the cluster/);
        expect((await get(p, TOKENS.admin)).status, p).toBe(200);
      }
      expect((await get("/health")).status).toBe(200);
      expect((await get("/ready")).status).toBe(200);
      // The status op follows the same rule.
      const sock = await connect(leader, TOKENS.reader);
      try {
        expect((await refusal(sock.request("status", {}, 5000))).code).toBe("PERMISSION_DENIED");
      } finally {
        sock.close();
      }
    });
  });
});

describe.sequential("server-only TLS with a shared self-signed certificate", () => {
  let cluster: LocalCluster;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-tls-self-"));
    const cert = path.join(dir, "self.pem");
    const key = path.join(dir, "self.key");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    cluster = await LocalCluster.start({ size: 3, basePort: 9600, tickMs: 50, clientTls: { cert, key, ca: cert } });
  });
  afterAll(async () => {
    await cluster?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a follower forwards writes to the leader's wss port", async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.running().find((n) => n !== leader)!;
    const sock = await cluster.connect(follower);
    try {
      const put = await retrying(() =>
        sock.request<{ revision: number }>("put", { key: "self/tls", value: "forwarded" }, 5000),
      );
      expect(put.revision).toBeGreaterThan(0);
    } finally {
      sock.close();
    }
  });
});
