// A snapshot taken a run at a time, so that a member with millions of keys never stops its event loop for the
// second or two a whole snapshot takes: the caller calls step(budget) once per event-loop turn until it returns
// true, and applies entries in between as usual. No clock here: the caller (the replica) schedules the steps.
//
// The bytes are exactly those of the state at the moment the job began (StateMachine.beginSnapshot), whatever is
// applied between steps: the meta part (everything but the keys) is gathered at the start and packed first, the
// watch history's events a run at a time (SnapshotMetaPacker says why that is exact); the records are captured as
// they were at the start (record-capture.ts says why that is exact) and written in key order. The output is handed
// over in pieces as they fill (SnapshotWriter), so the caller can write them out and drop them: the job never
// holds the whole snapshot. Two phases:
//   1. meta: pack the history's events, each byte packed charged META_WORK_PER_BYTE;
//   2. records: visit the records and write each, charged WORK_PER_RECORD plus its bytes.
// A record is read from the store's columns straight into the snapshot (KvStore.copyRecordTo), or from its
// pre-image when it changed since the start: the job makes no object per record (a million of them were a
// million objects for V8 to collect).

import { assert } from "../assert.js";
import type { KvStore } from "./kv.js";
import type { RecordCapture } from "./record-capture.js";
import { type SnapshotMetaPacker, type SnapshotPieceSink, SnapshotWriter } from "./snapshot.js";

/** What a record costs besides its bytes, in the budget's units (bytes): lookups, length fields, object reads. */
const WORK_PER_RECORD = 256;
/** What a byte of packed meta (msgpack of watch events) costs, in the budget's units: packing is no memcpy. */
const META_WORK_PER_BYTE = 8;

export interface SnapshotJobOutput {
  /** Takes the pieces, in order. */
  emit: SnapshotPieceSink;
  /** Goes before the snapshot, in its first piece (a member snapshot's header). */
  prefix?: Uint8Array;
  /** The pieces' size (SNAPSHOT_PIECE_BYTES unless given: tests give small ones). */
  pieceBytes?: number;
}

export class SnapshotJob {
  private writer: SnapshotWriter | undefined;
  private total: number | undefined;

  constructor(
    /** The meta part, packed first. */
    private readonly meta: SnapshotMetaPacker,
    private readonly capture: RecordCapture,
    /** The store the capture was taken of: the records not changed since are read from it. */
    private readonly store: KvStore,
    private readonly output: SnapshotJobOutput,
  ) {}

  get done(): boolean {
    return this.total !== undefined;
  }

  /** The bytes handed over, prefix included; once step() returned true. */
  get bytes(): number {
    assert(this.total !== undefined, "SnapshotJob.bytes before the job is done");
    return this.total;
  }

  /**
   * Does about `budget` bytes' worth of work (at least one record while any is left); true once the snapshot is
   * complete and its last piece handed over. A step after completion does nothing.
   */
  step(budget: number): boolean {
    if (this.total !== undefined) return true;
    let left = budget;
    if (!this.meta.done) {
      left -= META_WORK_PER_BYTE * this.meta.step(left / META_WORK_PER_BYTE);
      if (!this.meta.done) return false;
    }
    const { emit, prefix, pieceBytes } = this.output;
    this.writer ??= new SnapshotWriter(this.meta.bytes, this.capture.count, emit, prefix, pieceBytes);
    const writer = this.writer;
    const store = this.store;
    this.capture.step(left, (key, preImage) => {
      if (preImage !== undefined) {
        writer.write(preImage);
        return WORK_PER_RECORD + preImage.value.length;
      }
      const slot = store.slotOf(key);
      assert(slot >= 0, () => `snapshot: ${key} has neither a record nor a pre-image`);
      return WORK_PER_RECORD + store.copyRecordTo(key, slot, writer);
    });
    if (!this.capture.done) return false;
    this.capture.cancel();
    this.total = writer.finish();
    return true;
  }

  /** Abandons the job (the state machine was replaced, the member stops): the store stops reporting to it. */
  cancel(): void {
    this.capture.cancel();
  }
}
