// Recovery on open: verify and replay the WAL, read and verify the snapshot its newest marker names, and rebuild the
// in-memory log. It runs once, before the node serves anything; its large reads (WAL segments, the snapshot file,
// which can be hundreds of megabytes) are asynchronous, so that the process's event loop is never held for them.
//
// Order of trust: the WAL decides. The newest snapshot marker in the WAL names the snapshot to load (its file
// was fsynced and renamed before the marker was written). A snapshot file newer than every marker is an
// orphan of a crash between its rename and its marker, and is deleted; a marker whose file is missing or
// damaged stops the node.

import path from "node:path";
import { MemoryStorage } from "../raft/storage.js";
import type { HardState, SnapshotMetadata } from "../raft/types.js";
import { StorageCorruptionError } from "./errors.js";
import type { FileSystem } from "./file-system.js";
import { HEADER_BYTES, RecordKind, decodeRecord, type DecodedRecord, type SnapshotMarker } from "./record.js";
import { LogReplay, SegmentLiveness } from "./replay.js";
import { scanSegment, scanWholeRecords, type RawRecord } from "./segment-scan.js";
import { parseSnapshotFileName, readSnapshotFile, snapshotFileName } from "./snapshot-file.js";
import { parseSegmentFileName, segmentFileName, type SegmentFile } from "./wal.js";
import { WalEntryIndex } from "./wal-entry-index.js";

/** pino-compatible: only `warn` is used. */
export interface StorageLogger {
  warn(obj: object, msg: string): void;
}

export interface RecoverOptions {
  repair: boolean;
  logger: StorageLogger;
  maxRecordBytes: number;
}

export interface SnapshotFileRef {
  index: number;
  term: number;
  file: string;
}

export interface Recovered {
  log: MemoryStorage;
  hardState: HardState;
  /**
   * The snapshot the newest marker names, read and checked whole. The log holds it with no bytes: DurableStorage
   * hands `data` once to the start's restore and reads the file again when the bytes are wanted later.
   */
  snapshot: { metadata: SnapshotMetadata; file: string; data: Uint8Array } | undefined;
  /** Nothing was ever persisted: no records, no snapshot. */
  isNew: boolean;
  segments: SegmentFile[];
  liveness: SegmentLiveness;
  /** Where each live entry is in the WAL (for entries the log releases from memory). */
  entryIndex: WalEntryIndex;
  /** Durable snapshot files (those at or below the newest marker), oldest first. */
  snapshotFiles: SnapshotFileRef[];
}

/** A WAL segment (up to 64 MiB) is read a chunk at a time, off the event loop. */
const SEGMENT_READ_BYTES = 4 << 20;

interface LocatedRecord {
  seq: number;
  file: string;
  offset: number;
  /** The framed record's bytes (header and payload). */
  length: number;
  record: DecodedRecord;
}

export async function recover(fs: FileSystem, walDir: string, snapDir: string, opts: RecoverOptions): Promise<Recovered> {
  const segments = listSegments(fs, walDir);
  const records = await readSegments(fs, walDir, segments, opts);

  let newest: SnapshotMarker | undefined;
  for (const r of records) {
    if (r.record.kind !== RecordKind.Snapshot) continue;
    const m = r.record.marker;
    if (newest && m.index <= newest.index) {
      throw new StorageCorruptionError(
        r.file,
        r.offset,
        `snapshot marker ${m.index} is not after the earlier marker ${newest.index}`,
      );
    }
    newest = m;
  }

  const snapshot = newest ? await readMarkedSnapshot(fs, snapDir, newest) : undefined;
  const snapshotFiles = tidySnapshotDir(fs, snapDir, newest?.index ?? 0, opts.logger);

  const replay = new LogReplay(newest?.index ?? 0);
  const liveness = new SegmentLiveness();
  const entryIndex = new WalEntryIndex();
  for (const seg of segments) liveness.addSegment(seg.seq);
  for (const r of records) {
    const rec = r.record;
    if (rec.kind === RecordKind.Entries) {
      replay.applyEntries(rec.entries);
      const last = rec.entries[rec.entries.length - 1].index;
      liveness.onEntries(r.seq, last);
      entryIndex.onEntries({ seq: r.seq, offset: r.offset, length: r.length, first: rec.entries[0].index }, last);
    } else if (rec.kind === RecordKind.HardState) {
      replay.applyHardState(rec.hardState);
    } else if (rec.marker.install) {
      replay.applyInstall(rec.marker.index);
      liveness.onInstall();
      entryIndex.onInstall();
    }
  }
  entryIndex.compact(replay.base);
  const hole = replay.firstHole();
  if (hole !== undefined) {
    throw new StorageCorruptionError(
      walDir,
      0,
      `log entry ${hole} is missing from every WAL segment (a segment was lost?)`,
      false,
    );
  }

  const log = new MemoryStorage();
  if (snapshot) log.applySnapshot({ metadata: snapshot.metadata, data: new Uint8Array(0) });
  log.setHardState(replay.hardState);
  log.append(replay.entries());
  return {
    log,
    hardState: replay.hardState,
    snapshot,
    isNew: records.length === 0 && snapshot === undefined,
    segments,
    liveness,
    entryIndex,
    snapshotFiles,
  };
}

