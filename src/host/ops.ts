// Every client op, declared once: what it needs (access and resource kind, auth.ts), where it is served
// (route) and how. Wire-level arguments and results are in docs/protocol.md.
//
// Routes:
// - "local":  served by the member the client is connected to (reads, streams, status);
// - "leader": served on the leader; a follower forwards it (writes, keep-alives, membership);
// - "wait":   proposed on the leader, but answered by the member the client is connected to once it applies the
//             grant, with a stream for the "lost" push (lock acquires, campaigns); `propose` is what the leader
//             does with one forwarded to it.

import { ProtocolError, arg, type RequestFrame } from "../transport/protocol.js";
import type { AccessNeed } from "./auth.js";
import type { AccessRequest } from "../statemachine/auth-permissions.js";
import { CommandFailure } from "./errors.js";
import type { ClientConnection } from "./gateway.js";
import { DEFAULT_PAGE_ITEMS, MAX_PAGE_ITEMS, electionList, electionStatus, leaseList, lockList } from "./inspect.js";
import { changeMembership, moveLeader, requireMember, updateMember } from "./membership-ops.js";
import type { ClientService } from "./service.js";

type Serve = (s: ClientService, conn: ClientConnection | undefined, req: RequestFrame) => unknown;

export type Op = AccessNeed & {
  /**
   * Resources an answer shows beyond what the request named, checked by the member the client is connected to
   * (a follower too, after the leader answered): lease listings name keys, and as etcd's lease TimeToLive the
   * caller must be able to read every key it would see (`keys: false` shows none).
   */
  reveals?: (result: unknown) => AccessRequest[];
} & (
    | { route: "local" | "leader"; serve: Serve }
    | { route: "wait"; serve: (s: ClientService, conn: ClientConnection, req: RequestFrame) => unknown; propose: (s: ClientService, req: RequestFrame) => unknown }
  );

/** The request as a state-machine command named `smOp` (the wire op by default); `id` is the request's own. */
function asCommand(req: RequestFrame, smOp?: string): Record<string, unknown> {
  const { id: _id, ...fields } = req;
  if (smOp !== undefined) fields.op = smOp;
  return fields;
}

/** An op that is one state-machine command, proposed on the leader and answered once applied. */
const command =
  (smOp?: string): Serve =>
  (s, _conn, req) =>
    s.proposeCommand(asCommand(req, smOp));

const lease = (req: RequestFrame) => arg.int(req, "lease", { min: 1 });
const nameArg = (req: RequestFrame) => arg.string(req, "name");
const noArgs = () => undefined;

/**
 * A linearizable read of this member's state: the arguments are parsed first (a bad one fails before the
 * ReadIndex round), then `read` runs once this member has applied every write acknowledged before the request.
 */
function afterBarrier<A>(parse: (req: RequestFrame) => A, read: (s: ClientService, args: A) => unknown): Serve {
  return async (s, _c, req) => {
    const args = parse(req);
    await s.replica.readBarrier();
    return read(s, args);
  };
}
const keysRead = (keys: readonly string[] = []): AccessRequest[] => keys.map((name) => ({ kind: "key", name, access: "read" }));

