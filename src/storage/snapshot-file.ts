// Snapshot files: snap/<term:16 hex>-<index:16 hex>.snap, written atomically (temp file, fsync, rename,
// directory fsync) and CRC-checked on load.
//
//   "CSNP" | u32 LE format version (1) | u32 LE crc32c of everything after this 16-byte header
//   | u32 LE metadata length | metadata (msgpack [index, term, confState]) | snapshot data

import path from "node:path";
import { Packr } from "msgpackr";
import type { ConfState, Snapshot } from "../raft/types.js";
import { crc32c } from "./crc32c.js";
import { StorageCorruptionError } from "./errors.js";
import type { FileSystem } from "./file-system.js";

const MAGIC = 0x504e5343; // "CSNP" read as u32 LE
const FILE_VERSION = 1;
const HEADER_BYTES = 16;
/**
 * The checksum of one piece is the longest the event loop waits for it while a large snapshot is written: crc32c.ts
 * ran at 230 MB/s on the 2-core benchmark machine under load, so about 18 ms.
 */
const WRITE_PIECE_BYTES = 4 << 20;
const packr = new Packr({ useRecords: false });

const hex16 = (n: number): string => n.toString(16).padStart(16, "0");

export const snapshotFileName = (term: number, index: number): string => `${hex16(term)}-${hex16(index)}.snap`;

/** Parses a snapshot file name, or undefined for files that are not snapshots. */
export function parseSnapshotFileName(name: string): { term: number; index: number } | undefined {
  const m = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/.exec(name);
  if (!m) return undefined;
  return { term: Number.parseInt(m[1], 16), index: Number.parseInt(m[2], 16) };
}

export async function writeSnapshotFile(fs: FileSystem, snapDir: string, snap: Snapshot): Promise<string> {
  const { index, term, confState } = snap.metadata;
  const meta = packr.pack([index, term, confState]);
  const header = Buffer.alloc(HEADER_BYTES + 4);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(FILE_VERSION, 4);
  header.writeUInt32LE(meta.length, 16);
  let crc = crc32c(meta, crc32c(header, 0, 16, 20));

  const file = path.join(snapDir, snapshotFileName(term, index));
  const tmp = `${file}.tmp`;
  const fh = await fs.open(tmp, "truncate");
  try {
    const data = snap.data;
    if (data.length <= WRITE_PIECE_BYTES) {
      header.writeUInt32LE(crc32c(data, crc), 8);
      await fh.write([header, meta, data], 0);
    } else {
      // Checksummed and written a piece at a time, each write's wait letting the event loop run: the checksum of
      // a snapshot of hundreds of megabytes would hold it for a few hundred milliseconds. The header goes first
      // without the checksum and again with it at the end; the file counts only once synced and renamed.
      await fh.write([header, meta], 0);
      const start = header.length + meta.length;
      for (let at = 0; at < data.length; at += WRITE_PIECE_BYTES) {
        const piece = data.subarray(at, at + WRITE_PIECE_BYTES);
        crc = crc32c(piece, crc);
        await fh.write([piece], start + at);
      }
      header.writeUInt32LE(crc, 8);
      await fh.write([header], 0);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await fs.syncDir(snapDir);
  return file;
}

/** Loads and verifies a snapshot file; any damage is a StorageCorruptionError naming the file. */
export function loadSnapshotFile(fs: FileSystem, file: string): Snapshot {
  let buf: Buffer;
  try {
    const bytes = fs.readFile(file);
    buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (err) {
    throw new StorageCorruptionError(file, 0, `cannot read the snapshot file (${(err as Error).message})`, false);
  }
  const bad = (offset: number, reason: string): StorageCorruptionError =>
    new StorageCorruptionError(file, offset, reason, false);
  if (buf.length < HEADER_BYTES + 4) throw bad(0, `snapshot file is ${buf.length} bytes, shorter than its header`);
  if (buf.readUInt32LE(0) !== MAGIC) throw bad(0, "not a snapshot file (bad magic)");
  const version = buf.readUInt32LE(4);
  if (version !== FILE_VERSION) throw bad(4, `snapshot file version ${version}, this build reads ${FILE_VERSION}`);
  const want = buf.readUInt32LE(8);
  const got = crc32c(buf, 0, 16);
  if (want !== got) throw bad(8, `snapshot checksum mismatch (stored ${hex32(want)}, computed ${hex32(got)})`);
  const metaLength = buf.readUInt32LE(16);
  if (HEADER_BYTES + 4 + metaLength > buf.length) throw bad(16, "snapshot metadata length runs past the end of file");
  let meta: unknown;
  try {
    meta = packr.unpack(buf.subarray(20, 20 + metaLength));
  } catch (err) {
    throw bad(20, `undecodable snapshot metadata (${(err as Error).message})`);
  }
  if (!Array.isArray(meta) || meta.length !== 3 || typeof meta[0] !== "number" || typeof meta[1] !== "number") {
    throw bad(20, "malformed snapshot metadata");
  }
  const [index, term, confState] = meta as [number, number, ConfState];
  const named = parseSnapshotFileName(path.basename(file));
  if (named && (named.index !== index || named.term !== term)) {
    throw bad(
      20,
      `metadata says (term ${term}, index ${index}) but the file name says (${named.term}, ${named.index})`,
    );
  }
  // A view, not a copy: the buffer was read for this snapshot alone (files this large are never pooled).
  const data = new Uint8Array(buf.buffer, buf.byteOffset + 20 + metaLength, buf.length - 20 - metaLength);
  return { metadata: { index, term, confState }, data };
}

const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
