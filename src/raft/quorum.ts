import type { NodeId } from "./types.js";

// Majority and joint-majority arithmetic. A joint configuration (incoming, outgoing) needs a majority of
// BOTH halves for every decision (Raft thesis §4.3); outside joint consensus `outgoing` is empty, and an empty
// majority config agrees with anything, so the same code serves both cases.

export type VoteResult = "pending" | "lost" | "won";

/** The highest index that a majority of `voters` has acknowledged; Infinity for an empty config. */
export function majorityCommitted(voters: ReadonlySet<NodeId>, ackedIndex: (id: NodeId) => number): number {
  const n = voters.size;
  if (n === 0) return Infinity;
  if (n === 1) for (const id of voters) return ackedIndex(id);
  const acked: number[] = [];
  for (const id of voters) acked.push(ackedIndex(id));
  acked.sort((a, b) => b - a);
  // With acked sorted descending, the first q = n/2+1 voters have acked at least acked[q-1].
  return acked[(n >> 1)];
}

/** Outcome of an election in one majority config, given the votes received so far (true = granted). */
export function majorityVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return "won";
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = (voters.size >> 1) + 1;
  if (granted >= q) return "won";
  if (granted + missing >= q) return "pending";
  return "lost";
}

export interface JointConfig {
  incoming: Set<NodeId>;
  /** Non-empty only while in a joint configuration. */
  outgoing: Set<NodeId>;
}

export function jointCommitted(c: JointConfig, ackedIndex: (id: NodeId) => number): number {
  return Math.min(majorityCommitted(c.incoming, ackedIndex), majorityCommitted(c.outgoing, ackedIndex));
}

export function jointVoteResult(c: JointConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVoteResult(c.incoming, votes);
  const b = majorityVoteResult(c.outgoing, votes);
  if (a === b) return a;
  if (a === "lost" || b === "lost") return "lost";
  return "pending"; // one won, the other pending
}

/** Every voter of a joint config, each once. */
export function jointVoterIds(c: JointConfig): NodeId[] {
  const ids = [...c.incoming];
  for (const id of c.outgoing) if (!c.incoming.has(id)) ids.push(id);
  return ids;
}
