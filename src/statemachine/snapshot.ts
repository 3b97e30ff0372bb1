// Snapshot encoding: deterministic bytes (same state, same bytes, on every replica) that restore exactly.
//
// Layout (all integers little-endian):
//   "CSMS" | u8 format version | u32 meta length | meta (msgpack) | f64 key count | key records...
//   key record: u32 key length | key (UTF-8) | u32 value length | value | f64 createRevision | f64 modRevision
//               | f64 version | f64 lease
// The meta part holds everything except the keys: applied index, revision, compaction revision, leases,
// sessions with their recorded outcomes, the watch history (kept, not compacted away, so a restored replica
// serves the same resumes as the others), extension sections and (from format 2) the storage quota with the
// raised alarms — all as arrays in a fixed, sorted order. Format 1 (no quota, no alarms) is still read.
// Keys, the bulk, use a flat binary layout in key order, written in pieces as they fill (SnapshotWriter): no
// growth copies, no buffer of the whole snapshot, and no per-key msgpack objects on restore.

import { Packr } from "msgpackr";
import type { Alarm, KeyValue, Outcome } from "./commands.js";
import { SnapshotFormatError } from "./errors.js";
import type { RecordSink } from "./kv.js";
import { utf8Length } from "./limits.js";
import type { WatchEvent } from "./watch-history.js";
import { concatBytes } from "../bytes.js";

export const SNAPSHOT_FORMAT_VERSION = 2;
/** Format 1: the same without the quota and the alarms. */
const READABLE_VERSIONS: ReadonlySet<number> = new Set([1, 2]);
const MAGIC = [0x43, 0x53, 0x4d, 0x53]; // "CSMS"
const HEADER_BYTES = MAGIC.length + 1 + 4;
const RECORD_FIXED_BYTES = 4 + 4 + 8 * 4;
/**
 * What reading a record costs besides its bytes, in a restore's budget (bytes): decoding the key, the key map's
 * insert, the row's fields. As in snapshot-job.ts, so one budget gives runs of about the same length either way.
 */
const RESTORE_WORK_PER_RECORD = 256;

export interface SnapshotState {
  lastApplied: number;
  revision: number;
  compactRevision: number;
  /** [id, ttlMs, grantedAt] in id order. */
  leases: [number, number, number][];
  /** [clientId, lease, lowestUnacked, [seq, outcome][] in seq order] in client id order. */
  sessions: [number, number, number, [number, Outcome][]][];
  history: WatchEvent[];
  /** [section, data] in section order. */
  extensions: [string, unknown][];
  keyCount: number;
  /** Records in key order. */
  kvs: KeyValue[];
  /** The storage quota in force; undefined from a format-1 snapshot. */
  quotaBytes: number | undefined;
  /** [alarm, raisedAt] of the raised alarms, in alarm order. */
  alarms: [Alarm["alarm"], number][];
}

const packr = new Packr({ useRecords: false, copyBuffers: true, mapsAsObjects: true, moreTypes: false });

/** Everything a snapshot holds except the key records. */
export type SnapshotMeta = Omit<SnapshotState, "keyCount" | "kvs">;

export function encodeSnapshot(state: SnapshotState): Uint8Array {
  if (state.kvs.length !== state.keyCount) throw new Error("snapshot: key count does not match the records");
  const out = new SnapshotPieces();
  const writer = new SnapshotWriter(packSnapshotMeta(state), state.kvs.length, out.emit);
  for (const kv of state.kvs) writer.write(kv);
  writer.finish();
  return out.bytes();
}

/** The meta part (see the layout): msgpack of everything but the keys, in a fixed order. */
export function packSnapshotMeta(meta: SnapshotMeta): Uint8Array {
  const packer = new SnapshotMetaPacker(meta);
  packer.step(Infinity);
  return packer.bytes;
}

