// Plain HTTP on the client port, beside the WebSocket upgrade that the gateway handles on the same server:
// liveness, readiness, Prometheus metrics, a JSON status and the dashboard under /ui (dashboard/routes.ts).
// Read-only, GET/HEAD only, and a failing dependency answers 500 instead of taking the process down.
//
// Access: /health and /ready are open (probes carry no credentials), and so are the dashboard's page and files
// (they hold no cluster data). /metrics, /status and the dashboard's /ui/api/ describe the cluster, so when
// tokens are configured they need `Authorization: Bearer <token>` of a token with cluster read permission, as the
// `status` op does: 401 without a known token, 403 without the permission.

import type { IncomingMessage, ServerResponse } from "node:http";
import { authorize, type TokenEntry, type TokenTable } from "../host/auth.js";
import { prometheusContentType } from "prom-client";

export type Readiness = { ready: true } | { ready: false; reason: string };

/** What the endpoints read from the running node: reads of in-memory state (the metrics' collectors may be async). */
export interface HttpDeps {
  /** Ready to serve: knows a leader and has applied up to the commit index it learned from it. */
  ready(): Readiness;
  /** The Prometheus text exposition (prom-client's registry). */
  metrics(): Promise<string>;
  /** A JSON-serializable snapshot of the node's state (Maps become objects, bigints strings). */
  status(): unknown;
  /** The cluster's bearer tokens (--auth-tokens-file); without them every endpoint is open. */
  tokens?: TokenTable;
  /** The dashboard's routes (/ui…). */
  ui?: UiRoutes;
}

export interface HttpReply {
  status: number;
  contentType: string;
  body: string | Buffer;
  headers?: Record<string, string>;
}

/** Routes served by another module, with the access each path needs. */
export interface UiRoutes {
  /** "open": anyone; "cluster": cluster read when tokens are configured; undefined: not one of these routes. */
  access(path: string): "open" | "cluster" | undefined;
  /** `viewer` is the checked token's entry (undefined without tokens) and `token` the token itself, to ask peers. */
  serve(path: string, query: URLSearchParams, viewer: TokenEntry | undefined, token: string | undefined): Promise<HttpReply>;
}

export const HTTP_ENDPOINTS: readonly string[] = ["/health", "/ready", "/metrics", "/status"];

/** Endpoints open to anyone even when tokens are configured: liveness and readiness probes. */
const OPEN_ENDPOINTS: readonly string[] = ["/health", "/ready"];

const JSON_TYPE = "application/json; charset=utf-8";

/** Answers one request completely; never rejects. */
export async function handleHttp(req: IncomingMessage, res: ServerResponse, deps: HttpDeps): Promise<void> {
  // A body on a GET is ignored, but it must be consumed for the connection to be reusable.
  req.resume();
  const method = req.method ?? "GET";
  const url = req.url ?? "/";
  const queryAt = url.indexOf("?");
  const path = queryAt < 0 ? url : url.slice(0, queryAt);
  const head = method === "HEAD";
  const ui = deps.ui?.access(path);
  try {
    if (!HTTP_ENDPOINTS.includes(path) && ui === undefined) {
      const endpoints = deps.ui ? [...HTTP_ENDPOINTS, "/ui"] : HTTP_ENDPOINTS;
      send(res, head, 404, JSON_TYPE, json({ error: "not_found", message: `no endpoint ${truncate(path)}`, endpoints }));
      return;
    }
    if (method !== "GET" && !head) {
      res.setHeader("Allow", "GET, HEAD");
      send(
        res,
        head,
        405,
        JSON_TYPE,
        json({
          error: "method_not_allowed",
          message: `${truncate(method)} is not allowed on ${path}; use GET or HEAD`,
        }),
      );
      return;
    }
    let viewer: { entry: TokenEntry; token: string } | undefined;
    if (deps.tokens && !OPEN_ENDPOINTS.includes(path) && ui !== "open") {
      const checked = checkBearer(deps.tokens, req.headers.authorization, path);
      if ("status" in checked) {
        if (checked.status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="concord"');
        send(res, head, checked.status, JSON_TYPE, json(checked.body));
        return;
      }
      viewer = checked;
    }
    if (deps.ui && ui !== undefined) {
      const query = new URLSearchParams(queryAt < 0 ? "" : url.slice(queryAt + 1));
      deps.ui.serve(path, query, viewer?.entry, viewer?.token).then(
        (reply) => send(res, head, reply.status, reply.contentType, reply.body, reply.headers),
        (err: unknown) => failed(res, head, path, err),
      );
      return;
    }
    switch (path) {
      case "/health":
        send(res, head, 200, JSON_TYPE, json({ ok: true }));
        return;
      case "/ready": {
        const readiness = deps.ready();
        send(res, head, readiness.ready ? 200 : 503, JSON_TYPE, json(readiness));
        return;
      }
      case "/metrics":
        send(res, head, 200, prometheusContentType, await deps.metrics());
        return;
      case "/status":
        send(res, head, 200, JSON_TYPE, json(deps.status()));
        return;
    }
  } catch (err) {
    failed(res, head, path, err);
  }
}

function failed(res: ServerResponse, head: boolean, path: string, err: unknown): void {
  if (!res.headersSent) {
    send(
      res,
      head,
      500,
      JSON_TYPE,
      json({ error: "internal", message: `${path} failed: ${err instanceof Error ? err.message : String(err)}` }),
    );
  } else {
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Why a request for `path` may not be served (401: no known token; 403: no cluster read), or the token if it may. */
function checkBearer(
  tokens: TokenTable,
  header: string | undefined,
  path: string,
): { status: 401 | 403; body: { error: string; message: string } } | { entry: TokenEntry; token: string } {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!m) {
    return {
      status: 401,
      body: {
        error: "unauthenticated",
        message: `${path} needs "Authorization: Bearer <token>" with a token that has cluster read permission`,
      },
    };
  }
  const entry = tokens.lookup(m[1]);
  if (!entry) return { status: 401, body: { error: "unauthenticated", message: "unknown token" } };
  if (!authorize(entry, { kind: "cluster", name: "", access: "read" })) {
    return {
      status: 403,
      body: { error: "permission_denied", message: `token ${entry.name} may not read the cluster (${path})` },
    };
  }
  return { entry, token: m[1] };
}

/** A request listener for `http.createServer`. */
export function createHttpHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => void handleHttp(req, res, deps);
}

function send(
  res: ServerResponse,
  head: boolean,
  status: number,
  contentType: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  res.writeHead(status, {
    ...headers,
    "Content-Type": contentType,
    "Content-Length": bytes.length,
    // Health and metrics are live values; an intermediate cache must never answer for the node.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  });
  res.end(head ? undefined : bytes);
}

/** JSON with Maps as objects, Sets as arrays and bigints as strings. */
export function json(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Map) return Object.fromEntries(v);
    if (v instanceof Set) return [...v];
    if (typeof v === "bigint") return v.toString();
    return v;
  });
}

function truncate(s: string): string {
  return s.length > 100 ? s.slice(0, 100) + "…" : s;
}
