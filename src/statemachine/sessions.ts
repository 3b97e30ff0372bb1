// Client sessions for exactly-once writes (Raft thesis §6.3). A session is opened by registerClient, bound to a
// lease, and ends with the lease. Each write carries (clientId, seq, lowestUnacked); the outcome of every seq
// >= lowestUnacked is kept, so a retry — duplicated, reordered or pipelined — returns the recorded outcome
// instead of applying again.
//
// Invariants: a session holds only outcomes with seq >= its lowestUnacked; lowestUnacked never decreases
// (a reordered request carrying an older lowestUnacked does not resurrect forgotten seqs); at most
// maxSessionResponses outcomes are held.

import { assert } from "../assert.js";
import type { Outcome, SessionTag } from "./commands.js";
import { commandError, type CommandError } from "./errors.js";

export interface Session {
  readonly clientId: number;
  readonly lease: number;
  lowestUnacked: number;
  readonly responses: Map<number, Outcome>;
}

export type SessionDecision =
  { kind: "apply"; session: Session } | { kind: "replay"; outcome: Outcome } | { kind: "reject"; error: CommandError };

export class SessionTable {
  private readonly sessions = new Map<number, Session>();

  constructor(private readonly maxResponses: number) {}

  get size(): number {
    return this.sessions.size;
  }

  open(clientId: number, lease: number): Session {
    assert(!this.sessions.has(clientId), () => `client ${clientId} registered twice`);
    const session: Session = { clientId, lease, lowestUnacked: 1, responses: new Map() };
    this.sessions.set(clientId, session);
    return session;
  }

  /** Restores a session from a snapshot; responses must be in seq order. */
  restore(session: Session): void {
    assert(!this.sessions.has(session.clientId), () => `client ${session.clientId} restored twice`);
    this.sessions.set(session.clientId, session);
  }

  close(clientId: number): void {
    this.sessions.delete(clientId);
  }

  /** Decides whether a tagged command is applied, answered from the record, or refused. */
  admit(tag: SessionTag): SessionDecision {
    const session = this.sessions.get(tag.clientId);
    if (session === undefined) {
      return {
        kind: "reject",
        error: commandError(
          "SESSION_EXPIRED",
          `no session for client ${tag.clientId}: it ended with its lease or was never registered; register again`,
        ),
      };
    }
    if (tag.lowestUnacked > session.lowestUnacked) {
      session.lowestUnacked = tag.lowestUnacked;
      for (const seq of session.responses.keys()) if (seq < tag.lowestUnacked) session.responses.delete(seq);
    }
    const recorded = session.responses.get(tag.seq);
    if (recorded !== undefined) return { kind: "replay", outcome: recorded };
    if (tag.seq < session.lowestUnacked) {
      return {
        kind: "reject",
        error: commandError(
          "STALE_SEQ",
          `seq ${tag.seq} of client ${tag.clientId} is below lowestUnacked ${session.lowestUnacked}: it was acknowledged and its response forgotten`,
        ),
      };
    }
    if (session.responses.size >= this.maxResponses) {
      return {
        kind: "reject",
        error: commandError(
          "SESSION_BUSY",
          `client ${tag.clientId} holds ${session.responses.size} unacknowledged responses (limit ${this.maxResponses}); raise lowestUnacked`,
        ),
      };
    }
    return { kind: "apply", session };
  }

  record(session: Session, seq: number, outcome: Outcome): void {
    assert(seq >= session.lowestUnacked, "session: recording a seq below lowestUnacked");
    assert(!session.responses.has(seq), "session: seq recorded twice");
    session.responses.set(seq, outcome);
  }

  /** Every session in client id order, responses in seq order (the snapshot's stable order). */
  list(): Session[] {
    return [...this.sessions.values()].sort((a, b) => a.clientId - b.clientId);
  }
}
