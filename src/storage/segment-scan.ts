// Scanning one WAL segment's bytes into records, and telling a torn tail from corruption.
//
// Zeros after the last record end a segment: the writer extends segments with zeros ahead of the records
// (wal.ts), so every segment may end in them.
// A crash while appending leaves a *prefix* of the last write: the final record is cut short (its header or
// payload runs past the end of the file), or damaged and followed only by zeros the data never reached. That
// is a torn tail, legal only at the end of the newest segment: recovery truncates it with a warning.
// Anything else — a complete record whose CRC does not match, a length no writer produces, a cut-short
// record followed by a valid one, damage in an older segment — is corruption and stops the node.

import { DEFAULT_MAX_RECORD_BYTES, HEADER_BYTES, recordCrc } from "./record.js";
import { ZERO_BLOCK } from "./wal.js";

/** Disks write sectors whole: an interrupted write leaves whole sectors of old (here: zero) bytes behind. */
const SECTOR_BYTES = 512;

export interface RawRecord {
  kind: number;
  /** Byte offset of the record's header in the segment. */
  offset: number;
  payload: Uint8Array;
}

export type ScanResult =
  | { status: "ok"; records: RawRecord[]; validBytes: number }
  | { status: "torn"; records: RawRecord[]; validBytes: number; reason: string }
  | { status: "corrupt"; records: RawRecord[]; validBytes: number; reason: string };

/**
 * The records of `buf[from, to)` that are whole and whose checksum matches, in order from `from`, stopping at the
 * first that is not (or that runs past `to`): while a segment is still being read, `to` is how far it has been.
 * `scanSegment` would return each of them the same way, whatever follows, so a scan of the whole segment may
 * start where these end (its `from`).
 */
export function scanWholeRecords(
  buf: Uint8Array,
  from: number,
  to: number,
  maxRecordBytes = DEFAULT_MAX_RECORD_BYTES,
): { records: RawRecord[]; next: number } {
  const records: RawRecord[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = from;
  while (to - pos >= HEADER_BYTES) {
    const length = view.getUint32(pos, true);
    if (length > maxRecordBytes || pos + HEADER_BYTES + length > to) break;
    if (view.getUint32(pos + 4, true) !== recordCrc(buf, pos, length)) break;
    records.push({ kind: buf[pos + 8], offset: pos, payload: buf.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + length) });
    pos += HEADER_BYTES + length;
  }
  return { records, next: pos };
}

/**
 * `isLast`: the newest segment, the only one that may end in a torn record. Records before the first bad
 * one are returned in every case; `validBytes` is where the good prefix ends. `from`: where to start, the end of
 * records already taken (scanWholeRecords).
 */
export function scanSegment(buf: Uint8Array, isLast: boolean, maxRecordBytes = DEFAULT_MAX_RECORD_BYTES, from = 0): ScanResult {
  const records: RawRecord[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = buf.length;
  let pos = from;
  while (pos < end) {
    const torn = (reason: string): ScanResult =>
      isLast && !validRecordFollows(buf, pos + 1, maxRecordBytes)
        ? { status: "torn", records, validBytes: pos, reason }
        : {
            status: "corrupt",
            records,
            validBytes: pos,
            reason: isLast ? `${reason}, yet valid records follow it` : reason,
          };
    if (allZero(buf, pos, end)) return { status: "ok", records, validBytes: pos };
    if (end - pos < HEADER_BYTES) return torn(`record header cut short (${end - pos} of ${HEADER_BYTES} bytes)`);
    const length = view.getUint32(pos, true);
    if (length > maxRecordBytes) {
      return {
        status: "corrupt",
        records,
        validBytes: pos,
        reason: `record length ${length} exceeds the limit ${maxRecordBytes}`,
      };
    }
    if (pos + HEADER_BYTES + length > end) {
      return torn(`record of ${length} payload bytes cut short (${end - pos - HEADER_BYTES} present)`);
    }
    const stored = view.getUint32(pos + 4, true);
    const computed = recordCrc(buf, pos, length);
    if (stored !== computed) {
      const recordEnd = pos + HEADER_BYTES + length;
      // Where an interrupted write's unwritten part would start: a sector boundary inside the record — the write
      // may have reached any of them, so the one after which everything reads as zeros — or the record's end
      // when it lies within one sector.
      const firstBoundary = (Math.floor(pos / SECTOR_BYTES) + 1) * SECTOR_BYTES;
      const zerosFrom = Math.max(pos, trailingZerosFrom(buf, end));
      const tornTail =
        firstBoundary < recordEnd
          ? Math.max(firstBoundary, Math.ceil(zerosFrom / SECTOR_BYTES) * SECTOR_BYTES) < recordEnd
          : zerosFrom < recordEnd && recordEnd < end;
      if (isLast && tornTail && !validRecordFollows(buf, pos + 1, maxRecordBytes)) {
        // The file reaches past the written data but holds only zeros from a sector boundary on: its size grew
        // before the data reached the disk (power loss mid-write), and sectors are written whole. Without such a
        // zero tail a bad checksum is damage, even on the last record: a torn write cannot leave a
        // complete-length record with wrong bytes unless the file also ends in unwritten (zero) space.
        return {
          status: "torn",
          records,
          validBytes: pos,
          reason: "interrupted write: a damaged record whose tail, to the end of the file, is unwritten (zeros)",
        };
      }
      return {
        status: "corrupt",
        records,
        validBytes: pos,
        reason: `record checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)})`,
      };
    }
    records.push({
      kind: buf[pos + 8],
      offset: pos,
      payload: buf.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + length),
    });
    pos += HEADER_BYTES + length;
  }
  return { status: "ok", records, validBytes: pos };
}

/** The start of the run of zeros that ends the first `end` bytes of `buf` (`end` when the last byte is not zero). */
function trailingZerosFrom(buf: Uint8Array, end: number): number {
  let i = end;
  while (i > 0 && buf[i - 1] === 0) i--;
  return i;
}

/**
 * Whether `buf[from, to)` holds only zeros (a segment ends in up to tens of megabytes of them): compared natively a
 * block at a time (a byte loop took ~50 ms per segment).
 */
function allZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let at = from; at < to; at += ZERO_BLOCK.length) {
    const n = Math.min(ZERO_BLOCK.length, to - at);
    if (Buffer.compare(buf.subarray(at, at + n), ZERO_BLOCK.subarray(0, n)) !== 0) return false;
  }
  return true;
}

/**
 * Whether a complete, CRC-valid record starts anywhere in `buf[from…]`. A cut-short record can only be the
 * last thing in the file; if a valid record follows, the "cut-short" length was damaged instead (a bit flip
 * that made it point past the end), and truncating there would silently drop fsynced records.
 */
function validRecordFollows(buf: Uint8Array, from: number, maxRecordBytes: number): boolean {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let q = from; q + HEADER_BYTES <= buf.length; q++) {
    const kind = buf[q + 8];
    if (kind < 1 || kind > 3) continue;
    const length = view.getUint32(q, true);
    if (length > maxRecordBytes || q + HEADER_BYTES + length > buf.length) continue;
    if (view.getUint32(q + 4, true) === recordCrc(buf, q, length)) return true;
  }
  return false;
}
