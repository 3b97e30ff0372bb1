// The real file system (node:fs) behind the FileSystem interface. The write path uses plain fd callbacks rather
// than FileHandle promises: the fdatasync is issued straight from the write's completion, which is measurably
// faster at thousands of fsyncs per second.
//
// A WAL batch of up to INLINE_SYNC_BYTES is written and synced inline, on the event loop, instead of on libuv's
// threadpool: through the threadpool each batch costs four thread wake-ups (the write handed over and handed back,
// then the fdatasync), each 0.1–0.25 ms of this machine's time, paid by every member for every batch. The loop
// waits for the disk instead, ~0.2 ms for a batch of 64 KiB and ~2 ms for 1 MiB here (4 KiB to 1 MiB, p50). Larger
// batches (a member catching up, the WAL's runway of zeros) still go to the threadpool. A disk that stalls then
// stalls the member's loop, heartbeats included, as etcd's raft loop is held by its WAL's fsync; a stall long enough
// to matter leaves the member's commits waiting either way.

import fs from "node:fs";
import { acquireLock, releaseLock } from "./data-dir.js";
import type { FileHandle, FileSystem, OpenMode } from "./file-system.js";

/** The largest write made durable inline (see above): ~2 ms of the event loop on this project's disk. */
const INLINE_SYNC_BYTES = 1024 * 1024;

const FLAGS: Record<OpenMode, string> = { readWrite: "r+", createNew: "wx", truncate: "w" };

class NodeFileHandle implements FileHandle {
  constructor(
    private readonly fd: number,
    private readonly path: string,
  ) {}

  /**
   * One writev of all the parts: no copy into one buffer first (a batch of a few MB took a `Buffer.concat` of
   * tens of milliseconds on the event loop, all memory copying). libuv writes a partial writev's rest itself;
   * should a write still come back short, the rest of the parts is written from where it stopped.
   */
  write(parts: readonly Uint8Array[], position: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const writeFrom = (rest: readonly Uint8Array[], at: number): void => {
        fs.writev(this.fd, rest as Uint8Array[], at, (err, written) => {
          if (err) return reject(err);
          if (written <= 0) return reject(new Error(`write to ${this.path} made no progress`));
          const left = skipBytes(rest, written);
          if (left.length > 0) return writeFrom(left, at + written);
          resolve();
        });
      };
      writeFrom(parts, position);
    });
  }

  writeAndSync(parts: readonly Uint8Array[], position: number): Promise<void> {
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    if (bytes > INLINE_SYNC_BYTES) {
      return this.write(parts, position).then(
        () => new Promise((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve()))),
      );
    }
    // In a microtask, not before returning: the caller's turn has queued what it sends (a leader's appends to its
    // followers in a microtask, replies to clients in a tick), and that goes out first, so the followers' fsyncs
    // overlap this one instead of following it.
    return Promise.resolve().then(() => this.writeAndSyncInline(parts, position));
  }

  private writeAndSyncInline(parts: readonly Uint8Array[], position: number): void {
    let rest = parts;
    for (let at = position; rest.length > 0;) {
      const written = fs.writevSync(this.fd, rest as Uint8Array[], at);
      if (written <= 0) throw new Error(`write to ${this.path} made no progress`);
      rest = skipBytes(rest, written);
      at += written;
    }
    fs.fdatasyncSync(this.fd);
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fsync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => fs.close(this.fd, (err) => (err ? reject(err) : resolve())));
  }
}

/** `parts` without their first `bytes` bytes. */
function skipBytes(parts: readonly Uint8Array[], bytes: number): readonly Uint8Array[] {
  let i = 0;
  let left = bytes;
  while (i < parts.length && left >= parts[i].length) left -= parts[i++].length;
  if (i === parts.length) return [];
  return [parts[i].subarray(left), ...parts.slice(i + 1)];
}

/** Reads into `into` from `position` until it is full or the file ends (libuv's threadpool: off the event loop). */
function readInto(p: string, position: number, into: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(p, "r", (openErr, fd) => {
      if (openErr) return reject(openErr);
      const done = (err: Error | null, got: number) => fs.close(fd, () => (err ? reject(err) : resolve(got)));
      const readFrom = (got: number): void =>
        fs.read(fd, into, got, into.length - got, position + got, (err, n) => {
          if (err) return done(err, got);
          if (n === 0 || got + n === into.length) return done(null, got + n);
          readFrom(got + n);
        });
      if (into.length === 0) return done(null, 0);
      readFrom(0);
    }),
  );
}

function syncDirSync(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export const nodeFileSystem: FileSystem = {
  exists: (p) => fs.existsSync(p),
  isDirectory: (p) => fs.statSync(p).isDirectory(),
  size: (p) => fs.statSync(p).size,
  list: (dir) => fs.readdirSync(dir),
  readFile: (p) => fs.readFileSync(p),
  readAt(p, position, length) {
    const fd = fs.openSync(p, "r");
    try {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, buf, got, length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
  },
  read: readInto,
  mkdirSync: (p) => void fs.mkdirSync(p, { recursive: true }),
  writeFileSync(p, data) {
    const fd = fs.openSync(p, "w");
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  truncateSync(p, size) {
    const fd = fs.openSync(p, "r+");
    try {
      fs.ftruncateSync(fd, size);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  renameSync: (from, to) => fs.renameSync(from, to),
  removeSync: (p) => fs.rmSync(p, { force: true }),
  syncDirSync,

  open: (p, mode) =>
    new Promise((resolve, reject) =>
      fs.open(p, FLAGS[mode], (err, fd) => (err ? reject(err) : resolve(new NodeFileHandle(fd, p)))),
    ),
  rename: (from, to) => fs.promises.rename(from, to),
  remove: (p) => fs.promises.rm(p, { force: true }),
  syncDir: (dir) =>
    new Promise((resolve, reject) =>
      fs.open(dir, "r", (err, fd) => {
        if (err) return reject(err);
        fs.fsync(fd, (syncErr) => fs.close(fd, () => (syncErr ? reject(syncErr) : resolve())));
      }),
    ),

  lock: acquireLock,
  unlock: releaseLock,
};