/**
 * Packs the meta part a run at a time: the watch history (up to limits.historyMaxEvents events, each with its
 * records) a run of events per step, the rest at once. The msgpack of an array is its length header followed by
 * its elements' msgpack, each independent of the others (no records, shared structures or bundled strings in
 * this packr's options), so packing the 8-tuple and the history's events one by one gives exactly the bytes of
 * packing the whole tuple at once. The events do not change after they are written (records are replaced,
 * not mutated), so they may be packed in later turns.
 */
export class SnapshotMetaPacker {
  private readonly events: readonly WatchEvent[];
  private readonly parts: Uint8Array[];
  private readonly tail: Uint8Array;
  private next = 0;
  private output: Uint8Array | undefined;

  constructor(meta: SnapshotMeta) {
    this.events = meta.history;
    // Copies (concat): packr's results are views into its scratch buffer.
    this.parts = [
      concatBytes([
        arrayHeader(8),
        packr.pack(meta.lastApplied),
        packr.pack(meta.revision),
        packr.pack(meta.compactRevision),
        packr.pack(meta.leases),
        packr.pack(meta.sessions),
        arrayHeader(meta.history.length),
      ]),
    ];
    this.tail = concatBytes([packr.pack(meta.extensions), packr.pack([meta.quotaBytes, meta.alarms])]);
  }

  get done(): boolean {
    return this.output !== undefined;
  }

  /** Packs events until `budget` bytes were packed (at least one while any is left); returns the bytes packed. */
  step(budget: number): number {
    let spent = 0;
    const events = this.events;
    while (this.next < events.length && spent < budget) {
      const packed = packr.pack(events[this.next++]).slice();
      this.parts.push(packed);
      spent += packed.length;
    }
    if (this.next === events.length && this.output === undefined) this.output = concatBytes([...this.parts, this.tail]);
    return spent;
  }

  /** The meta part, once done. */
  get bytes(): Uint8Array {
    if (this.output === undefined) throw new Error("snapshot meta: not packed yet");
    return this.output;
  }
}

/** A msgpack array header for `length` elements. */
function arrayHeader(length: number): Uint8Array {
  if (length < 16) return Uint8Array.of(0x90 | length);
  if (length < 0x10000) return Uint8Array.of(0xdc, length >> 8, length & 0xff);
  const out = new Uint8Array(5);
  out[0] = 0xdd;
  new DataView(out.buffer).setUint32(1, length);
  return out;
}


/** The bytes one key record takes in a snapshot. */
export function snapshotRecordBytes(kv: KeyValue): number {
  return snapshotBytesOfRecord(kv.key, kv.value.length);
}

/** The bytes the record of `key` with a value of `valueLength` bytes takes in a snapshot. */
export function snapshotBytesOfRecord(key: string, valueLength: number): number {
  return RECORD_FIXED_BYTES + utf8Length(key) + valueLength;
}

/** The size of the pieces a snapshot is handed over in (SnapshotWriter): larger records get a piece of their own. */
export const SNAPSHOT_PIECE_BYTES = 1 << 20;

/**
 * Takes a snapshot's bytes a piece at a time, in order; a piece handed over is never written again by the writer.
 * A sink done with a piece (written to its file) calls `release`, and the writer fills the piece's memory again:
 * memory touched for the first time is slow to fault in on the benchmark VM (a profiled leader spent hundreds of
 * milliseconds writing records into fresh pieces), memory reused is not. A sink that keeps its pieces never calls it.
 */
export type SnapshotPieceSink = (piece: Uint8Array, release: () => void) => void;

/** How many released pieces a writer keeps for reuse: a few more than one run of the job fills. */
const REUSED_PIECES = 8;

/**
 * Writes a snapshot a record at a time, handing it over in pieces of about `pieceBytes` as they fill: the head
 * (`prefix`, header, meta part, key count) at construction, then `keyCount` key records, in key order, as the
 * caller hands them over (all at once, or a run per event-loop turn: each record's bytes depend on that record
 * alone). A record is never split across pieces. `prefix` (a container's header, e.g. a member snapshot's) goes
 * before the snapshot, so the snapshot never has to be copied into one.
 *
 * Why pieces: one buffer for a snapshot of a million keys is hundreds of megabytes allocated at once. Allocating
 * it stopped a leader for ~110 ms, and V8 answers such a jump in external memory with a full collection at once
 * (~530 ms more). Pieces can go to the file as they are made (DurableStorage.beginSnapshot) and be dropped.
 */
