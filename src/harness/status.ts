// What a running member's HTTP endpoints answer, read over real HTTP(S): the JSON of GET /status (one type for every
// user of the harness), /health and /metrics.
//
// MemberStatus is declared once, in src/host/status.ts, where the member builds it; test/harness/harness.test.ts
// checks it against a live member's JSON.

import { httpGet, type HttpTls } from "../server/http-get.js";

export type { MemberStatus, PeerStats as PeerCounters } from "../host/status.js";
export { httpGet, type HttpAnswer, type HttpTls } from "../server/http-get.js";
import type { MemberStatus } from "../host/status.js";

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
