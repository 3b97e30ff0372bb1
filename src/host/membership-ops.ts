// Membership changes asked for by a client (memberAdd, memberPromote, memberRemove, transferLeader): every
// named member is checked against the current configuration first — a typo must not add a phantom voter (which
// would raise the quorum), silently "remove" nobody, or make a transfer fail as if retryable.

import type { ConfChange, ConfState } from "../raft/types.js";
import { ProtocolError, arg, type RequestFrame } from "../transport/protocol.js";
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
