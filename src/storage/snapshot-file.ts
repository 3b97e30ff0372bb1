// Snapshot files: snap/<term:16 hex>-<index:16 hex>.snap, written atomically (temp file, fsync, rename,
// directory fsync), a piece at a time (SnapshotFileWriter), and CRC-checked on load.
//
//   "CSNP" | u32 LE format version (1) | u32 LE crc32c of everything after this 16-byte header
//   | u32 LE metadata length | metadata (msgpack [index, term, confState]) | snapshot data

import path from "node:path";
import { Packr } from "msgpackr";
import { assert } from "../assert.js";
import type { ConfState, Snapshot, SnapshotMetadata, SnapshotReader } from "../raft/types.js";
import { crc32c } from "./crc32c.js";
import { StorageCorruptionError } from "./errors.js";
import type { FileHandle, FileSystem } from "./file-system.js";

const MAGIC = 0x504e5343; // "CSNP" read as u32 LE
const FILE_VERSION = 1;
const HEADER_BYTES = 16;
/**
 * The checksum of one piece is the longest the event loop waits for it while a large snapshot is written: about
 * half a millisecond (crc32c.ts, 2 GB/s on the benchmark machine).
 */
const WRITE_PIECE_BYTES = 1 << 20;
/**
 * A sync of a snapshot file being written starts every SYNC_EVERY_BYTES, not only at `finish`. With the page
 * cache's default thresholds (a tenth of memory), a file of hundreds of megabytes stays dirty until its final
 * fsync, and then the disk flushes all of it at once: a WAL fdatasync issued meanwhile waits behind that flush (the
 * WAL's write is inline, so the member's event loop waits too). `npm run bench:storage` measures it: the longest
 * one-entry save beside a 256 MB snapshot save was 6 ms with these syncs, 91–183 ms without, for about the same
 * time to save the snapshot (0.7–0.85 s).
 */
const SYNC_EVERY_BYTES = 4 << 20;
/**
 * A snapshot file is read back at a member's start a chunk at a time: each chunk is read off the event loop, then
 * checksummed on it (about 2 ms for 4 MiB).
 */
const READ_CHUNK_BYTES = 4 << 20;
/** Chunks read at once: libuv's threadpool has four threads. */
const READS_IN_FLIGHT = 4;
const packr = new Packr({ useRecords: false });

const hex16 = (n: number): string => n.toString(16).padStart(16, "0");

export const snapshotFileName = (term: number, index: number): string => `${hex16(term)}-${hex16(index)}.snap`;

/** Parses a snapshot file name, or undefined for files that are not snapshots. */
export function parseSnapshotFileName(name: string): { term: number; index: number } | undefined {
  const m = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/.exec(name);
  if (!m) return undefined;
  return { term: Number.parseInt(m[1], 16), index: Number.parseInt(m[2], 16) };
}

/**
 * A snapshot file written a piece at a time as its bytes are made (a member's own snapshot, taken a run per
 * event-loop turn: DurableStorage.beginSnapshot), so that no buffer of the whole snapshot ever exists. The file
 * is written under a temporary name: the header goes first without the checksum, the pieces in order after the
 * metadata, and at `finish` the header again with the checksum, then fsync, rename and a sync of the directory;
 * the file counts only once renamed. `abort` (or any failure) leaves no file under the final name.
 *
 * `append` only queues: each piece is checksummed and written in its own turn, at most WRITE_PIECE_BYTES at a
 * time, after the write before it completes; a sync of the file starts every SYNC_EVERY_BYTES. A piece is held only
 * until it is written.
 */
export class SnapshotFileWriter {
  readonly file: string;
  private readonly tmp: string;
  private readonly header: Buffer;
  private readonly handle: Promise<FileHandle>;
  /** Every queued write, in order; never rejects: the first failure is kept in `failure` and skips the rest. */
  private chain: Promise<void>;
  private failure: Error | undefined;
  private crc: number;
  private position: number;
  /** Where the last sync started (SYNC_EVERY_BYTES). */
  private syncedTo = 0;
  /**
   * The sync in flight, if any; it never rejects (a failure is kept in `failure`). The writes do not wait for it
   * (were they to, the snapshot's pieces, made faster than a busy disk syncs them, would pile up in memory); the
   * file is not closed before it ends.
   */
  private syncing: Promise<void> | undefined;
  private ended = false;

  /**
   * `attempt` tells this writer's temporary file from any other writer's for the same snapshot: one abandoned at
   * that index may still be removing its own file, late, when the next one begins (a shared name lost the newer
   * file). Recovery removes every temporary file, whatever its attempt.
   */
  constructor(
    private readonly fs: FileSystem,
    private readonly snapDir: string,
    metadata: SnapshotMetadata,
    attempt: number,
  ) {
    const { index, term, confState } = metadata;
    const meta = packr.pack([index, term, confState]);
    const header = Buffer.alloc(HEADER_BYTES + 4);
    header.writeUInt32LE(MAGIC, 0);
    header.writeUInt32LE(FILE_VERSION, 4);
    header.writeUInt32LE(meta.length, 16);
    this.header = header;
    this.crc = crc32c(meta, crc32c(header, 0, 16, 20));
    this.position = header.length + meta.length;
    this.file = path.join(snapDir, snapshotFileName(term, index));
    this.tmp = `${this.file}.${attempt}.tmp`;
    this.handle = fs.open(this.tmp, "truncate");
    this.chain = this.handle.then((fh) => fh.write([header, meta], 0)).catch((err: unknown) => this.fail(err));
  }

