// The dashboard's HTTP routes under /ui (docs/dashboard.md): the page and its files (open: they hold no cluster
// data), and read-only JSON under /ui/api/ (cluster read when tokens are configured, as /status; http.ts checks).
//
//   GET /ui/api/member        this member's status and the leader changes it saw
//   GET /ui/api/cluster       the same from every member: this one directly, the others over their client port's
//                             HTTP with the viewer's token; a member that does not answer is listed with the error
//   GET /ui/api/coordination  locks, elections, leases and a page of keys (?prefix=&limit=&after=), as the leader
//                             sees them when it answers (lease time left is known only there), else as this member
//                             does; ?local=1 answers from this member only

import type { TokenEntry } from "../../host/auth.js";
import type { Replica } from "../../host/replica.js";
import { httpGet, type HttpTls } from "../http-get.js";
import { json as toJson, type HttpReply, type UiRoutes } from "../http.js";
import type { DashboardAssets } from "./assets.js";
import type { LeaderHistory } from "./leader-history.js";
import { coordinationView, KEYS_DEFAULT, KEYS_MAX, memberView, type CoordinationView, type KeysQuery, type MemberView } from "./views.js";

export interface DashboardOptions {
  replica: Replica;
  history: LeaderHistory;
  /** Loaded on the first request for a file, so a member without them still serves everything else. */
  assets: () => DashboardAssets;
  wallNow: () => number;
  /** TLS for a fellow member's https client port (what this member trusts and shows when it forwards). */
  tls?: HttpTls;
  /** How long to wait for a fellow member's answer. */
  peerTimeoutMs?: number;
}

export interface ClusterMember {
  id: string;
  clientUrl: string;
  role: "voter" | "learner";
  view?: MemberView;
  /** Why there is no view: unreachable, refused, no client URL known. */
  error?: string;
}

export interface CoordinationAnswer {
  view: CoordinationView;
  /** Present when the view is this member's own although it does not lead: why the leader's was not used. */
  note?: string;
}

const JSON_TYPE = "application/json; charset=utf-8";

export class Dashboard implements UiRoutes {
  constructor(private readonly opts: DashboardOptions) {}

  access(path: string): "open" | "cluster" | undefined {
    if (path === "/ui" || path === "/ui/" || path.startsWith("/ui/assets/")) return "open";
    if (path.startsWith("/ui/api/")) return "cluster";
    return undefined;
  }

  async serve(path: string, query: URLSearchParams, viewer: TokenEntry | undefined, token: string | undefined): Promise<HttpReply> {
    if (path === "/ui" || path === "/ui/") {
      const { page } = this.opts.assets();
      return { status: 200, contentType: page.contentType, body: page.body, headers: { "Content-Security-Policy": page.csp } };
    }
    if (path.startsWith("/ui/assets/")) {
      const file = this.opts.assets().files.get(path.slice("/ui/assets/".length));
      if (file) return { status: 200, contentType: file.contentType, body: file.body };
      return notFound(path, [...this.opts.assets().files.keys()].map((f) => `/ui/assets/${f}`));
    }
    switch (path) {
      case "/ui/api/member":
        return json(200, this.member());
      case "/ui/api/cluster":
        return json(200, { self: this.opts.replica.id, members: await this.cluster(token) });
      case "/ui/api/coordination": {
        const keys = keysQuery(query);
        if (typeof keys === "string") return json(400, { error: "invalid_argument", message: keys });
        return json(200, await this.coordination(keys, viewer, token, query.get("local") === "1"));
      }
    }
    return notFound(path, ["/ui/api/member", "/ui/api/cluster", "/ui/api/coordination"]);
  }

  private member(): MemberView {
    return memberView(this.opts.replica, this.opts.history.list(), this.opts.wallNow());
  }

  private async cluster(token: string | undefined): Promise<ClusterMember[]> {
    const self = this.opts.replica.id;
    return Promise.all(
      this.opts.replica.status().members.map(async (m): Promise<ClusterMember> => {
        const entry = { id: m.id, clientUrl: m.clientUrl, role: m.role };
        if (m.id === self) return { ...entry, view: this.member() };
        try {
          return { ...entry, view: (await this.ask(m.clientUrl, "/ui/api/member", token)) as MemberView };
        } catch (e) {
          return { ...entry, error: (e as Error).message };
        }
      }),
    );
  }

  private async coordination(keys: KeysQuery, viewer: TokenEntry | undefined, token: string | undefined, local: boolean): Promise<CoordinationAnswer> {
    const replica = this.opts.replica;
    const own = (note?: string): CoordinationAnswer => ({ view: coordinationView(replica, keys, viewer), ...(note ? { note } : {}) });
    if (local || replica.isLeader) return own();
    const leaderUrl = replica.leaderClientUrl();
    if (leaderUrl === null) return own("no leader is known: this member's own view, without lease time left");
    const q = new URLSearchParams({ prefix: keys.prefix, limit: String(keys.limit), local: "1" });
    if (keys.after !== undefined) q.set("after", keys.after);
    try {
      const answer = (await this.ask(leaderUrl, `/ui/api/coordination?${q}`, token)) as CoordinationAnswer;
      // Leadership may have moved since: a view from a member that no longer leads has no lease times either.
      return answer.view.leader ? answer : own(`${answer.view.member} no longer leads: this member's own view`);
    } catch (e) {
      return own(`the leader ${replica.leaderId} did not answer (${(e as Error).message}): this member's own view, without lease time left`);
    }
  }

  /** GET `path` from the member with client URL `clientUrl` (ws → http, wss → https); rejects unless 200 JSON. */
  private async ask(clientUrl: string, path: string, token: string | undefined): Promise<unknown> {
    if (clientUrl === "") throw new Error("its client URL is not known");
    const base = clientUrl.replace(/^ws(s?):\/\//, "http$1://").replace(/\/+$/, "");
    const r = await httpGet(`${base}${path}`, { token, tls: this.opts.tls, timeoutMs: this.opts.peerTimeoutMs ?? 1500 });
    if (r.status !== 200) {
      let message = r.body.slice(0, 200);
      try {
        message = (JSON.parse(r.body) as { message?: string }).message ?? message;
      } catch {
        // not JSON: the start of the body says it
      }
      throw new Error(`${base} answered ${r.status}: ${message}`);
    }
    return JSON.parse(r.body);
  }
}

/** The key browser's query, or what is wrong with it. */
function keysQuery(q: URLSearchParams): KeysQuery | string {
  const prefix = q.get("prefix") ?? "";
  const limitText = q.get("limit");
  const limit = limitText === null ? KEYS_DEFAULT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > KEYS_MAX) {
    return `limit is ${JSON.stringify(limitText)}; expected an integer from 1 to ${KEYS_MAX}`;
  }
  const after = q.get("after");
  return { prefix, limit, ...(after !== null ? { after } : {}) };
}

function json(status: number, value: unknown): HttpReply {
  return { status, contentType: JSON_TYPE, body: toJson(value) };
}

function notFound(path: string, endpoints: string[]): HttpReply {
  return json(404, { error: "not_found", message: `no endpoint ${path.slice(0, 100)}`, endpoints });
}
