// Automatic compaction of the watch history, as etcd's --auto-compaction-mode/--auto-compaction-retention: the
// leader proposes `compact` commands, so every member forgets the same revisions at the same log index.
//
// The state machine already bounds the history (limits.historyRevisions / historyMaxEvents) whatever this policy
// says; a policy only keeps less — fewer revisions readable and resumable, less space held by superseded values.
//
// - revision mode, retention N: keep the last N revisions. Proposed once the history holds N/10 revisions beyond
//   them (at most one proposal a second), so a busy cluster compacts in steps instead of at every write.
// - periodic mode, retention T: keep what was written in the last T. The leader samples its revision every T/10
//   and compacts to the newest sample at least T old. Samples live on the leader's monotonic clock only: a new
//   leader starts sampling afresh, so its first compaction comes T after its election (as in etcd).

export type AutoCompaction = { mode: "revision"; retention: number } | { mode: "periodic"; retentionMs: number };

/** How the policy reads in flags, logs and status: "revision:1000", "periodic:3600000ms". */
export function describeAutoCompaction(p: AutoCompaction): string {
  return p.mode === "revision" ? `revision:${p.retention}` : `periodic:${p.retentionMs}ms`;
}

const MIN_PROPOSAL_GAP_MS = 1000;

export class AutoCompactor {
  /** (time, revision) samples, oldest first; periodic mode only. */
  private samples: { at: number; revision: number }[] = [];
  private lastProposalAt = -Infinity;

  constructor(readonly policy: AutoCompaction) {}

  /** On becoming leader: samples of an earlier term say nothing about this one's clock. */
  restart(): void {
    this.samples = [];
    this.lastProposalAt = -Infinity;
  }

  /** Called every tick while leading: the revision to compact to now, or undefined. */
  due(now: number, revision: number, compactRevision: number): number | undefined {
    if (now - this.lastProposalAt < MIN_PROPOSAL_GAP_MS) return undefined;
    const target =
      this.policy.mode === "revision" ? this.byRevision(revision, compactRevision) : this.byTime(now, revision);
    if (target === undefined || target <= compactRevision) return undefined;
    this.lastProposalAt = now;
    return target;
  }

  private byRevision(revision: number, compactRevision: number): number | undefined {
    const { retention } = this.policy as { retention: number };
    const target = revision - retention;
    return target - compactRevision >= Math.max(1, Math.floor(retention / 10)) ? target : undefined;
  }

  private byTime(now: number, revision: number): number | undefined {
    const { retentionMs } = this.policy as { retentionMs: number };
    const last = this.samples[this.samples.length - 1];
    if (last === undefined || now - last.at >= retentionMs / 10) this.samples.push({ at: now, revision });
    let target: number | undefined;
    while (this.samples.length > 0 && now - this.samples[0].at >= retentionMs) target = this.samples.shift()!.revision;
    return target;
  }
}
