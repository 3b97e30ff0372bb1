// What each client op means on this node (the gateway in src/transport owns sockets and framing).
//
// Writes: proposed on the leader; a follower forwards them to the leader over one internal connection and
// relays the reply. Reads: linearizable by default (a ReadIndex barrier, batched per turn, served from local
// state, so followers serve reads too), `consistency: "serializable"` reads local state at once.
// Streams (watch, lock grants, election observation) are served by the member the client is connected to, from
// the events its own state machine emits while applying: every member applies the same log.

import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { ProposalError } from "./proposals.js";
import { ConfChangeError } from "../raft/confchange.js";
import { NotLeaderError, ProposalDroppedError } from "../raft/errors.js";
import type { ConcordNode } from "./node.js";
import type { Logger } from "./logger.js";
import { authorize, type AccessRequest, type TokenEntry, type TokenTable } from "./config.js";
import { validateCommand, isCommandError, READ_ONLY_OPS, type Command, type RangeOp } from "../statemachine/commands.js";
import type { CommandError } from "../statemachine/errors.js";
import type { WatchEvent } from "../statemachine/watch-history.js";
import type { AppliedEvents } from "./node.js";
import { ClientSocket, RequestError } from "../transport/client-socket.js";
import { AFTER_REPLY, type ClientConnection, type GatewayHandler } from "../transport/gateway.js";
import type { AcquireResult, CampaignResult, CoordinationEvent } from "../locks/index.js";
import { CoordinationStreams } from "./coordination-streams.js";
import { OPS, ProtocolError, arg, isOp, type HelloFrame, type RequestFrame, type WireError } from "../transport/protocol.js";

/** A state machine error carried to the client as it is (code, message, field, compactRevision). */
export class CommandFailure extends Error {
  constructor(readonly error: CommandError) {
    super(error.message);
    this.name = "CommandFailure";
  }
}

type Principal = { kind: "anyone" } | { kind: "internal" } | { kind: "token"; entry: TokenEntry };

/** Ops served by whichever member the client is connected to. Everything else goes to the leader. */
const LOCAL_OPS = new Set(["range", "watch", "unwatch", "status", "members", "lockStatus", "leader", "observe", "unobserve", "snapshot"]);
/** Protocol op → state machine op, where they differ. */
const SM_OP: Record<string, string> = { campaign: "electionCampaign", proclaim: "electionProclaim", resign: "electionResign" };

export interface ServiceOptions {
  node: ConcordNode;
  logger: Logger;
  tokens?: TokenTable;
  /** Per-request deadline for proposals and forwarded requests. */
  requestTimeoutMs?: number;
}

export class ClientService implements GatewayHandler {
  private readonly node: ConcordNode;
  private readonly log: Logger;
  private readonly tokens: TokenTable | undefined;
  private readonly timeoutMs: number;
  private leaderLink: { url: string; socket: Promise<ClientSocket> } | null = null;
  private readonly forwardProof: string;
  private readonly forwardTls: { ca: (string | Buffer)[]; cert?: Buffer; key?: Buffer } | undefined;
  private nextStream = 1;
  private readonly coordination: CoordinationStreams;

  constructor(opts: ServiceOptions) {
    this.node = opts.node;
    this.log = opts.logger;
    this.tokens = opts.tokens;
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    const secret = this.node.config.peerSecret ?? this.node.config.clusterId;
    this.coordination = new CoordinationStreams(this.node);
    this.forwardProof = createHmac("sha256", secret).update(`concord-forward:${this.node.config.clusterId}`).digest("hex");
    // Members share the client-port TLS setup. A follower forwarding to the leader's wss port trusts the client
    // CA (--client-ca-file) and, as the leader then requires, shows its own certificate; without a client CA it
    // trusts the system's CAs plus the certificates in its own --client-cert-file (a shared self-signed
    // certificate, or a chain that includes its CA).
    const tls = this.node.config.tls.client;
    if (tls?.ca) this.forwardTls = { ca: [readFileSync(tls.ca)], cert: readFileSync(tls.cert), key: readFileSync(tls.key) };
    else if (tls) this.forwardTls = { ca: [...rootCertificates, readFileSync(tls.cert)] };
  }

