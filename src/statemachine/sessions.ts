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
import { dataBytes, SESSION_OVERHEAD } from "./space.js";

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
  /** Space the sessions and their recorded outcomes take (space.ts). */
  private sessionsBytes = 0;

  constructor(private readonly maxResponses: number) {}

  get size(): number {
    return this.sessions.size;
  }

  get bytes(): number {
    return this.sessionsBytes;
  }

  open(clientId: number, lease: number): Session {
    assert(!this.sessions.has(clientId), () => `client ${clientId} registered twice`);
    const session: Session = { clientId, lease, lowestUnacked: 1, responses: new Map() };
    this.sessions.set(clientId, session);
    this.sessionsBytes += SESSION_OVERHEAD;
    return session;
  }

  /** Restores a session from a snapshot; responses must be in seq order. */
  restore(session: Session): void {
    assert(!this.sessions.has(session.clientId), () => `client ${session.clientId} restored twice`);
    this.sessions.set(session.clientId, session);
    this.sessionsBytes += sessionBytes(session);
  }

  close(clientId: number): void {
    const session = this.sessions.get(clientId);
    if (session === undefined) return;
    this.sessions.delete(clientId);
    this.sessionsBytes -= sessionBytes(session);
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
      // forEach, not for-of over entries: no [seq, outcome] pair per held outcome on every advancing request.
      session.responses.forEach((outcome, seq) => {
        if (seq >= tag.lowestUnacked) return;
        session.responses.delete(seq);
        this.sessionsBytes -= dataBytes(outcome);
      });
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

  /** Keeps `outcome` for retries of `seq` — unless the command ended the session itself (its lease's revocation). */
  record(session: Session, seq: number, outcome: Outcome): void {
    if (this.sessions.get(session.clientId) !== session) return;
    assert(seq >= session.lowestUnacked, "session: recording a seq below lowestUnacked");
    assert(!session.responses.has(seq), "session: seq recorded twice");
    session.responses.set(seq, outcome);
    this.sessionsBytes += dataBytes(outcome);
  }

  /** Every session in client id order, responses in seq order (the snapshot's stable order). */
  list(): Session[] {
    return [...this.sessions.values()].sort((a, b) => a.clientId - b.clientId);
  }
}

function sessionBytes(session: Session): number {
  let n = SESSION_OVERHEAD;
  for (const outcome of session.responses.values()) n += dataBytes(outcome);
  return n;
}
