import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpHandler, HTTP_ENDPOINTS, type HttpDeps, type Readiness } from "../../src/server/http.js";
import { parseTokens } from "../../src/server/tokens.js";
import { createConcordMetrics } from "../../src/server/metrics.js";

const metrics = createConcordMetrics();
let readiness: Readiness = { ready: false, reason: "no leader known" };
let statusFails = false;
let metricsFail = false;
const deps: HttpDeps = {
  ready: () => readiness,
  metrics: async () => {
    if (metricsFail) throw new Error("collector failed");
    return metrics.expose();
  },
  status: () => {
    if (statusFails) throw new Error("state machine busy");
    return { name: "n1", role: "leader", members: new Map([["n1", "ws://127.0.0.1:7001"]]), revision: 12n };
  },
};

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer(createHttpHandler(deps));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
});

describe("HTTP endpoints on a real server", () => {
  it("GET /health is 200 {ok:true} and never cached", async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ ok: true });
  });

  it("GET /ready follows deps.ready(): 503 with the reason, then 200", async () => {
    readiness = { ready: false, reason: "no leader known" };
    const notReady = await fetch(`${base}/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ ready: false, reason: "no leader known" });
    readiness = { ready: true };
    const ready = await fetch(`${base}/ready?verbose`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
  });

  it("GET /metrics serves the exposition with the 0.0.4 content type", async () => {
    metrics.raftTerm.set(9);
    metrics.clientRequests.labels("get", "OK").inc(3);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain("# TYPE concord_raft_term gauge\nconcord_raft_term 9\n");
    expect(text).toContain('concord_client_requests_total{op="get",code="OK"} 3\n');
    expect(Number(res.headers.get("content-length"))).toBe(Buffer.byteLength(text));
  });

  it("GET /status serves deps.status() as JSON, Maps as objects and bigints as strings", async () => {
    const res = await fetch(`${base}/status`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      name: "n1",
      role: "leader",
      members: { n1: "ws://127.0.0.1:7001" },
      revision: "12",
    });
  });

  it("HEAD answers the GET headers without a body", async () => {
    const res = await fetch(`${base}/health`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength('{"ok":true}')));
    expect(await res.text()).toBe("");
  });

  it("an unknown path is 404 listing the endpoints", async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: "not_found",
      message: "no endpoint /nope",
      endpoints: [...HTTP_ENDPOINTS],
    });
  });

  it("methods other than GET and HEAD are 405 with Allow", async () => {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const res = await fetch(`${base}/metrics`, { method, body: method === "DELETE" ? undefined : "x" });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
      expect(((await res.json()) as { message: string }).message).toBe(
        `${method} is not allowed on /metrics; use GET or HEAD`,
      );
    }
  });

  it("a failing dependency is a 500 naming the endpoint, and the server keeps serving", async () => {
    statusFails = true;
    try {
      const res = await fetch(`${base}/status`);
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: "internal", message: "/status failed: state machine busy" });
    } finally {
      statusFails = false;
    }
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it("a failing metrics collection (async) is a 500 too, and the next scrape succeeds", async () => {
    metricsFail = true;
    try {
      const res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: "internal", message: "/metrics failed: collector failed" });
    } finally {
      metricsFail = false;
    }
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });

  it("answers 404 for a path that is not valid percent-encoding, and keeps serving", async () => {
    const raw = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: (server.address() as AddressInfo).port, path: "/%%%", method: "GET" },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(raw).toBe(404);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});

describe("HTTP endpoints with tokens configured", () => {
  const tokens = parseTokens(
    JSON.stringify([
      { token: "monitor-token-0123456789", name: "monitor", permissions: [{ cluster: true, access: "read" }] },
      { token: "app-token-0123456789abcd", name: "app", permissions: [{ prefix: "app/", access: "admin" }] },
    ]),
    "test tokens",
  );
  let guarded: Server;
  let url: string;
  beforeAll(async () => {
    guarded = createServer(createHttpHandler({ ...deps, tokens }));
    await new Promise<void>((resolve) => guarded.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(guarded.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => guarded.close(() => resolve()));
  });

  it("/status and /metrics need a bearer token with cluster read (401, then 403); /health and /ready stay open", async () => {
    readiness = { ready: true };
    const get = (p: string, token?: string, method = "GET") =>
      fetch(`${url}${p}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
    for (const p of ["/status", "/metrics"]) {
      const none = await get(p);
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toBe('Bearer realm="concord"');
      expect((await get(p, "unknown-token-000000000")).status).toBe(401);
      expect((await get(p, "app-token-0123456789abcd")).status).toBe(403);
      expect((await get(p, "monitor-token-0123456789")).status).toBe(200);
      expect((await get(p, undefined, "HEAD")).status).toBe(401);
    }
    expect((await get("/health")).status).toBe(200);
    expect((await get("/ready")).status).toBe(200);
  });
});
