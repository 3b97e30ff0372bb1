// One HTTP(S) GET with a deadline: what the harness reads members' endpoints with, and what a member's dashboard
// asks its fellow members with.

import http from "node:http";
import https from "node:https";

/** TLS material for https: the CA to trust, and a client certificate when the member requires one. */
export interface HttpTls {
  ca?: Buffer | string | (Buffer | string)[];
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