  /** Queues the next bytes of the snapshot; `written` is called once they are written (or dropped: a failure). */
  append(piece: Uint8Array, written?: () => void): void {
    assert(!this.ended, "snapshot file: append after finish or abort");
    for (let at = 0; at < piece.length; at += WRITE_PIECE_BYTES) {
      const slice = piece.subarray(at, at + WRITE_PIECE_BYTES);
      const position = this.position;
      this.position += slice.length;
      this.chain = this.then(async (fh) => {
        this.crc = crc32c(slice, this.crc);
        await fh.write([slice], position);
        const end = position + slice.length;
        if (this.syncing === undefined && end - this.syncedTo >= SYNC_EVERY_BYTES) {
          this.syncedTo = end;
          this.syncing = fh
            .sync()
            .catch((err: unknown) => this.fail(err))
            .finally(() => (this.syncing = undefined));
        }
      });
    }
    if (written) this.chain = this.chain.then(written);
  }

  /** Writes the checksummed header and makes the file durable under its name; resolves with that name. */
  async finish(): Promise<string> {
    assert(!this.ended, "snapshot file: finish twice, or after abort");
    this.ended = true;
    await this.chain;
    await this.syncing;
    const fh = await this.handle.catch((err: unknown) => Promise.reject(this.failure ?? err));
    try {
      if (this.failure) throw this.failure;
      this.header.writeUInt32LE(this.crc, 8);
      await fh.write([this.header], 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.fs.rename(this.tmp, this.file);
    await this.fs.syncDir(this.snapDir);
    return this.file;
  }

  /** Gives up on the file: the queued writes end, the temporary file is removed. Never rejects. */
  async abort(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.failure ??= new Error("snapshot file aborted");
    await this.chain;
    await this.syncing;
    try {
      await (await this.handle).close();
      await this.fs.remove(this.tmp);
    } catch {
      // An orphaned temporary file is removed on the next open.
    }
  }

  /** Runs `write` after everything queued, unless something failed (or the file was aborted) before. */
  private then(write: (fh: FileHandle) => Promise<void>): Promise<void> {
    return this.chain.then(async () => {
      if (this.failure) return;
      try {
        await write(await this.handle);
      } catch (err) {
        this.fail(err);
      }
    });
  }

  private fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
  }
}

/** Writes a whole snapshot's file (one installed from the leader), durably; resolves with its name. */
export function writeSnapshotFile(fs: FileSystem, snapDir: string, snap: Snapshot, attempt: number): Promise<string> {
  const w = new SnapshotFileWriter(fs, snapDir, snap.metadata, attempt);
  w.append(snap.data);
  return w.finish();
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
  const { stored, metaLength } = readHeader(buf, file, buf.length);
  const got = crc32c(buf, 0, 16);
  if (stored !== got) throw checksumMismatch(file, stored, got);
  const metadata = readMetadata(buf.subarray(20, 20 + metaLength), file);
  // A view, not a copy: the buffer was read for this snapshot alone (files this large are never pooled).
  const data = new Uint8Array(buf.buffer, buf.byteOffset + 20 + metaLength, buf.length - 20 - metaLength);
  return { metadata, data };
}

/**
 * Reads a snapshot file and verifies its checksum a chunk at a time, asynchronously, so that a file of hundreds of
 * megabytes never holds the event loop: read whole and synchronously, twice at a member's start (recovery's
 * check, then the restore), a 294 MB file held it for 300 ms. The data is read straight into one buffer of its
 * size. Any damage is a StorageCorruptionError naming the file.
 */
export async function readSnapshotFile(fs: FileSystem, file: string): Promise<Snapshot> {
  const readRange = async (position: number, into: Uint8Array, fileSize: number): Promise<void> => {
    let got: number;
    try {
      got = await fs.read(file, position, into);
    } catch (err) {
      throw new StorageCorruptionError(file, position, `cannot read the snapshot file (${(err as Error).message})`, false);
    }
    if (got !== into.length) {
      throw new StorageCorruptionError(file, position + got, `snapshot file is shorter than its ${fileSize} bytes`, false);
    }
  };
  let fileSize: number;
  try {
    fileSize = fs.size(file);
  } catch (err) {
    throw new StorageCorruptionError(file, 0, `cannot read the snapshot file (${(err as Error).message})`, false);
  }
  const head = Buffer.alloc(HEADER_BYTES + 4);
  if (fileSize >= head.length) await readRange(0, head, fileSize);
  const { stored, metaLength } = readHeader(head, file, fileSize);
  const meta = Buffer.alloc(metaLength);
  await readRange(20, meta, fileSize);
  const metadata = readMetadata(meta, file);
  let crc = crc32c(meta, crc32c(head, 0, 16, 20));
  const start = 20 + metaLength;
  const size = fileSize - start;
  // READS_IN_FLIGHT chunks are read at once, and each is checksummed, in order, once read: one read at a time
  // waited a threadpool round trip per chunk.
  const chunks = Math.ceil(size / READ_CHUNK_BYTES);
  const data = Buffer.allocUnsafe(size);
  const chunk = (i: number): Buffer => data.subarray(i * READ_CHUNK_BYTES, Math.min(size, (i + 1) * READ_CHUNK_BYTES));
  const reads: Promise<void>[] = [];
  const startRead = (i: number): void => {
    if (i >= chunks) return;
    reads[i] = readRange(start + i * READ_CHUNK_BYTES, chunk(i), fileSize);
    reads[i].catch(() => {}); // a failure is thrown where the chunk is awaited, not as an unhandled rejection
  };
  for (let i = 0; i < READS_IN_FLIGHT; i++) startRead(i);
  for (let i = 0; i < chunks; i++) {
    await reads[i];
    crc = crc32c(chunk(i), crc);
    startRead(i + READS_IN_FLIGHT);
  }
  if (crc !== stored) throw checksumMismatch(file, stored, crc);
  return { metadata, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/**
 * Reads a snapshot file's data a range at a time, in order from the start (what the transport streams to a
 * follower), checking the checksum as it goes: the read that reaches the end throws StorageCorruptionError when the
 * file's checksum does not match, so a damaged file is never sent whole. Each read opens the file again, so a
 * reader left unfinished holds nothing; a file removed meanwhile (a newer snapshot) fails the read.
 */
export function snapshotFileReader(fs: FileSystem, file: string): SnapshotReader {
  const head = Buffer.from(fs.readAt(file, 0, HEADER_BYTES + 4));
  const fileSize = fs.size(file);
  const { stored, metaLength } = readHeader(head, file, fileSize);
  const meta = fs.readAt(file, 20, metaLength);
  readMetadata(meta, file);
  let crc = crc32c(meta, crc32c(head, 0, 16, 20));
  const start = 20 + metaLength;
  const size = fileSize - start;
  let next = 0;
  return {
    size,
    read(offset, length) {
      assert(offset === next, () => `snapshot file ${file}: read at ${offset}, the next in order is ${next}`);
      const want = Math.min(length, size - offset);
      const bytes = fs.readAt(file, start + offset, want);
      if (bytes.length !== want) {
        throw new StorageCorruptionError(file, start + offset, `snapshot file is shorter than its ${fileSize} bytes`, false);
      }
      crc = crc32c(bytes, crc);
      next += bytes.length;
      if (next === size && crc !== stored) throw checksumMismatch(file, stored, crc);
      return bytes;
    },
  };
}

/** Checks the 20 bytes a snapshot file starts with; returns its checksum and metadata length. */
function readHeader(head: Buffer, file: string, fileSize: number): { stored: number; metaLength: number } {
  const bad = (offset: number, reason: string) => new StorageCorruptionError(file, offset, reason, false);
  if (head.length < HEADER_BYTES + 4 || fileSize < HEADER_BYTES + 4) {
    throw bad(0, `snapshot file is ${fileSize} bytes, shorter than its header`);
  }
  if (head.readUInt32LE(0) !== MAGIC) throw bad(0, "not a snapshot file (bad magic)");
  const version = head.readUInt32LE(4);
  if (version !== FILE_VERSION) throw bad(4, `snapshot file version ${version}, this build reads ${FILE_VERSION}`);
  const metaLength = head.readUInt32LE(16);
  if (HEADER_BYTES + 4 + metaLength > fileSize) throw bad(16, "snapshot metadata length runs past the end of file");
  return { stored: head.readUInt32LE(8), metaLength };
}

/** Decodes a snapshot file's metadata and checks it against the file's name. */
function readMetadata(meta: Uint8Array, file: string): SnapshotMetadata {
  const bad = (reason: string) => new StorageCorruptionError(file, 20, reason, false);
  let decoded: unknown;
  try {
    decoded = packr.unpack(meta);
  } catch (err) {
    throw bad(`undecodable snapshot metadata (${(err as Error).message})`);
  }
  if (!Array.isArray(decoded) || decoded.length !== 3 || typeof decoded[0] !== "number" || typeof decoded[1] !== "number") {
    throw bad("malformed snapshot metadata");
  }
  const [index, term, confState] = decoded as [number, number, ConfState];
  const named = parseSnapshotFileName(path.basename(file));
  if (named && (named.index !== index || named.term !== term)) {
    throw bad(`metadata says (term ${term}, index ${index}) but the file name says (${named.term}, ${named.index})`);
  }
  return { index, term, confState };
}

function checksumMismatch(file: string, stored: number, computed: number): StorageCorruptionError {
  return new StorageCorruptionError(file, 8, `snapshot checksum mismatch (stored ${hex32(stored)}, computed ${hex32(computed)})`, false);
}

const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