export const OPS = {
  // key-value store
  put: { access: "write", kind: "key", route: "leader", serve: command() },
  range: { access: "read", kind: "key", route: "local", serve: (s, c, req) => s.range(req, c) },
  delete: { access: "write", kind: "key", route: "leader", serve: command() },
  txn: { access: "write", kind: "key", route: "leader", serve: command() },
  compact: { access: "admin", kind: "cluster", route: "leader", serve: command() },
  watch: { access: "read", kind: "key", route: "local", serve: (s, c, req) => s.streams.watch(c!, req) },
  unwatch: { access: "read", kind: "none", route: "local", serve: (s, c, req) => ({ cancelled: s.streams.cancel(c!, arg.int(req, "stream", { min: 1 })) }) },

  // leases and sessions
  leaseGrant: {
    access: "write",
    kind: "none",
    route: "leader",
    serve: (s, _c, req) => s.proposeCommand({ ...asCommand(req), grantedAt: 0 }), // the leader stamps grantedAt
  },
  leaseRevoke: {
    access: "write",
    kind: "none",
    route: "leader",
    // A request's own `id` is its request id: on the wire the lease is `lease`.
    serve: (s, _c, req) => {
      const { lease: id, ...fields } = asCommand(req);
      return s.proposeCommand({ ...fields, id });
    },
  },
  leaseKeepAlive: {
    access: "write",
    kind: "none",
    route: "leader",
    // Answered only once a heartbeat round confirmed this member still leads: a deposed leader that has not
    // noticed yet must not extend a lease the new leader will expire (clients trust a lease for its TTL from
    // when a successful keep-alive was sent; a new leader restarts every TTL at its election, which follows
    // any heartbeat round a quorum answered for the old one).
    serve: afterBarrier(lease, (s, id) => {
      const ttl = s.replica.keepAlive(id);
      if (ttl === undefined) throw new CommandFailure({ code: "LEASE_NOT_FOUND", message: `lease ${id} does not exist (it expired or was revoked)` });
      return { id, ttlMs: ttl };
    }),
  },
  leaseTimeToLive: {
    access: "read",
    kind: "none",
    route: "leader",
    reveals: (r) => keysRead((r as { lease: { keys?: string[] } | null }).lease?.keys),
    serve: afterBarrier(
      (req) => ({ id: lease(req), withKeys: req.keys === undefined || arg.bool(req, "keys") }), // keys by default, as before the flag
      (s, { id, withKeys }) => {
        const info = s.replica.sm.leaseTimeToLive(id);
        if (!info) return { lease: null };
        const { keys, ...rest } = info;
        return { lease: { ...rest, remainingMs: Math.round(s.replica.leaseRemainingMs(id) ?? info.ttlMs), keyCount: keys.length, ...(withKeys ? { keys } : {}) } };
      },
    ),
  },
  // Served by the leader: the time left is its deadline (inspect.ts).
  leaseList: {
    access: "read",
    kind: "none",
    route: "leader",
    reveals: (r) => keysRead((r as { leases: { keys?: string[] }[] }).leases.flatMap((l) => l.keys ?? [])),
    serve: afterBarrier(
      (req) => ({ after: arg.int(req, "after", { optional: true }), limit: pageLimit(req), keys: arg.bool(req, "keys") }),
      (s, page) => leaseList(s.replica.sm, (id) => s.replica.leaseRemainingMs(id), page),
    ),
  },
  registerClient: { access: "write", kind: "none", route: "leader", serve: command() },

  // locks
  lockAcquire: {
    access: "write",
    kind: "lock",
    route: "wait",
    serve: (s, c, req) => s.coordination.lockAcquire(c, req, (r) => s.onLeader(r)),
    propose: (s, req) => s.proposeCommand(asCommand(req)),
  },
  lockRelease: { access: "write", kind: "lock", route: "leader", serve: command() },
  lockStatus: {
    access: "read",
    kind: "lock",
    route: "local",
    serve: afterBarrier(nameArg, (s, name) => s.replica.coord.lockStatus(name)),
  },
  lockList: {
    access: "read",
    kind: "lock",
    nameArg: "prefix",
    route: "local",
    serve: afterBarrier(namePage, (s, page) => lockList(s.replica.coord, page)),
  },

  // elections
  campaign: {
    access: "write",
    kind: "election",
    route: "wait",
    serve: (s, c, req) => s.coordination.campaign(c, req, (r) => s.onLeader(r)),
    propose: (s, req) => s.proposeCommand(asCommand(req, "electionCampaign")),
  },
  proclaim: { access: "write", kind: "election", route: "leader", serve: command("electionProclaim") },
  resign: { access: "write", kind: "election", route: "leader", serve: command("electionResign") },
  leader: {
    access: "read",
    kind: "election",
    route: "local",
    serve: afterBarrier(nameArg, (s, name) => ({ leader: s.replica.coord.electionLeader(name) })),
  },
  electionStatus: {
    access: "read",
    kind: "election",
    route: "local",
    serve: afterBarrier(nameArg, (s, name) => electionStatus(s.replica.coord, name)),
  },
  electionList: {
    access: "read",
    kind: "election",
    nameArg: "prefix",
    route: "local",
    serve: afterBarrier(namePage, (s, page) => electionList(s.replica.coord, page)),
  },
  observe: { access: "read", kind: "election", route: "local", serve: (s, c, req) => s.streams.observe(c!, req) },
  unobserve: { access: "read", kind: "none", route: "local", serve: (s, c, req) => ({ cancelled: s.streams.cancel(c!, arg.int(req, "stream", { min: 1 })) }) },

  // cluster
  // The cluster's own state (as HTTP /status and /metrics): cluster read permission when tokens are configured.
  status: { access: "read", kind: "cluster", route: "local", serve: (s) => s.replica.status() },
  members: { access: "read", kind: "cluster", route: "local", serve: (s) => ({ members: s.replica.status().members, leader: s.replica.leaderId }) },
  memberAdd: {
    access: "admin",
    kind: "cluster",
    route: "leader",
    serve: (s, _c, req) => {
      const id = requireMember(s.replica, req, "member", "absent");
      const peerUrl = wsUrl(req, "peerUrl", false);
      const clientUrl = wsUrl(req, "clientUrl", true);
      return changeMembership(s.replica, { changes: [{ kind: "addLearner", nodeId: id }] }, { id, peerUrl, clientUrl });
    },
  },
  memberPromote: {
    access: "admin",
    kind: "cluster",
    route: "leader",
    serve: (s, _c, req) => changeMembership(s.replica, { changes: [{ kind: "addVoter", nodeId: requireMember(s.replica, req, "member", "learner") }] }),
  },
  memberRemove: {
    access: "admin",
    kind: "cluster",
    route: "leader",
    serve: (s, _c, req) => changeMembership(s.replica, { changes: [{ kind: "removeNode", nodeId: requireMember(s.replica, req, "member", "member") }] }),
  },
  memberUpdate: {
    access: "admin",
    kind: "cluster",
    route: "leader",
    serve: (s, _c, req) => {
      const peerUrl = wsUrl(req, "peerUrl", false);
      const clientUrl = req.clientUrl === undefined ? undefined : wsUrl(req, "clientUrl", true);
      return updateMember(s.replica, req, peerUrl, clientUrl);
    },
  },
  // Answered once this (the old) leader sees the new one lead.
  transferLeader: {
    access: "admin",
    kind: "cluster",
    route: "leader",
    serve: async (s, _c, req) => ({ ok: true, ...(await moveLeader(s.replica, requireMember(s.replica, req, "to", "voter"), s.replica.config.requestTimeoutMs)) }),
  },
  snapshot: { access: "admin", kind: "cluster", route: "local", serve: (s, c) => s.streams.snapshot(c!) },
  alarmList: {
    access: "read",
    kind: "cluster",
    route: "local",
    serve: afterBarrier(noArgs, ({ replica: { sm } }) => ({ alarms: sm.alarms(), stateBytes: sm.sizeBytes, quotaBytes: sm.quotaBytes })),
  },
  alarmDisarm: { access: "admin", kind: "cluster", route: "leader", serve: command() },

  // runtime auth (src/statemachine/auth.ts, auth-service.ts): users, roles and permissions are replicated state;
  // managing them needs cluster admin (the root role, or an admin token of the tokens file).
  authenticate: { access: "read", kind: "public", route: "local", serve: (s, c, req) => s.auth.authenticate(c!, req) },
  authStatus: {
    access: "read",
    kind: "none",
    route: "local",
    serve: afterBarrier(noArgs, (s) => s.replica.coord.auth.status()),
  },
  authEnable: {
    access: "admin",
    kind: "cluster",
    route: "leader",
    serve: (s, _c, req) => {
      s.auth.checkCanEnable();
      return s.proposeCommand(asCommand(req, "authEnable"));
    },
  },
  authDisable: { access: "admin", kind: "cluster", route: "leader", serve: command("authDisable") },
  // The leader hashes the password (a follower forwards the request as it came, over the members' connection).
  userAdd: { access: "admin", kind: "cluster", route: "leader", serve: async (s, _c, req) => s.proposeCommand(await s.auth.withHashedPassword(req, "authUserAdd")) },
  userDelete: { access: "admin", kind: "cluster", route: "leader", serve: command("authUserDelete") },
  userPasswd: { access: "admin", kind: "cluster", route: "leader", serve: async (s, _c, req) => s.proposeCommand(await s.auth.withHashedPassword(req, "authUserPasswd")) },
  userGrantRole: { access: "admin", kind: "cluster", route: "leader", serve: command("authUserGrantRole") },
  userRevokeRole: { access: "admin", kind: "cluster", route: "leader", serve: command("authUserRevokeRole") },
  userList: {
    access: "admin",
    kind: "cluster",
    route: "local",
    serve: afterBarrier(noArgs, (s) => ({ users: s.replica.coord.auth.userList() })),
  },
  roleAdd: { access: "admin", kind: "cluster", route: "leader", serve: command("authRoleAdd") },
  roleDelete: { access: "admin", kind: "cluster", route: "leader", serve: command("authRoleDelete") },
  roleGrantPermission: { access: "admin", kind: "cluster", route: "leader", serve: command("authRoleGrantPermission") },
  roleRevokePermission: { access: "admin", kind: "cluster", route: "leader", serve: command("authRoleRevokePermission") },
  roleList: {
    access: "admin",
    kind: "cluster",
    route: "local",
    serve: afterBarrier(noArgs, (s) => ({ roles: s.replica.coord.auth.roleList() })),
  },
} satisfies Record<string, Op>;

