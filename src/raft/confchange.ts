import type { JointConfig } from "./quorum.js";
import type { ConfChange, ConfChangeSingle, ConfState, NodeId } from "./types.js";

// Membership changes (Raft thesis ch. 4). A change of one voter at a time is applied directly; anything more
// goes through joint consensus: enter a joint configuration (old ∧ new majorities), then leave it.
// These functions are pure: they take a configuration and return a new one, or throw ConfChangeError.

export interface MembershipConfig {
  voters: JointConfig;
  learners: Set<NodeId>;
  /** Voters of the outgoing config that become learners when the joint config is left. */
  learnersNext: Set<NodeId>;
  /** Leave the joint config automatically once it is committed. */
  autoLeave: boolean;
}

export class ConfChangeError extends Error {
  readonly code = "INVALID_CONF_CHANGE";
  constructor(message: string) {
    super(`invalid membership change: ${message}`);
    this.name = "ConfChangeError";
  }
}

export const isJoint = (c: MembershipConfig): boolean => c.voters.outgoing.size > 0;

/** Whether `cc` must go through joint consensus. */
export function needsJoint(cc: ConfChange): boolean {
  if (cc.transition === "joint" || cc.transition === "explicit") return true;
  return cc.changes.length > 1;
}

export const isLeaveJoint = (cc: ConfChange): boolean => cc.changes.length === 0;

export function configFromConfState(cs: ConfState): MembershipConfig {
  return {
    voters: { incoming: new Set(cs.voters), outgoing: new Set(cs.votersOutgoing) },
    learners: new Set(cs.learners),
    learnersNext: new Set(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
}

export function confStateFromConfig(c: MembershipConfig): ConfState {
  const sorted = (s: Set<NodeId>) => [...s].sort();
  return {
    voters: sorted(c.voters.incoming),
    learners: sorted(c.learners),
    votersOutgoing: sorted(c.voters.outgoing),
    learnersNext: sorted(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

function clone(c: MembershipConfig): MembershipConfig {
  return {
    voters: { incoming: new Set(c.voters.incoming), outgoing: new Set(c.voters.outgoing) },
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

/** Apply one change that alters at most one voter, outside joint consensus. */
export function applySimple(cfg: MembershipConfig, changes: ConfChangeSingle[]): MembershipConfig {
  if (isJoint(cfg)) throw new ConfChangeError("a simple change cannot be applied while in a joint configuration");
  const next = clone(cfg);
  applyChanges(next, changes);
  let changed = 0;
  for (const id of cfg.voters.incoming) if (!next.voters.incoming.has(id)) changed++;
  for (const id of next.voters.incoming) if (!cfg.voters.incoming.has(id)) changed++;
  if (changed > 1) throw new ConfChangeError("more than one voter changed without joint consensus");
  return next;
}

/** Enter a joint configuration: the current voters become the outgoing half, the changes build the incoming. */
export function enterJoint(cfg: MembershipConfig, autoLeave: boolean, changes: ConfChangeSingle[]): MembershipConfig {
  if (isJoint(cfg)) throw new ConfChangeError("already in a joint configuration");
  if (cfg.voters.incoming.size === 0) throw new ConfChangeError("cannot enter a joint configuration with no voters");
  const next = clone(cfg);
  next.voters.outgoing = new Set(cfg.voters.incoming);
  applyChanges(next, changes);
  next.autoLeave = autoLeave;
  return next;
}

/** Leave the joint configuration: drop the outgoing half; demoted voters become learners. */
export function leaveJoint(cfg: MembershipConfig): MembershipConfig {
  if (!isJoint(cfg)) throw new ConfChangeError("not in a joint configuration");
  const next = clone(cfg);
  for (const id of next.learnersNext) next.learners.add(id);
  next.learnersNext.clear();
  next.voters.outgoing.clear();
  next.autoLeave = false;
  return next;
}

/** The configuration `cc` leads to from `cfg`. */
export function applyConfChangeTo(cfg: MembershipConfig, cc: ConfChange): MembershipConfig {
  if (isLeaveJoint(cc)) return leaveJoint(cfg);
  if (needsJoint(cc)) return enterJoint(cfg, cc.transition !== "explicit", cc.changes);
  return applySimple(cfg, cc.changes);
}

function applyChanges(cfg: MembershipConfig, changes: ConfChangeSingle[]): void {
  for (const cc of changes) {
    if (typeof cc.nodeId !== "string" || cc.nodeId === "") throw new ConfChangeError("a change needs a non-empty nodeId");
    switch (cc.kind) {
      case "addVoter":
        cfg.learners.delete(cc.nodeId);
        cfg.learnersNext.delete(cc.nodeId);
        cfg.voters.incoming.add(cc.nodeId);
        break;
      case "addLearner":
        if (cfg.learners.has(cc.nodeId)) break;
        cfg.voters.incoming.delete(cc.nodeId);
        // A voter of the outgoing config keeps voting there until the joint config is left.
        if (cfg.voters.outgoing.has(cc.nodeId)) cfg.learnersNext.add(cc.nodeId);
        else cfg.learners.add(cc.nodeId);
        break;
      case "removeNode":
        cfg.voters.incoming.delete(cc.nodeId);
        cfg.learners.delete(cc.nodeId);
        cfg.learnersNext.delete(cc.nodeId);
        break;
      default:
        throw new ConfChangeError(`unknown kind ${JSON.stringify((cc as { kind: unknown }).kind)}; accepted: addVoter, addLearner, removeNode`);
    }
  }
  if (cfg.voters.incoming.size === 0) throw new ConfChangeError("removed all voters");
}

// ConfChange entries are encoded as JSON: they are rare, and JSON keeps the core free of codec dependencies.
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return textEncoder.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let v: unknown;
  try {
    v = JSON.parse(textDecoder.decode(data));
  } catch {
    throw new ConfChangeError("entry data is not a JSON-encoded ConfChange");
  }
  const cc = v as ConfChange;
  if (typeof v !== "object" || v === null || !Array.isArray(cc.changes)) {
    throw new ConfChangeError("expected an object with a `changes` array");
  }
  return cc;
}
