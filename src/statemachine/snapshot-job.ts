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
//   2. capture: look the records up (and add up their sizes), each charged WORK_PER_RECORD plus its bytes;
//   3. write: repack each value into the fresh arena (when the job repacks), and write the record, charged the same.
//
// Repacking: when more than half of the bytes the value arenas may hold are dead (StateMachine.beginSnapshot
// decides), every live value is copied into a fresh arena, so arenas kept alive only by a few values are freed:
// the arenas then hold at most about twice the live values plus what was written since the last snapshot. Values
// keep their bytes (readers holding a record see no change); only where they live moves. Values put while the job
// runs go to the fresh arena as well (beginSnapshot switches to it at the start). Not repacking when little is
// dead matters at scale: a million fresh views at once provoke V8 major collections of hundreds of milliseconds.

import { assert } from "../assert.js";
import type { ByteArena } from "./byte-arena.js";
import type { RecordCapture } from "./record-capture.js";
import { snapshotRecordBytes, type SnapshotMetaPacker, SnapshotWriter } from "./snapshot.js";

/** What a record costs besides its bytes, in the budget's units (bytes): lookups, length fields, object reads. */
const WORK_PER_RECORD = 256;
/** What a byte of packed meta (msgpack of watch events) costs, in the budget's units: packing is no memcpy. */
const META_WORK_PER_BYTE = 8;

export class SnapshotJob {
  private recordsBytes = 0;
  private writer: SnapshotWriter | undefined;
  private written = 0;
  private output: Uint8Array | undefined;

  constructor(
    /** The meta part, packed first. */
    private readonly meta: SnapshotMetaPacker,
    private readonly capture: RecordCapture,
    /** Where values are repacked to; undefined: they stay where they are. */
    private readonly arena: ByteArena | undefined,
    private readonly prefix: Uint8Array | undefined,
  ) {}

  /** Whether the job copies every value into a fresh arena. */
  get repacks(): boolean {
    return this.arena !== undefined;
  }

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
      left -= this.capture.step(left, (kv) => {
        const bytes = snapshotRecordBytes(kv);
        this.recordsBytes += bytes;
        return WORK_PER_RECORD + bytes;
      });
      if (!this.capture.done) return false;
      this.writer = new SnapshotWriter(this.meta.bytes, this.capture.records.length, this.recordsBytes, this.prefix);
    }
    return this.writeRecords(left);
  }

  private writeRecords(budget: number): boolean {
    const records = this.capture.records;
    const writer = this.writer!;
    let i = this.written;
    let spent = 0;
    while (i < records.length && spent < budget) {
      const kv = records[i++];
      if (this.arena !== undefined) (kv as { value: Uint8Array }).value = this.arena.copy(kv.value);
      writer.write(kv);
      spent += WORK_PER_RECORD + kv.value.length;
    }
    this.written = i;
    if (i < records.length) return false;
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