export type OpName = keyof typeof OPS;

export const isOp = (op: string): op is OpName => Object.prototype.hasOwnProperty.call(OPS, op);

/** A listing's page size: `limit`, 1 to MAX_PAGE_ITEMS. */
function pageLimit(req: RequestFrame): number {
  const limit = arg.int(req, "limit", { optional: true, min: 1, def: DEFAULT_PAGE_ITEMS });
  if (limit > MAX_PAGE_ITEMS) throw new ProtocolError("INVALID_ARGUMENT", `${req.op}.limit is ${limit}; expected at most ${MAX_PAGE_ITEMS}`);
  return limit;
}

/** A page of names: `prefix` (permission is checked on it), `after` (exclusive) and `limit`. */
function namePage(req: RequestFrame): { prefix: string; after?: string; limit: number } {
  const after = req.after === undefined ? undefined : arg.string(req, "after");
  return { prefix: arg.string(req, "prefix", { optional: true, allowEmpty: true }), after, limit: pageLimit(req) };
}

/** A ws:// or wss:// URL argument (member peer and client URLs); optional ones may be absent or empty. */
function wsUrl(req: RequestFrame, name: string, optional: boolean): string {
  const v = arg.string(req, name, { optional, allowEmpty: optional });
  if (v === "") return v;
  let ok = false;
  try {
    const u = new URL(v);
    ok = (u.protocol === "ws:" || u.protocol === "wss:") && u.hostname !== "" && u.port !== "";
  } catch {
    ok = false;
  }
  if (!ok) throw new ProtocolError("INVALID_ARGUMENT", `${req.op}.${name} is ${JSON.stringify(v.slice(0, 100))}; expected a ws:// or wss:// URL with host and port`);
  return v;
}