function listSegments(fs: FileSystem, walDir: string): SegmentFile[] {
  const seqs = fs
    .list(walDir)
    .map(parseSegmentFileName)
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
  const segments: SegmentFile[] = [];
  for (const seq of seqs) {
    const prev = segments.at(-1);
    const file = path.join(walDir, segmentFileName(seq));
    if (prev && seq !== prev.seq + 1) {
      throw new StorageCorruptionError(
        path.join(walDir, segmentFileName(prev.seq + 1)),
        0,
        `WAL segment ${prev.seq + 1} is missing between ${segmentFileName(prev.seq)} and ${segmentFileName(seq)}`,
        false,
      );
    }
    segments.push({ seq, file, size: fs.size(file) });
  }
  return segments;
}

/** Scan and decode every segment; torn tails are truncated here, corruption throws (or is cut with repair). */
async function readSegments(fs: FileSystem, walDir: string, segments: SegmentFile[], opts: RecoverOptions): Promise<LocatedRecord[]> {
  const out: LocatedRecord[] = [];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const isLast = i === segments.length - 1;
    let cutAt: number | undefined;
    let cutReason = "";
    const take = (records: readonly RawRecord[]): void => {
      for (const raw of records) {
        if (cutAt !== undefined) return;
        const rec = decodeRecord(raw.kind, raw.payload);
        if (typeof rec === "string") {
          cutAt = raw.offset;
          cutReason = rec;
          return;
        }
        out.push({ seq: seg.seq, file: seg.file, offset: raw.offset, length: HEADER_BYTES + raw.payload.length, record: rec });
      }
    };
    // The records are checked and decoded a chunk at a time as the segment is read, each chunk in its own turn;
    // the whole segment's scan then only has its end left (zeros, or a torn or damaged record).
    const buf = Buffer.allocUnsafe(seg.size);
    let read = 0;
    let scanned = 0;
    while (read < buf.length) {
      const n = await fs.read(seg.file, read, buf.subarray(read, read + SEGMENT_READ_BYTES));
      if (n === 0) break;
      read += n;
      const whole = scanWholeRecords(buf, scanned, read, opts.maxRecordBytes);
      scanned = whole.next;
      take(whole.records);
    }
    const scan = scanSegment(buf.subarray(0, read), isLast, opts.maxRecordBytes, scanned);
    take(scan.records);
    if (cutAt === undefined && scan.status === "ok") {
      seg.size = scan.validBytes; // zeros may follow: the preallocated rest of the segment (wal.ts)
      continue;
    }
    if (cutAt === undefined && scan.status === "torn") {
      opts.logger.warn(
        { file: seg.file, offset: scan.validBytes, droppedBytes: read - scan.validBytes, reason: scan.reason },
        "WAL ends in a torn record (a write cut short by a crash); truncating it",
      );
      fs.truncateSync(seg.file, scan.validBytes);
      seg.size = scan.validBytes;
      continue;
    }
    if (cutAt === undefined && scan.status === "corrupt") {
      cutAt = scan.validBytes;
      cutReason = scan.reason;
    }
    if (cutAt === undefined) continue;
    if (!opts.repair) throw new StorageCorruptionError(seg.file, cutAt, cutReason);
    const dropped = segments.slice(i + 1);
    opts.logger.warn(
      {
        file: seg.file,
        offset: cutAt,
        reason: cutReason,
        droppedBytes: read - cutAt,
        droppedSegments: dropped.map((s) => s.file),
      },
      "repair: truncating the WAL at a damaged record; every later record is discarded",
    );
    fs.truncateSync(seg.file, cutAt);
    seg.size = cutAt;
    for (const d of dropped) fs.removeSync(d.file);
    fs.syncDirSync(walDir);
    segments.length = i + 1;
    break;
  }
  return out;
}

async function readMarkedSnapshot(
  fs: FileSystem,
  snapDir: string,
  marker: SnapshotMarker,
): Promise<{ metadata: SnapshotMetadata; file: string; data: Uint8Array }> {
  const file = path.join(snapDir, snapshotFileName(marker.term, marker.index));
  if (!fs.exists(file)) {
    throw new StorageCorruptionError(
      file,
      0,
      `the WAL records snapshot (term ${marker.term}, index ${marker.index}) but its file is missing`,
      false,
    );
  }
  const { metadata, data } = await readSnapshotFile(fs, file);
  return { metadata, file, data };
}

/** Remove temp files and orphan snapshots (newer than every marker); list the rest, oldest first. */
function tidySnapshotDir(fs: FileSystem, snapDir: string, newestMarked: number, logger: StorageLogger): SnapshotFileRef[] {
  const kept: SnapshotFileRef[] = [];
  let removed = false;
  for (const name of fs.list(snapDir).sort()) {
    const file = path.join(snapDir, name);
    if (name.endsWith(".tmp")) {
      fs.removeSync(file);
      removed = true;
      continue;
    }
    const parsed = parseSnapshotFileName(name);
    if (!parsed) continue;
    if (parsed.index > newestMarked) {
      logger.warn(
        { file },
        "removing a snapshot file that no WAL marker records (a crash before its marker was durable)",
      );
      fs.removeSync(file);
      removed = true;
      continue;
    }
    kept.push({ ...parsed, file });
  }
  if (removed) fs.syncDirSync(snapDir);
  return kept.sort((a, b) => a.index - b.index);
}
