// What a client request means on this member: the op registry (ops.ts) says who may send it and where it is
// served — here, on the leader (a follower forwards it: forwarding.ts), or proposed on the leader and answered
// here once granted (locks, campaigns: coordination-streams.ts). Writes are proposed and answered once applied;
// linearizable reads wait for a ReadIndex barrier and read local state, so followers serve reads too.

import { ConfChangeError } from "../raft/confchange.js";
import { NotLeaderError, ProposalDroppedError } from "../raft/errors.js";
import { isCommandError, validateCommand, type Command, type RangeOp } from "../statemachine/commands.js";
import { RequestError } from "../transport/request-error.js";
import { ProtocolError, arg, type HelloFrame, type RequestFrame, type WireError } from "../transport/protocol.js";
import type { Principal } from "./auth.js";
import { AuthService } from "./auth-service.js";
import { CoordinationStreams } from "./coordination-streams.js";
import { CommandFailure } from "./errors.js";
import { LeaderForwarder } from "./forwarding.js";
import type { ClientConnection, GatewayHandler } from "./gateway.js";
import type { HostConfig } from "./host-config.js";
import { OPS, isOp, type Op } from "./ops.js";
import { ProposalError } from "./proposals.js";
import type { Replica } from "./replica.js";
import { Streams } from "./streams.js";
import type { HostLogger, World } from "./world.js";

export class ClientService implements GatewayHandler {
  readonly streams: Streams;
  readonly coordination: CoordinationStreams;
  readonly auth: AuthService;
  private readonly forwarder: LeaderForwarder;

  constructor(
    readonly replica: Replica,
    private readonly config: HostConfig,
    world: Pick<World, "dialLeader" | "authCrypto">,
    private readonly log: HostLogger,
  ) {
    this.auth = new AuthService(replica, config, world.authCrypto);
    this.streams = new Streams(replica, log, (conn, needs) => this.auth.refusal(conn, needs));
    this.coordination = new CoordinationStreams(replica, this.streams);
    this.forwarder = new LeaderForwarder(replica, world.dialLeader, config.requestTimeoutMs);
  }

  hello(_conn: ClientConnection, hello: HelloFrame) {
    return {
      principal: this.auth.hello(hello),
      welcome: { node: this.replica.id, clusterId: this.config.clusterId, leader: this.replica.leaderClientUrl() },
    };
  }

  metricOp(op: string): string {
    return isOp(op) ? op : "unknown";
  }

  handle(conn: ClientConnection, req: RequestFrame): Promise<unknown> | unknown {
    if (!isOp(req.op)) {
      throw new ProtocolError("UNKNOWN_OP", `unknown op ${JSON.stringify(req.op).slice(0, 60)}; accepted: ${Object.keys(OPS).join(", ")}`);
    }
    const op: Op = OPS[req.op];
    const principal = conn.principal as Principal;
    this.auth.admit(principal, req, op);
    const answer = this.route(op, conn, principal, req);
    if (!op.reveals) return answer;
    return Promise.resolve(answer).then((result) => {
      this.auth.admitAnswer(principal, op.reveals!(result));
      return result;
    });
  }

  private route(op: Op, conn: ClientConnection, principal: Principal, req: RequestFrame): Promise<unknown> | unknown {
    switch (op.route) {
      case "local":
        return op.serve(this, conn, req);
      case "leader":
        return this.onLeader(req);
      case "wait":
        // Waiting and pushes belong to the member the client is connected to; a forwarded request only proposes.
        return principal.kind === "internal" ? this.onLeader(req) : op.serve(this, conn, req);
    }
  }

  /** Serves a leader op here when this member leads, or forwards it to the leader. */
  onLeader(req: RequestFrame): Promise<unknown> {
    if (!this.replica.isLeader) return this.forwarder.forward(req);
    const op = OPS[req.op as keyof typeof OPS] as Op;
    return Promise.resolve(op.route === "wait" ? op.propose(this, req) : op.serve(this, undefined, req));
  }

  /** Validates `fields` as a state-machine command and proposes it; resolves with its result once applied. */
  async proposeCommand(fields: Record<string, unknown>): Promise<unknown> {
    utf8Values(fields);
    const cmd = validateCommand(fields, this.replica.sm.extensionValidators());
    if (isCommandError(cmd)) throw new CommandFailure(cmd);
    const outcome = await this.replica.propose(cmd as Command, true);
    if (!outcome.ok) throw new CommandFailure(outcome.error);
    return outcome.value;
  }

  /** A range of local state: after a ReadIndex barrier unless `consistency: "serializable"`. */
  async range(req: RequestFrame, conn?: ClientConnection): Promise<unknown> {
    const consistency = arg.oneOf(req, "consistency", ["linearizable", "serializable"] as const, "linearizable");
    if (consistency === "linearizable") {
      await this.replica.readBarrier();
      // Checked again as of the read point: a revocation acknowledged before this read is applied here by now.
      if (conn) this.auth.admit(conn.principal as Principal, req, OPS.range);
    }
    const { id: _id, consistency: _c, actor: _a, ...fields } = req;
    const r = this.replica.sm.range(fields as unknown as RangeOp);
    if ("code" in r) throw new CommandFailure(r);
    return r;
  }

  toWireError(e: unknown): WireError {
    if (e instanceof CommandFailure) return { ...e.error } as WireError;
    if (e instanceof ProtocolError) return { code: e.code, message: e.message };
    if (e instanceof ConfChangeError) return { code: e.code, message: e.message };
    // The core's own errors, should one reach here untranslated: both are retryable.
    if (e instanceof NotLeaderError) return { code: e.leaderId === null ? "UNAVAILABLE" : "NOT_LEADER", message: e.message };
    if (e instanceof ProposalDroppedError) return { code: "UNAVAILABLE", message: e.message };
    if (e instanceof ProposalError) {
      const leader = this.replica.leaderClientUrl();
      return leader && e.code === "NOT_LEADER" ? { code: e.code, message: e.message, leader } : { code: e.code, message: e.message };
    }
    if (e instanceof RequestError) return e.toWire();
    this.log.error({ err: e }, "unexpected error serving a request");
    return { code: "INTERNAL", message: `internal error: ${(e as Error)?.message ?? String(e)}` };
  }

  close(): void {
    this.forwarder.close();
  }
}

const utf8 = new TextEncoder();

/** Values may be sent as strings (docs/protocol.md): store their UTF-8 bytes. Mutates `fields`. */
function utf8Values(fields: Record<string, unknown>): void {
  if (typeof fields.value === "string") fields.value = utf8.encode(fields.value);
  if (fields.op !== "txn") return;
  for (const list of [fields.success, fields.failure, fields.compare]) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (item && typeof item === "object" && typeof (item as { value?: unknown }).value === "string" && (item as { target?: string }).target !== "version") {
        const it = item as { value: unknown; target?: string };
        if (it.target === undefined || it.target === "value") it.value = utf8.encode(it.value as string);
      }
    }
  }
}
