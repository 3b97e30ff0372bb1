// A restore taken a run at a time, the counterpart of snapshot-job.ts: rebuilding a million keys from a snapshot
// is two seconds of work, and a member doing it in one go (a follower installing the leader's snapshot, a member
// starting) stops its event loop for as long. The caller calls step(budget) once per event-loop turn until it
// returns true; the state machine being rebuilt is not used meanwhile (the replica keeps serving from the one it
// replaces), and the last step installs everything into it at once. No clock here: the caller schedules the steps.
//
// The records go straight into a new store's columns as they are read (KvStore.loader), making no object per
// record; the small parts of the state (leases, sessions, the watch history, extension sections) were read with
// the snapshot's meta part when the job was made and are installed by the last step.

import { KvStore, type RecordSink } from "./kv.js";
import type { SnapshotParser, SnapshotState } from "./snapshot.js";

/** What a restore read, handed to the state machine by the job's last step. */
export interface RestoredState {
  state: Omit<SnapshotState, "kvs">;
  kv: KvStore;
  /** The keys with a lease, in key order, and each one's lease: attached once the leases are granted. */
  leasedKeys: string[];
  leaseOfKey: number[];
}

export class RestoreJob implements RecordSink {
  private readonly loader = KvStore.loader();
  private readonly leasedKeys: string[] = [];
  private readonly leaseOfKey: number[] = [];
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
    if (!this.parser.step(budget, this)) return false;
    this.installed = true;
    this.install({
      state: this.parser.state,
      kv: this.loader.finish(),
      leasedKeys: this.leasedKeys,
      leaseOfKey: this.leaseOfKey,
    });
    return true;
  }

  writeRecord(
    key: string,
    bytes: Uint8Array,
    start: number,
    length: number,
    createRevision: number,
    modRevision: number,
    version: number,
    lease: number,
  ): void {
    this.loader.writeRecord(key, bytes, start, length, createRevision, modRevision, version, lease);
    if (lease !== 0) {
      this.leasedKeys.push(key);
      this.leaseOfKey.push(lease);
    }
  }
}