  hello(_conn: ClientConnection, hello: HelloFrame) {
    let principal: Principal;
    if (hello.forwardedBy !== undefined) {
      const a = Buffer.from(hello.forwardedBy);
      const b = Buffer.from(this.forwardProof);
      if (a.length !== b.length || !timingSafeEqual(a, b)) throw new ProtocolError("UNAUTHENTICATED", "forwarding proof does not match this cluster's secret");
      principal = { kind: "internal" };
    } else if (this.tokens) {
      if (!hello.token) throw new ProtocolError("UNAUTHENTICATED", "this cluster requires a bearer token: pass hello.token (CLI: --token or CONCORD_TOKEN)");
      const entry = this.tokens.lookup(hello.token);
      if (!entry) throw new ProtocolError("UNAUTHENTICATED", "unknown token");
      principal = { kind: "token", entry };
    } else {
      principal = { kind: "anyone" };
    }
    return {
      principal,
      welcome: { node: this.node.id, clusterId: this.node.config.clusterId, leader: this.node.leaderClientUrl() },
    };
  }

  toWireError(e: unknown): WireError {
    if (e instanceof CommandFailure) return { ...e.error } as WireError;
    if (e instanceof ProtocolError) return { code: e.code, message: e.message };
    if (e instanceof ConfChangeError) return { code: e.code, message: e.message };
    // The core's own errors, should one reach here untranslated: both are retryable.
    if (e instanceof NotLeaderError) return { code: e.leaderId === null ? "UNAVAILABLE" : "NOT_LEADER", message: e.message };
    if (e instanceof ProposalDroppedError) return { code: "UNAVAILABLE", message: e.message };
    if (e instanceof ProposalError) {
      const leader = this.node.leaderClientUrl();
      return leader && e.code === "NOT_LEADER" ? { code: e.code, message: e.message, leader } : { code: e.code, message: e.message };
    }
    if (e instanceof RequestError) return e.toWire();
    this.log.error({ err: e }, "unexpected error serving a request");
    return { code: "INTERNAL", message: `internal error: ${(e as Error)?.message ?? String(e)}` };
  }

  handle(conn: ClientConnection, req: RequestFrame): Promise<unknown> | unknown {
    if (!isOp(req.op) && !this.isExtensionOp(req.op)) {
      throw new ProtocolError("UNKNOWN_OP", `unknown op ${JSON.stringify(req.op).slice(0, 60)}; accepted: ${Object.keys(OPS).join(", ")}`);
    }
    const principal = conn.principal as Principal;
    this.authorize(principal, req);
    if (principal.kind !== "internal") {
      // Waiting and pushes belong to the member the client is connected to; a forwarded request only proposes.
      if (req.op === "lockAcquire") return this.lockAcquire(conn, req);
      if (req.op === "campaign") return this.campaign(conn, req);
    }
    if (SM_OP[req.op]) req = { ...req, op: SM_OP[req.op] };
    if (LOCAL_OPS.has(req.op)) return this.serveLocal(conn, req);
    return this.write(req);
  }

  /** Serve on the leader, or forward to it. */
  private write(req: RequestFrame): Promise<unknown> {
    return this.node.isLeader ? this.serveOnLeader(req) : this.forward(req);
  }

  /**
   * Acquire a lock; with `wait` (the default) the reply comes when the lock is granted. The waiter is
   * registered before the proposal, so a grant applied here before the leader's reply arrives is not missed.
   * The reply carries a `stream` on which a `lockLost` push arrives if the hold ends with the lease.
   */
  private async lockAcquire(conn: ClientConnection, req: RequestFrame): Promise<unknown> {
    const name = arg.string(req, "name");
    const lease = arg.int(req, "lease", { min: 1 });
    const wait = req.wait === undefined ? true : arg.bool(req, "wait");
    const granted = wait ? this.coordination.awaitLock(conn, name, lease) : null;
    let result: AcquireResult;
    try {
      result = (await this.write({ ...req, wait })) as AcquireResult;
    } catch (e) {
      this.coordination.cancelLock(name, lease);
      throw e;
    }
    let token: number;
    if (result.granted) token = result.token;
    else if ("held" in result || !granted) {
      this.coordination.cancelLock(name, lease);
      return result;
    } else {
      // A retried acquire (same session seq) replays the recorded "queued": the grant may have been applied
      // already, while no request was waiting for it. This member's state says so.
      const held = this.node.coord.lockStatus(name).holders.find((h) => h.lease === lease);
      token = held ? held.token : await granted;
    }
    this.coordination.cancelLock(name, lease);
    const stream = this.addStream(conn, () => {});
    this.coordination.holdingLock(conn, stream, name, lease, token);
    return { granted: true, token, stream };
  }

