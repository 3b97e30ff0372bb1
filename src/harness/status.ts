// What a running member's HTTP endpoints answer, read over real HTTP(S): the JSON of GET /status (one type for every
// user of the harness), /health and /metrics.
//
// MemberStatus is declared once, in src/host/status.ts, where the member builds it; test/harness/harness.test.ts
// checks it against a live member's JSON.

import http from "node:http";
import https from "node:https";

export type { MemberStatus, PeerStats as PeerCounters } from "../host/status.js";
import type { MemberStatus } from "../host/status.js";

/** TLS material for https: the CA to trust, and a client certificate when the member requires one. */
export interface HttpTls {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * GET `url` (http or https), showing `token` as a bearer token when given (/status and /metrics need one when the
 * member has a tokens file); resolves with any status code, rejects on a network error or after `timeoutMs`.
 */
export function httpGet(url: string, opts: { tls?: HttpTls; timeoutMs?: number; token?: string } = {}): Promise<HttpAnswer> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const lib = url.startsWith("https:") ? https : http;
  const headers = opts.token !== undefined ? { Authorization: `Bearer ${opts.token}` } : {};
  return new Promise((resolve, reject) => {
    const req = lib.get(url, { timeout: timeoutMs, headers, ...(opts.tls ?? {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

/** A member's /status, from its HTTP base URL (http://host:clientPort); rejects unless it answers 200 with JSON. */
export async function fetchStatus(
  httpBase: string,
  opts: { tls?: HttpTls; timeoutMs?: number; token?: string } = {},
): Promise<MemberStatus> {
  const r = await httpGet(`${httpBase}/status`, opts);
  if (r.status !== 200) throw new Error(`${httpBase}/status answered ${r.status}: ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as MemberStatus;
}

/** One sample of a Prometheus metric without labels, from a /metrics body. */
export function metricValue(metricsText: string, metric: string): number | undefined {
  const line = metricsText.split("\n").find((l) => l.startsWith(`${metric} `));
  return line === undefined ? undefined : Number(line.slice(metric.length + 1));
}
