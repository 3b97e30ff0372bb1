// Membership changes asked for by a client (memberAdd, memberPromote, memberRemove, memberUpdate, transferLeader): every
// named member is checked against the current configuration first — a typo must not add a phantom voter (which
// would raise the quorum), silently "remove" nobody, or make a transfer fail as if retryable.

import type { ConfChange, ConfState } from "../raft/types.js";
import { ProtocolError, arg, type RequestFrame } from "../transport/protocol.js";
import { ProposalError } from "./proposals.js";
import type { Member, Replica } from "./replica.js";

/** The member named by `req[field]`, which must be absent from the configuration, in it, a learner or a voter. */
export function requireMember(replica: Replica, req: RequestFrame, field: string, want: "absent" | "member" | "learner" | "voter"): string {
  const id = arg.string(req, field);
  const cs = replica.status().confState;
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

export async function changeMembership(replica: Replica, cc: ConfChange, member?: Member): Promise<{ confState: ConfState }> {
  return { confState: await replica.changeMembership(cc, member) };
}

/**
 * A member's new URLs (as `etcdctl member update`): a conf change that keeps the member's role — addVoter for a
 * voter, addLearner for a learner, both no-ops for the configuration — carrying the new URLs in its context,
 * which every member applies in log order (Replica.onMembershipApplied re-points its link to the member). Voters
 * and quorum stay as they are; what changes is where the others dial the member, so until it listens at the new
 * peer URL (restart it with --peer-url) the others cannot reach it, as if it were down: move one member at a time.
 * Refused in a joint configuration (as any simple change) and for a peer URL another member has.
 */
export async function updateMember(replica: Replica, req: RequestFrame, peerUrl: string, clientUrl: string | undefined): Promise<{ confState: ConfState; member: Member }> {
  const id = requireMember(replica, req, "member", "member");
  const taken = [...replica.members.values()].find((m) => m.id !== id && m.peerUrl === peerUrl);
  if (taken) throw new ProtocolError("INVALID_ARGUMENT", `${req.op}.peerUrl: ${peerUrl} is the peer URL of ${taken.id}; each member needs its own`);
  const current = replica.members.get(id);
  const member: Member = { id, peerUrl, clientUrl: clientUrl ?? current?.clientUrl ?? "" };
  const voter = replica.status().confState.voters.includes(id);
  const cc: ConfChange = { changes: [{ kind: voter ? "addVoter" : "addLearner", nodeId: id }] };
  return { confState: await replica.changeMembership(cc, member), member };
}

/**
 * Hands leadership to the voter `to` (Raft's transfer: the leader catches it up, then sends TimeoutNow) and
 * resolves once this member sees `to` lead. The core abandons a transfer after an election timeout; TIMEOUT
 * after `timeoutMs` says it did not happen (the old leader, or another, leads).
 */
export function moveLeader(replica: Replica, to: string, timeoutMs: number): Promise<{ from: string; leader: string }> {
  const from = replica.id;
  replica.transferLeadership(to);
  if (replica.leaderId === to) return Promise.resolve({ from, leader: to });
  return new Promise((resolve, reject) => {
    const timer = replica.clock.setTimer(timeoutMs, () => {
      off();
      reject(new ProposalError("TIMEOUT", `leadership did not move to ${to} within ${timeoutMs} ms (the leader is ${replica.leaderId ?? "unknown"}); retry`));
    });
    const off = replica.roleChanged.add((s) => {
      if (s.leader !== to) return;
      timer.cancel();
      off();
      resolve({ from, leader: to });
    });
  });
}
