// When the replica snapshots its state machine (and so compacts its log).

export interface SnapshotProgress {
  appliedIndex: number;
  lastSnapshotIndex: number;
  /** Bytes of commands applied since the last snapshot. */
  appliedBytes: number;
  /** Size of the last snapshot taken or installed. */
  lastSnapshotBytes: number;
  /**
   * The applied index at this member's last look that found no snapshot due: its turn is counted over the indexes
   * applied since, so a member that applies past the whole of one of its spans in one batch still takes its turn.
   */
  lookedAtIndex: number;
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
 * member of rank i mod members), and a member starts a snapshot only once it has applied an index in one of its
 * own spans since it was due. Every member applies the same entries and would otherwise find a snapshot due at the
 * same index: all of them would take one at once, and at a million keys that is seconds of work on each (and,
 * where they share cores, on the same cores), while a write needs the leader and one follower. With turns, the
 * others keep the quorum going while one snapshots. A member waits at most (members − 1) spans past the point it
 * was due.
 *
 * The indexes counted are those applied since the last look (`lookedAtIndex`), not only the applied index: a
 * batch of committed entries (up to 1,024) can jump over a whole span when spans are short, and a member that
 * looked only at where it landed would miss that turn. By the entries rule, indexes before the member was due
 * (its last snapshot + `snapshotEntries`) do not count either: a member that became due in a batch crossing the
 * end of its own span would otherwise start in the next member's span, as that member does.
 */
export function snapshotDue(p: SnapshotProgress, t: SnapshotThresholds, turn: SnapshotTurn = { rank: 0, members: 1 }): boolean {
  if (p.appliedIndex <= p.lastSnapshotIndex) return false;
  const byBytes = p.appliedBytes >= t.snapshotBytes;
  const byEntries = p.appliedIndex - p.lastSnapshotIndex >= t.snapshotEntries && p.appliedBytes >= p.lastSnapshotBytes;
  if (!byBytes && !byEntries) return false;
  if (turn.members <= 1) return true;
  const countedAfter = byBytes ? p.lookedAtIndex : Math.max(p.lookedAtIndex, p.lastSnapshotIndex + t.snapshotEntries - 1);
  return meetsOwnSpan(countedAfter + 1, p.appliedIndex, t.snapshotEntries, turn);
}

/** Whether the indexes first..last include one of the member's spans. */
function meetsOwnSpan(first: number, last: number, spanEntries: number, turn: SnapshotTurn): boolean {
  const firstSpan = Math.floor(first / spanEntries);
  const lastSpan = Math.floor(last / spanEntries);
  if (lastSpan - firstSpan + 1 >= turn.members) return true;
  for (let span = firstSpan; span <= lastSpan; span++) if (span % turn.members === turn.rank) return true;
  return false;
}