export class SnapshotWriter implements RecordSink {
  private piece: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.piece.buffer);
  private p = 0;
  private left: number;
  /** Bytes handed over so far. */
  private emitted = 0;
  /** Pieces of `pieceBytes` released by the sink, to be filled again. */
  private readonly released: Uint8Array[] = [];

  constructor(
    meta: Uint8Array,
    keyCount: number,
    private readonly emit: SnapshotPieceSink,
    prefix?: Uint8Array,
    private readonly pieceBytes = SNAPSHOT_PIECE_BYTES,
  ) {
    const start = prefix?.length ?? 0;
    const head = new Uint8Array(start + HEADER_BYTES + meta.length + 8);
    const view = new DataView(head.buffer);
    if (prefix) head.set(prefix, 0);
    head.set(MAGIC, start);
    head[start + 4] = SNAPSHOT_FORMAT_VERSION;
    view.setUint32(start + 5, meta.length, true);
    head.set(meta, start + HEADER_BYTES);
    view.setFloat64(start + HEADER_BYTES + meta.length, keyCount, true);
    this.left = keyCount;
    this.hand(head);
  }

  write(kv: KeyValue): void {
    this.writeRecord(kv.key, kv.value, 0, kv.value.length, kv.createRevision, kv.modRevision, kv.version, kv.lease);
  }

  /** A record given by its fields, its value being `length` bytes of `bytes` at `start` (KvStore.writeRecord). */
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
    if (this.left === 0) throw new Error("snapshot: more records than the key count");
    this.left--;
    // A UTF-16 unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4).
    this.makeRoom(RECORD_FIXED_BYTES + 3 * key.length + length);
    const out = this.piece;
    const view = this.view;
    let p = this.p;
    const keyStart = p + 4;
    const keyEnd = writeUtf8(key, out, keyStart);
    view.setUint32(p, keyEnd - keyStart, true);
    p = keyEnd;
    view.setUint32(p, length, true);
    out.set(start === 0 && length === bytes.length ? bytes : bytes.subarray(start, start + length), p + 4);
    p += 4 + length;
    view.setFloat64(p, createRevision, true);
    view.setFloat64(p + 8, modRevision, true);
    view.setFloat64(p + 16, version, true);
    view.setFloat64(p + 24, lease, true);
    this.p = p + 32;
  }

  /** Hands over the last piece once every record was written; returns the bytes handed over, prefix included. */
  finish(): number {
    if (this.left !== 0) throw new Error(`snapshot: ${this.left} records were not written`);
    this.handPiece();
    return this.emitted;
  }

  /** Makes `bytes` of room in the current piece, handing it over and starting the next when it has less. */
  private makeRoom(bytes: number): void {
    if (this.p + bytes <= this.piece.length) return;
    this.handPiece();
    this.piece = (bytes <= this.pieceBytes ? this.released.pop() : undefined) ?? new Uint8Array(Math.max(this.pieceBytes, bytes));
    this.view = new DataView(this.piece.buffer, this.piece.byteOffset, this.piece.byteLength);
  }

  private handPiece(): void {
    if (this.p > 0) {
      const whole = this.piece;
      const reusable = whole.length === this.pieceBytes;
      this.hand(whole.subarray(0, this.p), () => {
        if (reusable && this.released.length < REUSED_PIECES) this.released.push(whole);
      });
    }
    this.piece = new Uint8Array(0);
    this.p = 0;
  }

  private hand(piece: Uint8Array, release: () => void = () => {}): void {
    this.emitted += piece.length;
    this.emit(piece, release);
  }
}

/** Collects a snapshot's pieces (SnapshotPieceSink) for those who want it as one buffer: tests, tools, exports. */
export class SnapshotPieces {
  private readonly pieces: Uint8Array[] = [];
  readonly emit: SnapshotPieceSink = (piece) => void this.pieces.push(piece);

