// Where the live copy of each log entry is in the WAL, so that entries the in-memory log released
// (MemoryStorage.releaseEntries) can be read back. It follows the log's own history, as replay does: an
// entries record [f..l] becomes the home of f..l and ends every home above l (those entries were truncated);
// an install ends all of them; a compaction drops those at or below the snapshot's index. Homes are runs of
// consecutive indices in one record, in index order, never overlapping. A segment is deleted only once every
// live entry it holds is at or below a durable snapshot (SegmentLiveness), so no run above the snapshot can
// point into a deleted segment.

import type { Entry } from "../raft/types.js";
import { StorageCorruptionError } from "./errors.js";
import type { FileSystem } from "./file-system.js";
import { decodeRecord, RecordKind } from "./record.js";
import { scanWholeRecords } from "./segment-scan.js";

/** An entries record in the WAL: segment, byte offset of its header, framed length, and its first index. */
export interface EntriesRecordLocation {
  seq: number;
  offset: number;
  length: number;
  first: number;
}

export interface EntryRun {
  first: number;
  last: number;
  record: EntriesRecordLocation;
}

export class WalEntryIndex {
  private runs: EntryRun[] = [];

  /** An entries record holding [record.first, last] was written: it replaces everything from its first index. */
  onEntries(record: EntriesRecordLocation, last: number): void {
    const first = record.first;
    while (this.runs.length > 0 && this.runs[this.runs.length - 1].first >= first) this.runs.pop();
    const top = this.runs.at(-1);
    if (top !== undefined && top.last >= first) top.last = first - 1;
    this.runs.push({ first, last, record });
  }

  onInstall(): void {
    this.runs = [];
  }

  /** Entries up to `index` are in a snapshot: forget their homes. */
  compact(index: number): void {
    let k = 0;
    while (k < this.runs.length && this.runs[k].last <= index) k++;
    if (k > 0) this.runs.splice(0, k);
    if (this.runs.length > 0 && this.runs[0].first <= index) this.runs[0].first = index + 1;
  }

  /** The run holding index i, if any. */
  find(i: number): EntryRun | undefined {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const run = this.runs[mid];
      if (i < run.first) hi = mid - 1;
      else if (i > run.last) lo = mid + 1;
      else return run;
    }
    return undefined;
  }
}

/**
 * Reads the entries record at `record` back (synchronously: the core's Storage is; a released entry is asked for
 * by a lagging follower's catch-up or a slow apply, and the WAL it sits in was written moments ago, so it is
 * usually in the page cache). Its checksum is checked again: a record that does not read back as written is
 * corruption, and the member stops rather than send or apply it.
 */
export function readEntriesRecord(fs: FileSystem, file: string, record: EntriesRecordLocation): Entry[] {
  const fail = (reason: string): never => {
    throw new StorageCorruptionError(file, record.offset, `reading back released log entries from ${record.first}: ${reason}`, false);
  };
  const buf = fs.readAt(file, record.offset, record.length);
  // The scan recovery uses: a whole record whose length field and checksum agree, or nothing.
  const { records, next } = scanWholeRecords(buf, 0, buf.length);
  if (records.length !== 1 || next !== record.length) fail(`checksum mismatch or damaged length (${buf.length} of ${record.length} bytes read)`);
  if (records[0].kind !== RecordKind.Entries) fail(`record of kind ${records[0].kind}, not entries`);
  const decoded = decodeRecord(RecordKind.Entries, records[0].payload);
  if (typeof decoded === "string") return fail(decoded);
  if (decoded.kind !== RecordKind.Entries || decoded.entries[0].index !== record.first) {
    return fail(`the record does not start at entry ${record.first}`);
  }
  return decoded.entries;
}