  /** Campaign; the reply comes when this candidate leads, with a stream for a `leadershipLost` push. */
  private async campaign(conn: ClientConnection, req: RequestFrame): Promise<unknown> {
    const name = arg.string(req, "name");
    const lease = arg.int(req, "lease", { min: 1 });
    const elected = this.coordination.awaitLeadership(conn, name, lease);
    let result: CampaignResult;
    try {
      result = (await this.write({ ...req, op: "electionCampaign" })) as CampaignResult;
    } catch (e) {
      this.coordination.cancelCampaign(name, lease);
      throw e;
    }
    let token: number;
    if (result.leader) token = result.token;
    else {
      // As for a retried acquire: leadership may already have been granted while nobody waited.
      const current = this.node.coord.electionLeader(name);
      token = current && current.lease === lease ? current.token : await elected;
    }
    this.coordination.cancelCampaign(name, lease);
    const stream = this.addStream(conn, () => {});
    this.coordination.leading(conn, stream, name, lease, token);
    return { token, stream };
  }

  private isExtensionOp(op: string): boolean {
    return this.node.sm.handlesOp(op);
  }

  private authorize(p: Principal, req: RequestFrame): void {
    if (p.kind !== "token") return;
    const spec = isOp(req.op) ? OPS[req.op] : { access: "write" as const, kind: "lock" as const };
    let request: AccessRequest;
    if (spec.kind === "key") request = { kind: "key", name: typeof req.key === "string" ? req.key : "", access: spec.access };
    else if (spec.kind === "lock") request = { kind: "lock", name: typeof req.name === "string" ? req.name : "", access: spec.access };
    else if (spec.kind === "election") request = { kind: "election", name: typeof req.name === "string" ? req.name : "", access: spec.access };
    else if (spec.kind === "cluster") request = { kind: "cluster", name: "", access: spec.access };
    else return;
    if (!authorize(p.entry, request)) {
      throw new ProtocolError("PERMISSION_DENIED", `token ${p.entry.name} may not ${spec.access} ${request.kind} ${JSON.stringify(request.name)}`);
    }
    if (req.op === "txn") {
      // Every key a transaction touches must be writable (reads in it readable).
      for (const list of [req.compare, req.success, req.failure]) {
        if (!Array.isArray(list)) continue;
        for (const item of list as { key?: unknown; op?: string }[]) {
          const key = typeof item?.key === "string" ? item.key : "";
          const access = item?.op === "range" || list === req.compare ? "read" : "write";
          if (!authorize(p.entry, { kind: "key", name: key, access })) {
            throw new ProtocolError("PERMISSION_DENIED", `token ${p.entry.name} may not ${access} key ${JSON.stringify(key)} (in txn)`);
          }
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Leader

  private async serveOnLeader(req: RequestFrame): Promise<unknown> {
    switch (req.op) {
      case "leaseKeepAlive": {
        const id = arg.int(req, "lease", { min: 1 });
        const ttl = this.node.keepAlive(id);
        if (ttl === undefined) throw new CommandFailure({ code: "LEASE_NOT_FOUND", message: `lease ${id} does not exist (it expired or was revoked)` });
        return { id, ttlMs: ttl };
      }
      case "leaseTimeToLive": {
        const id = arg.int(req, "lease", { min: 1 });
        await this.node.readBarrier();
        const info = this.node.sm.leaseTimeToLive(id);
        return { lease: info ? { ...info, remainingMs: Math.round(this.node.leaseRemainingMs(id) ?? info.ttlMs) } : null };
      }
      case "transferLeader":
        this.node.transferLeadership(this.requireMember(req, "to", "voter"));
        return { ok: true };
      case "memberAdd": {
        const id = this.requireMember(req, "member", "absent");
        const peerUrl = wsUrl(req, "peerUrl", false);
        const clientUrl = wsUrl(req, "clientUrl", true);
        const cs = await this.node.changeMembership({ changes: [{ kind: "addLearner", nodeId: id }] }, { id, peerUrl, clientUrl });
        return { confState: cs };
      }
      case "memberPromote":
        return { confState: await this.node.changeMembership({ changes: [{ kind: "addVoter", nodeId: this.requireMember(req, "member", "learner") }] }) };
      case "memberRemove":
        return { confState: await this.node.changeMembership({ changes: [{ kind: "removeNode", nodeId: this.requireMember(req, "member", "member") }] }) };
      default:
        return this.proposeWrite(req);
    }
  }

  /**
   * The member named by `req[field]`, checked against the current configuration: a typo must not add a phantom
   * voter (which would raise the quorum), silently "remove" nobody, or make a transfer fail as if retryable.
   */
  private requireMember(req: RequestFrame, field: string, want: "absent" | "member" | "learner" | "voter"): string {
    const id = arg.string(req, field);
    const cs = this.node.status().confState;
    const voters = new Set([...cs.voters, ...cs.votersOutgoing]);
    const learners = new Set([...cs.learners, ...cs.learnersNext]);
    const is = voters.has(id) ? "voter" : learners.has(id) ? "learner" : "absent";
    if (want === "absent" && is !== "absent") throw new ProtocolError("MEMBER_EXISTS", `${req.op}.${field}: ${id} is already a ${is}; pick a new member name`);
    if (want !== "absent" && is === "absent") {
      throw new ProtocolError("MEMBER_NOT_FOUND", `${req.op}.${field}: ${id} is not a member; members: ${[...voters, ...learners].join(", ")}`);
    }
    if ((want === "learner" || want === "voter") && is !== want) throw new ProtocolError("INVALID_ARGUMENT", `${req.op}.${field}: ${id} is a ${is}; expected a ${want}`);
    return id;
  }

  private async proposeWrite(req: RequestFrame): Promise<unknown> {
    const { id: _id, ...fields } = req;
    // A request's own `id` is the client's request id: lease ops name their lease `lease` on the wire.
    if (req.op === "leaseRevoke") {
      fields.id = fields.lease;
      delete fields.lease;
    }
    utf8Values(fields);
    if (req.op === "leaseGrant") fields.grantedAt = 0; // stamped by the leader in node.propose
    const cmd = validateCommand(fields, this.node.sm.extensionValidators());
    if (isCommandError(cmd)) throw new CommandFailure(cmd);
    if (READ_ONLY_OPS.has(cmd.op)) {
      await this.node.readBarrier();
      return this.readNow(cmd);
    }
    const outcome = await withTimeout(this.node.propose(cmd as Command), this.timeoutMs, req.op);
    if (!outcome.ok) throw new CommandFailure(outcome.error);
    return outcome.value;
  }

  private readNow(cmd: Command): unknown {
    switch (cmd.op) {
      case "leaseList":
        return { leases: this.node.sm.leases().map((l) => ({ id: l.id, ttlMs: l.ttlMs })) };
      case "leaseTimeToLive":
        return { lease: this.node.sm.leaseTimeToLive((cmd as { id: number }).id) };
      default: {
        const r = this.node.sm.range(cmd as unknown as RangeOp);
        if ("code" in r) throw new CommandFailure(r);
        return r;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Follower → leader

  private async forward(req: RequestFrame): Promise<unknown> {
    const url = this.node.leaderClientUrl();
    if (!url) {
      throw new ProposalError(this.node.leaderId === null ? "UNAVAILABLE" : "NOT_LEADER", this.node.leaderId === null ? "no leader is known yet; retry shortly" : `the leader ${this.node.leaderId} has no known client URL`);
    }
    if (!this.leaderLink || this.leaderLink.url !== url) {
      this.leaderLink?.socket.then((s) => s.close(), () => {});
      const socket = ClientSocket.connect(url, { hello: { forwardedBy: this.forwardProof }, connectTimeoutMs: 2000, ...(this.forwardTls ? { tls: this.forwardTls } : {}) });
      const link = { url, socket };
      this.leaderLink = link;
      socket.catch(() => {
        if (this.leaderLink === link) this.leaderLink = null;
      });
    }
    const sock = await this.leaderLink.socket;
    if (!sock.isOpen) {
      this.leaderLink = null;
      throw new ProposalError("UNAVAILABLE", "the connection to the leader was lost; retry");
    }
    const { id: _id, op, ...args } = req;
    return sock.request(op, args, this.timeoutMs);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Any member

  private async serveLocal(conn: ClientConnection, req: RequestFrame): Promise<unknown> {
    switch (req.op) {
      case "range": {
        const consistency = arg.oneOf(req, "consistency", ["linearizable", "serializable"] as const, "linearizable");
        if (consistency === "linearizable") await this.node.readBarrier();
        const { id: _id, consistency: _c, ...fields } = req;
        const r = this.node.sm.range(fields as unknown as RangeOp);
        if ("code" in r) throw new CommandFailure(r);
        return r;
      }
      case "watch":
        return this.watch(conn, req);
      case "unwatch":
        return { cancelled: this.cancelStream(conn, arg.int(req, "stream", { min: 1 })) };
      case "status":
        return this.node.status();
      case "members":
        return { members: this.node.status().members, leader: this.node.leaderId };
      case "lockStatus": {
        const name = arg.string(req, "name");
        await this.node.readBarrier();
        return this.node.coord.lockStatus(name);
      }
      case "leader": {
        const name = arg.string(req, "name");
        await this.node.readBarrier();
        return { leader: this.node.coord.electionLeader(name) };
      }
      case "observe":
        return this.observe(conn, req);
      case "snapshot":
        return this.snapshot(conn);
      case "unobserve":
        return { cancelled: this.cancelStream(conn, arg.int(req, "stream", { min: 1 })) };
      default:
        throw new ProtocolError("UNKNOWN_OP", `${req.op} is not served yet by this build`);
    }
  }

  private readonly streams = new WeakMap<ClientConnection, Map<number, () => void>>();

  private cancelStream(conn: ClientConnection, stream: number): boolean {
    const m = this.streams.get(conn);
    const stop = m?.get(stream);
    if (!stop) return false;
    stop();
    m!.delete(stream);
    return true;
  }

  /** Watch and observe streams open on this member (for /metrics). */
  get openStreams(): number {
    return this.liveStreams;
  }
  private liveStreams = 0;

  private addStream(conn: ClientConnection, stop: () => void): number {
    let m = this.streams.get(conn);
    if (!m) {
      m = new Map();
      this.streams.set(conn, m);
      const streams = m;
      conn.onClose(() => {
        for (const s of streams.values()) s();
        streams.clear();
      });
    }
    const id = this.nextStream++;
    this.liveStreams++;
    let stopped = false;
    m.set(id, () => {
      if (stopped) return;
      stopped = true;
      this.liveStreams--;
      stop();
    });
    return id;
  }

  /**
   * A watch: replay history from `fromRevision` (if given), then every matching event as it is applied here.
   * Replay and subscription happen in one synchronous step, so nothing falls between them. A consumer too slow
   * to keep up is cancelled with SLOW_CONSUMER (the client resumes from its last revision).
   */
  private watch(conn: ClientConnection, req: RequestFrame): unknown {
    const key = arg.string(req, "key", { allowEmpty: true });
    const prefix = arg.bool(req, "prefix");
    const fromRevision = arg.int(req, "fromRevision", { optional: true, min: 0, def: 0 });
    const matches = (ev: WatchEvent) => {
      const k = ev.type === "put" ? ev.kv.key : ev.key;
      return prefix ? k.startsWith(key) : k === key;
    };
    let backlog: WatchEvent[] = [];
    if (fromRevision > 0 && fromRevision <= this.node.sm.revision) {
      const r = this.node.sm.watchEventsSince(fromRevision, { key, prefix });
      if (!Array.isArray(r)) throw new CommandFailure(r);
      backlog = r;
    }
    let stream = 0;
    const out = new OrderedStream(conn, () => this.cancelStream(conn, stream), "watch cancelled: the client did not keep up; resume from the last revision received");
    const onApplied = (a: AppliedEvents) => {
      const events = a.events.filter((e): e is WatchEvent => (e.type === "put" || e.type === "delete") && matches(e));
      if (events.length > 0) out.send(stream, { events, revision: events[events.length - 1].revision });
    };
    // Installing a snapshot replaces the state machine wholesale: the stream cannot be continued exactly.
    const onSnapshot = () => {
      this.cancelStream(conn, stream);
      conn.push(stream, { error: { code: "COMPACTED", message: "watch cancelled: this member installed a snapshot; resume from the last revision received", compactRevision: this.node.sm.compactRevision } });
    };
    this.node.on("applied", onApplied);
    this.node.on("snapshot", onSnapshot);
    stream = this.addStream(conn, () => {
      this.node.off("applied", onApplied);
      this.node.off("snapshot", onSnapshot);
    });
    const first = backlog.length > 0 ? [{ events: backlog, revision: backlog[backlog.length - 1].revision }] : [];
    return { stream, revision: this.node.sm.revision, [AFTER_REPLY]: () => out.open(stream, first) };
  }

  /**
   * Every leadership change of an election, in order: the history still held from `fromToken` (a log index;
   * default: the current leader), then each change as it is applied here.
   */
  private async observe(conn: ClientConnection, req: RequestFrame): Promise<unknown> {
    const name = arg.string(req, "name");
    const from = arg.int(req, "fromToken", { optional: true, min: 0, def: 0 });
    await this.node.readBarrier();
    const coord = this.node.coord;
    let backlog: unknown[] = [];
    if (from > 0) {
      const h = coord.electionHistory(name, from);
      if (!Array.isArray(h)) throw new CommandFailure(h);
      backlog = h.map((c) => ({ kind: "leader", name, leader: c.leader, index: c.index, cause: c.cause }));
    } else {
      const l = coord.electionLeader(name);
      backlog = [{ kind: "leader", name, leader: l, index: l?.token ?? 0, cause: "current" }];
    }
    let stream = 0;
    const out = new OrderedStream(conn, () => this.cancelStream(conn, stream), "observe cancelled: the client did not keep up; resume with fromToken");
    const onApplied = (a: AppliedEvents) => {
      for (const ev of a.events) {
        if (ev.type !== "extension") continue;
        const e = ev.event as CoordinationEvent;
        if (e.kind === "leaderChanged" && e.election === name) out.send(stream, { kind: "leader", name, leader: e.leader, index: e.index, cause: e.cause });
      }
    };
    const onSnapshot = () => {
      this.cancelStream(conn, stream);
      conn.push(stream, { error: { code: "COMPACTED", message: "observe cancelled: this member installed a snapshot; resume with fromToken" } });
    };
    this.node.on("applied", onApplied);
    this.node.on("snapshot", onSnapshot);
    stream = this.addStream(conn, () => {
      this.node.off("applied", onApplied);
      this.node.off("snapshot", onSnapshot);
    });
    return { stream, [AFTER_REPLY]: () => out.open(stream, backlog) };
  }

  /**
   * Stream this member's state (as of a linearizable point) in 1 MiB chunks, then its index, term and hash.
   * A reader slower than the socket buffer pauses the stream rather than growing memory.
   */
  private async snapshot(conn: ClientConnection): Promise<unknown> {
    await this.node.readBarrier();
    const snap = this.node.exportSnapshot();
    const CHUNK = 1 << 20;
    const total = snap.data.byteLength;
    let offset = 0;
    let stream = 0;
    let closed = false;
    conn.onClose(() => (closed = true));
    const pump = (): void => {
      while (!closed && offset < total) {
        const data = snap.data.subarray(offset, Math.min(total, offset + CHUNK));
        if (!conn.push(stream, { kind: "snapshotChunk", offset, data, total })) {
          setTimeout(pump, 20);
          return;
        }
        offset += data.byteLength;
      }
      if (!closed) conn.push(stream, { kind: "snapshotEnd", index: snap.index, term: snap.term, hash: snap.hash, bytes: total });
    };
    stream = this.addStream(conn, () => (closed = true));
    this.log.info({ index: snap.index, bytes: total }, "streaming a snapshot to a client");
    return { stream, index: snap.index, bytes: total, [AFTER_REPLY]: pump };
  }

  close(): void {
    this.leaderLink?.socket.then((s) => s.close(), () => {});
    this.leaderLink = null;
  }
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

/** Values may be sent as strings (docs/protocol.md): store their UTF-8 bytes. Mutates `fields`. */
function utf8Values(fields: Record<string, unknown>): void {
  if (typeof fields.value === "string") fields.value = Buffer.from(fields.value);
  if (fields.op !== "txn") return;
  for (const list of [fields.success, fields.failure, fields.compare]) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (item && typeof item === "object" && typeof (item as { value?: unknown }).value === "string" && (item as { target?: string }).target !== "version") {
        const it = item as { value: unknown; target?: string };
        if (it.target === undefined || it.target === "value") it.value = Buffer.from(it.value as string);
      }
    }
  }
}

/**
 * Pushes of one stream in order: events applied before the reply went out are held, then sent after the
 * backlog. A consumer that cannot keep up is cancelled with SLOW_CONSUMER instead of growing memory.
 */
class OrderedStream {
  private held: unknown[] | null = [];
  constructor(
    private readonly conn: ClientConnection,
    private readonly cancel: () => void,
    private readonly slowMessage: string,
  ) {}

  send(stream: number, event: unknown): void {
    if (this.held) {
      this.held.push(event);
      return;
    }
    if (!this.conn.push(stream, event)) {
      this.cancel();
      this.conn.push(stream, { error: { code: "SLOW_CONSUMER", message: this.slowMessage } });
    }
  }

  open(stream: number, backlog: unknown[]): void {
    const held = this.held ?? [];
    this.held = null;
    for (const e of backlog) this.send(stream, e);
    for (const e of held) this.send(stream, e);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new ProposalError("TIMEOUT", `${what} was not applied within ${ms} ms; its outcome is unknown (retry with the same session seq)`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

