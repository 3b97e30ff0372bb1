// When the replica snapshots its state machine (and so compacts its log).

export interface SnapshotProgress {
  appliedIndex: number;
  lastSnapshotIndex: number;
  /** Bytes of commands applied since the last snapshot. */
  appliedBytes: number;
  /** Size of the last snapshot taken or installed. */
  lastSnapshotBytes: number;
}

export interface SnapshotThresholds {
  snapshotEntries: number;
  snapshotBytes: number;
}

/** This member's place among the cluster's members, in the order of their ids: whose turn it is to snapshot. */
export interface SnapshotTurn {
  rank: number;
  members: number;
}

/**
 * Due after `snapshotEntries` entries once the log since the last snapshot is at least as large as that
 * snapshot (Raft thesis §5.1.3: then snapshotting costs no more than logging, however large the state grows),
 * or after `snapshotBytes` of log regardless — and then only in this member's turn.
 *
 * Turns: the log is cut into spans of `snapshotEntries` indexes, dealt to the members in turn (span i to the
 * member of rank i mod members), and a member starts a snapshot only while its applied index is in one of its
 * own spans. Every member applies the same entries and would otherwise find a snapshot due at the same index: all
 * of them would take one at once, and at a million keys that is seconds of work on each (and, where they share
 * cores, on the same cores), while a write needs the leader and one follower. With turns, the others keep the
 * quorum going while one snapshots. A member waits at most (members − 1) spans past the point it was due.
 */
export function snapshotDue(p: SnapshotProgress, t: SnapshotThresholds, turn: SnapshotTurn = { rank: 0, members: 1 }): boolean {
  if (p.appliedIndex <= p.lastSnapshotIndex) return false;
  const due = (p.appliedIndex - p.lastSnapshotIndex >= t.snapshotEntries && p.appliedBytes >= p.lastSnapshotBytes) || p.appliedBytes >= t.snapshotBytes;
  return due && (turn.members <= 1 || Math.floor(p.appliedIndex / t.snapshotEntries) % turn.members === turn.rank);
}
