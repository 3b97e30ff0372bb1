// WAL record framing and payloads.
//
//   u32 LE length | u32 LE crc | u8 kind | payload (msgpack, `length` bytes)
//
// `crc` is CRC-32C over the length field, the kind byte and the payload, so a damaged length is caught
// whenever the record is complete. Payloads are msgpack arrays (positional, no field names):
//   Entries   [firstIndex, term0, type0, data0, term1, type1, data1, …]  contiguous indices from firstIndex
//   HardState [term, vote | null, commit]
//   Snapshot  [index, term, install]  marker: snapshot file snap/<term>-<index>.snap is durable; install = 1
//             when it replaced the log (a follower installing a leader's snapshot), 0 when it compacted it.

import { Packr } from "msgpackr";
import type { Entry, EntryType, HardState } from "../raft/types.js";
import { assert } from "../assert.js";
import { crc32c } from "./crc32c.js";

export const RecordKind = { Entries: 1, HardState: 2, Snapshot: 3 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

export const HEADER_BYTES = 9;

/** Default bound on one record's payload: larger lengths can only come from damage, never from a writer. */
export const DEFAULT_MAX_RECORD_BYTES = 256 * 1024 * 1024;

export interface SnapshotMarker {
  index: number;
  term: number;
  install: boolean;
}

export type DecodedRecord =
  | { kind: typeof RecordKind.Entries; entries: Entry[] }
  | { kind: typeof RecordKind.HardState; hardState: HardState }
  | { kind: typeof RecordKind.Snapshot; marker: SnapshotMarker };

const packr = new Packr({ useRecords: false });

/** Frame `payload` as one record. */
export function frameRecord(kind: RecordKind, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  buf.writeUInt32LE(payload.length, 0);
  buf[8] = kind;
  buf.set(payload, HEADER_BYTES);
  buf.writeUInt32LE(recordCrc(buf, 0, payload.length), 4);
  return buf;
}

/** The CRC a record at `offset` with payload `length` must carry. */
export function recordCrc(buf: Uint8Array, offset: number, length: number): number {
  const c = crc32c(buf, 0, offset, offset + 4);
  return crc32c(buf, c, offset + 8, offset + HEADER_BYTES + length);
}

/**
 * The entries record, written straight into its frame: a msgpack array (any msgpack reader decodes it)
 * encoded by hand because this is the hot path — msgpackr plus a copy into the frame cost ~1 µs per entry,
 * this costs a memcpy of the data and the CRC.
 */
export function encodeEntries(entries: readonly Entry[]): Buffer {
  let size = arrayHeaderBytes(1 + entries.length * 3) + uintBytes(entries[0].index);
  for (const e of entries) size += uintBytes(e.term) + 1 + binHeaderBytes(e.data.length) + e.data.length;
  const buf = Buffer.allocUnsafe(HEADER_BYTES + size);
  buf.writeUInt32LE(size, 0);
  buf[8] = RecordKind.Entries;
  let pos = writeArrayHeader(buf, HEADER_BYTES, 1 + entries.length * 3);
  pos = writeUint(buf, pos, entries[0].index);
  for (const e of entries) {
    pos = writeUint(buf, pos, e.term);
    buf[pos++] = e.type; // 0 or 1: a positive fixint
    pos = writeBinHeader(buf, pos, e.data.length);
    buf.set(e.data, pos);
    pos += e.data.length;
  }
  assert(pos === buf.length, () => `entries record encoded ${pos} bytes, sized ${buf.length}`);
  buf.writeUInt32LE(recordCrc(buf, 0, size), 4);
  return buf;
}

const arrayHeaderBytes = (n: number): number => (n < 16 ? 1 : n < 0x10000 ? 3 : 5);
const binHeaderBytes = (n: number): number => (n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);
const uintBytes = (v: number): number => (v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v < 0x100000000 ? 5 : 9);

function writeArrayHeader(buf: Buffer, pos: number, n: number): number {
  if (n < 16) {
    buf[pos] = 0x90 | n;
    return pos + 1;
  }
  if (n < 0x10000) {
    buf[pos] = 0xdc;
    buf.writeUInt16BE(n, pos + 1);
    return pos + 3;
  }
  buf[pos] = 0xdd;
  buf.writeUInt32BE(n, pos + 1);
  return pos + 5;
}

function writeBinHeader(buf: Buffer, pos: number, n: number): number {
  if (n < 0x100) {
    buf[pos] = 0xc4;
    buf[pos + 1] = n;
    return pos + 2;
  }
  if (n < 0x10000) {
    buf[pos] = 0xc5;
    buf.writeUInt16BE(n, pos + 1);
    return pos + 3;
  }
  buf[pos] = 0xc6;
  buf.writeUInt32BE(n, pos + 1);
  return pos + 5;
}

function writeUint(buf: Buffer, pos: number, v: number): number {
  if (v < 0x80) {
    buf[pos] = v;
    return pos + 1;
  }
  if (v < 0x100) {
    buf[pos] = 0xcc;
    buf[pos + 1] = v;
    return pos + 2;
  }
  if (v < 0x10000) {
    buf[pos] = 0xcd;
    buf.writeUInt16BE(v, pos + 1);
    return pos + 3;
  }
  if (v < 0x100000000) {
    buf[pos] = 0xce;
    buf.writeUInt32BE(v, pos + 1);
    return pos + 5;
  }
  buf[pos] = 0xcf;
  buf.writeUInt32BE(Math.floor(v / 0x100000000), pos + 1);
  buf.writeUInt32BE(v >>> 0, pos + 5);
  return pos + 9;
}

/**
 * Reads the entries payload written by encodeEntries (any msgpack encoding of the same array is accepted).
 * Entry data are views into `payload`, not copies: recovery reads each segment once and the entries keep
 * its buffer alive only as long as they live. Returns a description of the defect instead of throwing.
 */
function decodeEntriesPayload(payload: Uint8Array): Entry[] | string {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let pos = 0;
  const end = payload.length;
  const fail = (what: string): string => `malformed entries payload: ${what} at payload byte ${pos}`;
  const readUint = (): number | undefined => {
    if (pos >= end) return undefined;
    const b = payload[pos];
    if (b < 0x80) {
      pos += 1;
      return b;
    }
    const widths: Record<number, number> = { 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8 };
    const w = widths[b];
    if (w === undefined || pos + 1 + w > end) return undefined;
    let v: number;
    if (w === 1) v = payload[pos + 1];
    else if (w === 2) v = view.getUint16(pos + 1);
    else if (w === 4) v = view.getUint32(pos + 1);
    else v = view.getUint32(pos + 1) * 0x100000000 + view.getUint32(pos + 5);
    pos += 1 + w;
    return Number.isSafeInteger(v) ? v : undefined;
  };
  let n: number;
  const h = payload[0];
  if (end === 0) return fail("empty");
  if ((h & 0xf0) === 0x90) {
    n = h & 0x0f;
    pos = 1;
  } else if (h === 0xdc && end >= 3) {
    n = view.getUint16(1);
    pos = 3;
  } else if (h === 0xdd && end >= 5) {
    n = view.getUint32(1);
    pos = 5;
  } else return fail("not an array");
  if (n < 4 || (n - 1) % 3 !== 0) return fail(`array of ${n} items`);
  const first = readUint();
  if (first === undefined || first === 0) return fail("bad first index");
  const entries: Entry[] = new Array((n - 1) / 3);
  for (let i = 0; i < entries.length; i++) {
    const term = readUint();
    if (term === undefined) return fail(`bad term of entry ${first + i}`);
    const type = payload[pos++];
    if (type !== 0 && type !== 1) return fail(`bad type of entry ${first + i}`);
    const b = payload[pos];
    let len: number;
    if (b === 0xc4 && pos + 2 <= end) {
      len = payload[pos + 1];
      pos += 2;
    } else if (b === 0xc5 && pos + 3 <= end) {
      len = view.getUint16(pos + 1);
      pos += 3;
    } else if (b === 0xc6 && pos + 5 <= end) {
      len = view.getUint32(pos + 1);
      pos += 5;
    } else return fail(`bad data of entry ${first + i}`);
    if (pos + len > end) return fail(`data of entry ${first + i} runs past the payload`);
    entries[i] = { term, index: first + i, type: type as EntryType, data: payload.subarray(pos, pos + len) };
    pos += len;
  }
  if (pos !== end) return fail(`${end - pos} trailing bytes`);
  return entries;
}

export function encodeHardState(hs: HardState): Buffer {
  return frameRecord(RecordKind.HardState, packr.pack([hs.term, hs.vote, hs.commit]));
}

export function encodeSnapshotMarker(m: SnapshotMarker): Buffer {
  return frameRecord(RecordKind.Snapshot, packr.pack([m.index, m.term, m.install ? 1 : 0]));
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Decode a CRC-valid payload. Returns a description of what is malformed instead of throwing, so the caller
 * can name the file and offset.
 */
export function decodeRecord(kind: number, payload: Uint8Array): DecodedRecord | string {
  if (kind === RecordKind.Entries) {
    const entries = decodeEntriesPayload(payload);
    return typeof entries === "string" ? entries : { kind, entries };
  }
  let v: unknown;
  try {
    v = packr.unpack(payload);
  } catch (err) {
    return `undecodable msgpack payload (${(err as Error).message})`;
  }
  if (!Array.isArray(v)) return `payload of kind ${kind} is not an array`;
  switch (kind) {
    case RecordKind.HardState: {
      const [term, vote, commit] = v as unknown[];
      if (v.length !== 3 || !isCount(term) || !isCount(commit) || !(vote === null || typeof vote === "string")) {
        return "malformed hard state payload";
      }
      return { kind, hardState: { term, vote, commit } };
    }
    case RecordKind.Snapshot: {
      const [index, term, install] = v as unknown[];
      if (v.length !== 3 || !isCount(index) || !isCount(term) || (install !== 0 && install !== 1)) {
        return "malformed snapshot marker payload";
      }
      return { kind, marker: { index, term, install: install === 1 } };
    }
    default:
      return `unknown record kind ${kind} (this build knows kinds 1-3)`;
  }
}
