// The leader changes one member has seen since it started, newest last, for the dashboard: each with the term it
// saw the change in and the wall-clock time. A member that was down saw nothing meanwhile; the page shows every
// member's own list side by side rather than pretending to a cluster-wide history.

export interface LeaderChange {
  term: number;
  /** The new leader; null when the member lost track of any leader (an election is under way). */
  leader: string | null;
  /** Wall-clock milliseconds (Date.now) when this member saw it. */
  at: number;
}

/** Changes kept; the oldest are dropped first. */
export const LEADER_HISTORY_LENGTH = 50;

export class LeaderHistory {
  private readonly changes: LeaderChange[] = [];

  /** Records `leader` unless it is the leader last recorded (role changes without a new leader are not changes). */
  observe(term: number, leader: string | null, at: number): void {
    const last = this.changes.at(-1);
    if (last !== undefined && last.leader === leader) return;
    this.changes.push({ term, leader, at });
    if (this.changes.length > LEADER_HISTORY_LENGTH) this.changes.shift();
  }

  list(): readonly LeaderChange[] {
    return this.changes;
  }
}
