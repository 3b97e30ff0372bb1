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

/**
 * Due after `snapshotEntries` entries once the log since the last snapshot is at least as large as that
 * snapshot (Raft thesis §5.1.3: then snapshotting costs no more than logging, however large the state grows),
 * or after `snapshotBytes` of log regardless.
 */
export function snapshotDue(p: SnapshotProgress, t: SnapshotThresholds): boolean {
  if (p.appliedIndex <= p.lastSnapshotIndex) return false;
  return (p.appliedIndex - p.lastSnapshotIndex >= t.snapshotEntries && p.appliedBytes >= p.lastSnapshotBytes) || p.appliedBytes >= t.snapshotBytes;
}
