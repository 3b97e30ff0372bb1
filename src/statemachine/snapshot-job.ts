// A snapshot taken a run at a time, so that a member with millions of keys never stops its event loop for the
// second or two a whole snapshot takes: the caller calls step(budget) once per event-loop turn until it returns
// true, and applies entries in between as usual. No clock here: the caller (the replica) schedules the steps.
//
// The bytes are exactly those of the state at the moment the job began (StateMachine.beginSnapshot), whatever is
// applied between steps: the meta part (everything but the keys) is gathered at the start and packed first, the
// watch history's events a run at a time (SnapshotMetaPacker says why that is exact); the records are captured as
// they were at the start (record-capture.ts says why that is exact), then written in key order into one buffer
// sized from them (snapshot.ts). Three phases:
//   1. meta: pack the history's events, each byte packed charged META_WORK_PER_BYTE;
//   2. size: visit the records (add up their sizes), each charged WORK_PER_RECORD plus its bytes;
//   3. write: visit them again and write each, charged the same.
// Records are read from the store's columns straight into the snapshot (KvStore.copyRecordTo), from the row
// the sizing found them in, or from their pre-image when they changed since the start: the job makes no object
// per record (a million of them were a million objects for V8 to collect) and looks each key up once.

import { assert } from "../assert.js";
import type { KvStore } from "./kv.js";
import type { RecordCapture } from "./record-capture.js";
import { snapshotRecordBytes, type SnapshotMetaPacker, SnapshotWriter } from "./snapshot.js";

/** What a record costs besides its bytes, in the budget's units (bytes): lookups, length fields, object reads. */
const WORK_PER_RECORD = 256;
/** What a byte of packed meta (msgpack of watch events) costs, in the budget's units: packing is no memcpy. */
const META_WORK_PER_BYTE = 8;

export class SnapshotJob {
  private recordsBytes = 0;
  /** The row of each record found unchanged while sizing (KvStore.slotOf): written from it unless changed since. */
  private slots: Int32Array | undefined;
  private writer: SnapshotWriter | undefined;
  private output: Uint8Array | undefined;

  constructor(
    /** The meta part, packed first. */
    private readonly meta: SnapshotMetaPacker,
    private readonly capture: RecordCapture,
    /** The store the capture was taken of: the records not changed since are read from it. */
    private readonly store: KvStore,
    private readonly prefix: Uint8Array | undefined,
  ) {}

  get done(): boolean {
    return this.output !== undefined;
  }

  /**
   * Does about `budget` bytes' worth of work (at least one record while any is left); true once the snapshot is
   * complete. A step after completion does nothing.
   */
  step(budget: number): boolean {
    if (this.output !== undefined) return true;
    let left = budget;
    if (!this.meta.done) {
      left -= META_WORK_PER_BYTE * this.meta.step(left / META_WORK_PER_BYTE);
      if (!this.meta.done) return false;
    }
    if (this.writer === undefined) {
      this.slots ??= new Int32Array(this.capture.count);
      const slots = this.slots;
      let i = this.capture.visited;
      left -= this.capture.step(left, (key, preImage) => {
        let bytes: number;
        if (preImage !== undefined) {
          bytes = snapshotRecordBytes(preImage);
          slots[i++] = -1;
        } else {
          const slot = this.store.slotOf(key);
          assert(slot >= 0, () => `snapshot: ${key} has neither a record nor a pre-image`);
          bytes = this.store.snapshotRecordBytesAt(key, slot);
          slots[i++] = slot;
        }
        this.recordsBytes += bytes;
        return WORK_PER_RECORD + bytes;
      });
      if (!this.capture.done) return false;
      this.writer = new SnapshotWriter(this.meta.bytes, this.capture.count, this.recordsBytes, this.prefix);
      this.capture.rewind();
    }
    const writer = this.writer;
    const slots = this.slots!;
    let i = this.capture.visited;
    this.capture.step(left, (key, preImage) => {
      // A pre-image preserved since the sizing wins: the row may hold a newer record now, or another key's.
      const slot = slots[i++];
      if (preImage === undefined) return WORK_PER_RECORD + this.store.copyRecordTo(key, slot, writer);
      writer.write(preImage);
      return WORK_PER_RECORD + preImage.value.length;
    });
    if (!this.capture.done) return false;
    this.capture.cancel();
    this.output = writer.finish();
    return true;
  }

  /** The prefix followed by the snapshot; once step() returned true. */
  get bytes(): Uint8Array {
    assert(this.output !== undefined, "SnapshotJob.bytes before the job is done");
    return this.output;
  }

  /** Abandons the job (the state machine was replaced, the member stops): the store stops reporting to it. */
  cancel(): void {
    this.capture.cancel();
  }
}
