// A restore taken a run at a time, the counterpart of snapshot-job.ts: rebuilding a million keys from a snapshot
// is two seconds of work, and a member doing it in one go (a follower installing the leader's snapshot, a member
// starting) stops its event loop for as long. The caller calls step(budget) once per event-loop turn until it
// returns true; the state machine being rebuilt is not used meanwhile (the replica keeps serving from the one it
// replaces), and the last step installs everything into it at once. No clock here: the caller schedules the steps.
//
// The records go straight into a new store's columns as they are read (KvStore.loader), making no object per
// record; the small parts of the state (leases, sessions, the watch history, extension sections) were read with
// the snapshot's meta part when the job was made and are installed by the last step.

import { KvStore, type LoadedStore } from "./kv.js";
import type { SnapshotParser, SnapshotState } from "./snapshot.js";

/** What a restore read, handed to the state machine by the job's last step. */
export interface RestoredState extends LoadedStore {
  state: Omit<SnapshotState, "kvs">;
}

export class RestoreJob {
  private readonly loader = KvStore.loader();
  private installed = false;

  constructor(
    private readonly parser: SnapshotParser,
    /** Puts the restored state in place (StateMachine.beginRestore says where). */
    private readonly install: (restored: RestoredState) => void,
  ) {}

  /**
   * Reads about `budget` bytes of records (at least one while any is left); true once every record was read and
   * the state installed. Throws SnapshotFormatError on malformed bytes; the state machine is then left as it was.
   */
  step(budget: number): boolean {
    if (this.installed) return true;
    if (!this.parser.step(budget, this.loader)) return false;
    this.installed = true;
    this.install({ state: this.parser.state, ...this.loader.finish() });
    return true;
  }
}