  /** The pieces so far, as one buffer. */
  bytes(): Uint8Array {
    return this.pieces.length === 1 ? this.pieces[0] : concatBytes(this.pieces);
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The whole snapshot, its records as KeyValues with their own copies of the values (tests and tools). */
export function decodeSnapshot(bytes: Uint8Array): SnapshotState {
  const kvs: KeyValue[] = [];
  const state = readSnapshot(bytes, {
    writeRecord(key, from, start, length, createRevision, modRevision, version, lease) {
      kvs.push({ key, value: from.slice(start, start + length), createRevision, modRevision, version, lease });
    },
  });
  return { ...state, kvs };
}

/**
 * Reads a snapshot: returns everything but the records, and hands the records to `records` in key order, by
 * their fields (StateMachine.restore loads them straight into a KvStore, making no object per record). Throws
 * SnapshotFormatError on anything malformed, possibly after some records were handed over.
 */
export function readSnapshot(bytes: Uint8Array, records: RecordSink): Omit<SnapshotState, "kvs"> {
  const parser = new SnapshotParser(bytes);
  parser.step(Infinity, records);
  return parser.state;
}

/**
 * Reads a snapshot a run at a time (a restore at a million keys is seconds of work; see restore-job.ts). The
 * header and the meta part are read and checked when it is made, the records by step(), each charged its bytes
 * plus RESTORE_WORK_PER_RECORD against the budget; the check that nothing trails the last record comes with the last step. Every
 * malformation throws SnapshotFormatError, from the constructor or from the step that reaches it.
 */
export class SnapshotParser {
  /** Everything but the records. */
  readonly state: Omit<SnapshotState, "kvs">;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  /** Where the next record starts. */
  private at: number;
  private recordsRead = 0;
  private previousKey = "";

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array) || bytes.length < HEADER_BYTES + 8) {
      throw new SnapshotFormatError("too short to be a snapshot");
    }
    for (let i = 0; i < MAGIC.length; i++) {
      if (bytes[i] !== MAGIC[i]) throw new SnapshotFormatError('missing the "CSMS" magic');
    }
    const version = bytes[4];
    if (!READABLE_VERSIONS.has(version)) {
      throw new SnapshotFormatError(
        `format version ${version} (this node reads ${[...READABLE_VERSIONS].join(" and ")})`,
      );
    }
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const view = this.view;
    try {
      const metaLength = view.getUint32(5, true);
      if (HEADER_BYTES + metaLength + 8 > bytes.length) throw new SnapshotFormatError("the meta part runs past the end");
      const meta = packr.unpack(bytes.subarray(HEADER_BYTES, HEADER_BYTES + metaLength)) as unknown[];
      const tupleLength = version === 1 ? 7 : 8;
      if (!Array.isArray(meta) || meta.length !== tupleLength) {
        throw new SnapshotFormatError(`meta section is not a ${tupleLength}-tuple (format ${version})`);
      }
      const keyCount = view.getFloat64(HEADER_BYTES + metaLength, true);
      if (!Number.isSafeInteger(keyCount) || keyCount < 0) throw new SnapshotFormatError(`bad key count ${keyCount}`);
      this.at = HEADER_BYTES + metaLength + 8;
      const [lastApplied, revision, compactRevision, leases, sessions, history, extensions, space] = meta as [
        number,
        number,
        number,
        SnapshotState["leases"],
        SnapshotState["sessions"],
        WatchEvent[],
        SnapshotState["extensions"],
        unknown,
      ];
      const { quotaBytes, alarms } = decodeSpace(space, version);
      this.state = {
        lastApplied,
        revision,
        compactRevision,
        leases,
        sessions,
        history,
        extensions,
        keyCount,
        quotaBytes,
        alarms,
      };
    } catch (e) {
      throw asFormatError(e);
    }
  }

  /**
   * Hands over records until about `budget` bytes of them were read (at least one while any is left); true once
   * the last was read and nothing trails it.
   */
  step(budget: number, records: RecordSink): boolean {
    const { bytes, view, state } = this;
    let p = this.at;
    let left = budget;
    try {
      for (; this.recordsRead < state.keyCount && left > 0; this.recordsRead++) {
        const i = this.recordsRead;
        const keyLength = view.getUint32(p, true);
        const key = readKey(bytes, p + 4, keyLength);
        p += 4 + keyLength;
        const valueLength = view.getUint32(p, true);
        if (p + 4 + valueLength + 32 > bytes.length) throw new SnapshotFormatError(`key record ${i} is truncated`);
        if (i > 0 && !(this.previousKey < key)) throw new SnapshotFormatError(`keys out of order at record ${i}`);
        this.previousKey = key;
        const valueAt = p + 4;
        p += 4 + valueLength;
        records.writeRecord(
          key,
          bytes,
          valueAt,
          valueLength,
          view.getFloat64(p, true),
          view.getFloat64(p + 8, true),
          view.getFloat64(p + 16, true),
          view.getFloat64(p + 24, true),
        );
        p += 32;
        left -= RESTORE_WORK_PER_RECORD + RECORD_FIXED_BYTES + keyLength + valueLength;
        this.at = p;
      }
    } catch (e) {
      throw asFormatError(e);
    }
    if (this.recordsRead < state.keyCount) return false;
    if (p !== bytes.length) throw new SnapshotFormatError(`${bytes.length - p} trailing bytes after the last key`);
    return true;
  }
}

/** A RangeError of a read past the end, or msgpackr's error, as what it means here. */
function asFormatError(e: unknown): SnapshotFormatError {
  return e instanceof SnapshotFormatError ? e : new SnapshotFormatError(`damaged: ${(e as Error).message}`);
}

/** The format-2 [quotaBytes, alarms] element (absent in format 1). */
function decodeSpace(space: unknown, version: number): Pick<SnapshotState, "quotaBytes" | "alarms"> {
  if (version === 1) return { quotaBytes: undefined, alarms: [] };
  const [quotaBytes, alarms] = Array.isArray(space) ? (space as unknown[]) : [];
  if (!Number.isSafeInteger(quotaBytes) || (quotaBytes as number) < 1) {
    throw new SnapshotFormatError(`storage quota ${String(quotaBytes)} is not a positive integer`);
  }
  if (
    !Array.isArray(alarms) ||
    !alarms.every((a) => Array.isArray(a) && a[0] === "NO_SPACE" && Number.isSafeInteger(a[1]))
  ) {
    throw new SnapshotFormatError('alarms are not ["NO_SPACE", raisedAt] pairs');
  }
  return { quotaBytes: quotaBytes as number, alarms: alarms as SnapshotState["alarms"] };
}

/** Decodes a key; short ASCII keys (the common case) skip TextDecoder's per-call overhead. */
function readKey(bytes: Uint8Array, start: number, length: number): string {
  const end = start + length;
  if (length <= 256) {
    let ascii = true;
    for (let i = start; i < end; i++) if (bytes[i] >= 0x80) ascii = false;
    // fromCharCode over the whole key yields a flat string (cheap to hash in the Map), unlike `+=`.
    if (ascii) return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
  }
  return decoder.decode(bytes.subarray(start, end));
}

/** Writes `s` as UTF-8 at `at`; returns the end offset. `s` has no lone surrogates (keys are validated). */
function writeUtf8(s: string, out: Uint8Array, at: number): number {
  let p = at;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) out[p++] = c;
    else if (c < 0x800) {
      out[p++] = 0xc0 | (c >> 6);
      out[p++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      out[p++] = 0xf0 | (c >> 18);
      out[p++] = 0x80 | ((c >> 12) & 0x3f);
      out[p++] = 0x80 | ((c >> 6) & 0x3f);
      out[p++] = 0x80 | (c & 0x3f);
    } else {
      out[p++] = 0xe0 | (c >> 12);
      out[p++] = 0x80 | ((c >> 6) & 0x3f);
      out[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}
