// One simulated member's disk behind the FileSystem interface that DurableStorage uses, with page-cache
// semantics — what survives a crash is what was made durable, and not a byte more unless chance allows:
// - a write lands in the cache; only a successful sync of its file makes it durable. On a crash each file
//   keeps its durable bytes plus a random prefix of the writes made since (the last one possibly cut short at
//   any byte, or written only up to a sector boundary with zeros after: the size grew before the data did);
// - creating, renaming or removing a directory entry is durable only once the directory is synced; on a crash
//   each directory keeps a random prefix of its entry changes since;
// - a sync can be made to fail (EIO). The cache then drops the written data it could not write back (Linux
//   marks the pages clean: the data is gone although the write succeeded), so a caller that carried on would
//   build on data that is not there.
// Asynchronous calls complete in order after a latency drawn by the owner (a slow disk is a fault); a crash
// drops every call still in progress: their promises never settle, as the process that made them is gone.

import { StorageLockedError } from "../src/storage/errors.js";
import type { FileHandle, FileSystem, OpenMode } from "../src/storage/file-system.js";
import type { Prng } from "./prng.js";
import { concatBytes } from "../src/bytes.js";

/** A write since the last sync, with what it replaced, so a crash can take it back. */
interface UnsyncedWrite {
  /** -1: the file was truncated to nothing. */
  position: number;
  bytes: Uint8Array;
  /** The bytes it overwrote and the file's length before it. */
  replaced: Uint8Array;
  lengthBefore: number;
}

interface SimFile {
  kind: "file";
  /** What a read sees (the page cache): the first `length` bytes of `buf`. */
  buf: Uint8Array;
  length: number;
  /** Writes since the last sync, oldest first: undoing them all gives the durable content. */
  unsynced: UnsyncedWrite[];
}

interface SimDir {
  kind: "dir";
  entries: Map<string, SimNode>;
  durable: Map<string, SimNode>;
  /** Entry changes since the last sync, oldest first (a crash keeps a prefix of them). */
  unsynced: ((entries: Map<string, SimNode>) => void)[];
}

type SimNode = SimFile | SimDir;

export interface DiskLatency {
  /** Virtual time units an asynchronous call takes: drawn per call. */
  (): number;
}

export interface SimDiskStats {
  writes: number;
  syncs: number;
  failedSyncs: number;
  tornFiles: number;
  lostEntries: number;
  /** Synchronous reads of WAL segments: log entries the member had released from memory, read back. */
  walReadsBack: number;
}

const errno = (code: string, message: string): Error => Object.assign(new Error(`${code}: ${message}`), { code });

function newDir(): SimDir {
  return { kind: "dir", entries: new Map(), durable: new Map(), unsynced: [] };
}

export class SimFileSystem implements FileSystem {
  private readonly root: SimDir = newDir();
  private readonly locks = new Set<string>();
  /** Incremented by a crash: calls made before it never complete. */
  private epoch = 0;
  /** Virtual time the newest asynchronous call completes (calls complete in order). */
  private lastDone = 0;
  /** Probability that a sync fails (EIO). */
  syncFailureRate = 0;
  readonly stats: SimDiskStats = { writes: 0, syncs: 0, failedSyncs: 0, tornFiles: 0, lostEntries: 0, walReadsBack: 0 };

  constructor(
    private readonly rng: Prng,
    /** Runs `fn` at virtual time `at` (the simulation's event queue). */
    private readonly schedule: (at: number, fn: () => void) => void,
    private readonly now: () => number,
    /** How long the next asynchronous call takes. */
    public latency: DiskLatency,
  ) {}

  // ---------------------------------------------------------------------------------------------- lookups

  private parts(path: string): string[] {
    if (!path.startsWith("/")) throw errno("EINVAL", `simulated paths are absolute, got ${path}`);
    return path.split("/").filter((p) => p !== "" && p !== ".");
  }

  private lookup(path: string): SimNode | undefined {
    let node: SimNode = this.root;
    for (const p of this.parts(path)) {
      if (node.kind !== "dir") return undefined;
      const next = node.entries.get(p);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  private parentOf(path: string): { dir: SimDir; name: string } {
    const parts = this.parts(path);
    const name = parts.pop();
    if (name === undefined) throw errno("EINVAL", "the root has no parent");
    const dir = this.lookup("/" + parts.join("/"));
    if (dir === undefined) throw errno("ENOENT", `no directory ${"/" + parts.join("/")}`);
    if (dir.kind !== "dir") throw errno("ENOTDIR", `${"/" + parts.join("/")} is a file`);
    return { dir, name };
  }

  private file(path: string): SimFile {
    const node = this.lookup(path);
    if (node === undefined) throw errno("ENOENT", `no file ${path}`);
    if (node.kind !== "file") throw errno("EISDIR", `${path} is a directory`);
    return node;
  }

  private dir(path: string): SimDir {
    const node = this.lookup(path);
    if (node === undefined) throw errno("ENOENT", `no directory ${path}`);
    if (node.kind !== "dir") throw errno("ENOTDIR", `${path} is a file`);
    return node;
  }

  /** Changes `dir`'s entries now; the same change is replayed on its durable entries if a crash keeps it. */
  private change(dir: SimDir, op: (entries: Map<string, SimNode>) => void): void {
    op(dir.entries);
    dir.unsynced.push(op);
  }

  private setEntry(dir: SimDir, name: string, node: SimNode | null): void {
    this.change(dir, (entries) => (node === null ? entries.delete(name) : entries.set(name, node)));
  }

  // ------------------------------------------------------------------------------------ synchronous calls

  exists(path: string): boolean {
    return this.lookup(path) !== undefined;
  }

  isDirectory(path: string): boolean {
    const node = this.lookup(path);
    if (node === undefined) throw errno("ENOENT", `no such path ${path}`);
    return node.kind === "dir";
  }

  size(path: string): number {
    return this.file(path).length;
  }

  list(dir: string): string[] {
    return [...this.dir(dir).entries.keys()].sort();
  }

  readFile(path: string): Uint8Array {
    const f = this.file(path);
    return f.buf.slice(0, f.length);
  }

  readAt(path: string, position: number, length: number): Uint8Array {
    if (path.endsWith(".wal")) this.stats.walReadsBack++; // recovery reads segments with read(), not this
    return this.bytesAt(path, position, length);
  }

  private bytesAt(path: string, position: number, length: number): Uint8Array {
    const f = this.file(path);
    return f.buf.slice(Math.min(position, f.length), Math.min(position + length, f.length));
  }

  mkdirSync(path: string): void {
    let node: SimDir = this.root;
    for (const p of this.parts(path)) {
      let next = node.entries.get(p);
      if (next === undefined) {
        next = newDir();
        this.setEntry(node, p, next);
      }
      if (next.kind !== "dir") throw errno("ENOTDIR", `${p} in ${path} is a file`);
      node = next;
    }
  }

  writeFileSync(path: string, data: Uint8Array): void {
    const f = this.createFile(path, true);
    this.writeAt(f, [data], 0);
    this.syncFile(f);
  }

  truncateSync(path: string, size: number): void {
    const f = this.file(path);
    f.length = Math.min(f.length, size);
    this.syncFile(f);
  }

  renameSync(from: string, to: string): void {
    const src = this.parentOf(from);
    const node = src.dir.entries.get(src.name);
    if (node === undefined) throw errno("ENOENT", `no such path ${from}`);
    const dst = this.parentOf(to);
    if (dst.dir === src.dir) {
      // Atomic within a directory (a journaled rename): the old name or the new one, never neither.
      this.change(src.dir, (entries) => {
        entries.delete(src.name);
        entries.set(dst.name, node);
      });
      return;
    }
    this.setEntry(src.dir, src.name, null);
    this.setEntry(dst.dir, dst.name, node);
  }

  removeSync(path: string): void {
    const { dir, name } = this.parentOf(path);
    if (dir.entries.has(name)) this.setEntry(dir, name, null);
  }

  syncDirSync(path: string): void {
    const d = this.dir(path);
    d.durable = new Map(d.entries);
    d.unsynced = [];
  }

  // ----------------------------------------------------------------------------------- asynchronous calls

  /** Completes `op` after the drawn latency, in order with every earlier call; never after a crash. */
  private later<T>(op: () => T): Promise<T> {
    const epoch = this.epoch;
    const at = Math.max(this.now() + this.latency(), this.lastDone);
    this.lastDone = at;
    return new Promise<T>((resolve, reject) => {
      this.schedule(at, () => {
        if (this.epoch !== epoch) return;
        let v: T;
        try {
          v = op();
        } catch (e) {
          reject(e);
          return;
        }
        resolve(v);
      });
    });
  }

  open(path: string, mode: OpenMode): Promise<FileHandle> {
    return this.later(() => {
      let f: SimFile;
      if (mode === "readWrite") f = this.file(path);
      else if (mode === "createNew") {
        if (this.exists(path)) throw errno("EEXIST", `${path} exists`);
        f = this.createFile(path, false);
      } else f = this.createFile(path, true);
      return this.handle(f);
    });
  }

  read(path: string, position: number, into: Uint8Array): Promise<number> {
    return this.later(() => {
      const bytes = this.bytesAt(path, position, into.length);
      into.set(bytes);
      return bytes.length;
    });
  }

  rename(from: string, to: string): Promise<void> {
    return this.later(() => this.renameSync(from, to));
  }

  remove(path: string): Promise<void> {
    return this.later(() => this.removeSync(path));
  }

  syncDir(path: string): Promise<void> {
    return this.later(() => this.syncDirSync(path));
  }

  lock(dir: string): void {
    if (this.locks.has(dir)) throw new StorageLockedError(dir, 1);
    this.locks.add(dir);
  }

  unlock(dir: string): void {
    this.locks.delete(dir);
  }

  private createFile(path: string, truncate: boolean): SimFile {
    const { dir, name } = this.parentOf(path);
    const existing = dir.entries.get(name);
    if (existing?.kind === "dir") throw errno("EISDIR", `${path} is a directory`);
    if (existing !== undefined) {
      if (truncate) {
        existing.unsynced.push({ position: -1, bytes: new Uint8Array(), replaced: existing.buf.slice(0, existing.length), lengthBefore: existing.length });
        existing.length = 0;
      }
      return existing;
    }
    const f: SimFile = { kind: "file", buf: new Uint8Array(256), length: 0, unsynced: [] };
    this.setEntry(dir, name, f);
    return f;
  }

  private handle(f: SimFile): FileHandle {
    return {
      write: (parts, position) => this.later(() => this.writeAt(f, parts, position)),
      // Two steps, each with its own latency, as the real threadpool path takes (and as the simulator always did).
      writeAndSync: (parts, position) =>
        this.later(() => this.writeAt(f, parts, position)).then(() => this.later(() => this.syncOrFail(f))),
      sync: () => this.later(() => this.syncOrFail(f)),
      close: () => this.later(() => undefined),
    };
  }

  private writeAt(f: SimFile, parts: readonly Uint8Array[], position: number): void {
    f.unsynced.push(write(f, position, concatBytes(parts)));
    this.stats.writes++;
  }

  private syncOrFail(f: SimFile): void {
    if (f.unsynced.length > 0 && this.syncFailureRate > 0 && this.rng.chance(this.syncFailureRate)) {
      // The kernel gave up on the dirty pages: they are gone, though reads served them until now.
      this.stats.failedSyncs++;
      undo(f, 0);
      throw errno("EIO", "input/output error (simulated fsync failure)");
    }
    this.syncFile(f);
  }

  private syncFile(f: SimFile): void {
    this.stats.syncs++;
    f.unsynced = [];
  }

  // ----------------------------------------------------------------------------------------------- crash

  /** The process using the disk exits (no power loss): the cache and the calls in progress live on; its locks die. */
  processExit(): void {
    this.locks.clear();
  }

  /** The machine loses power: the cache is gone, calls in progress never complete, locks die. */
  crash(): void {
    this.epoch++;
    this.lastDone = 0;
    this.locks.clear();
    this.crashDir(this.root, new Set());
  }

  private crashDir(d: SimDir, seen: Set<SimNode>): void {
    const entries = new Map(d.durable);
    const kept = d.unsynced.length > 0 ? this.rng.int(0, d.unsynced.length) : 0;
    this.stats.lostEntries += d.unsynced.length - kept;
    for (const op of d.unsynced.slice(0, kept)) op(entries);
    d.entries = entries;
    d.durable = new Map(entries);
    d.unsynced = [];
    for (const node of entries.values()) {
      if (seen.has(node)) continue;
      seen.add(node);
      if (node.kind === "dir") this.crashDir(node, seen);
      else this.crashFile(node);
    }
  }

  /**
   * What an interrupted write of `bytes` at `position` leaves, in a file `length` bytes long before it. A write
   * that extends the file: a byte prefix, the file ending where it stops (the size grew with the data); or the
   * size grown to the write's end with only the sectors before a sector boundary written, the rest reading as
   * zeros (the size grew before the data got there). A write over bytes the file already has (the WAL's
   * preallocated zeros): the sectors before a sector boundary written, the rest keeping what was there — disks
   * write sectors whole, and no size change can cut it at a byte.
   */
  private tornPart(position: number, bytes: Uint8Array, length: number): Uint8Array {
    const overwrite = position + bytes.byteLength <= length;
    if (!overwrite && this.rng.chance(0.5)) return bytes.slice(0, this.rng.int(1, bytes.byteLength - 1));
    const boundaries = [position];
    for (let b = (Math.floor(position / SECTOR_BYTES) + 1) * SECTOR_BYTES; b < position + bytes.byteLength; b += SECTOR_BYTES) boundaries.push(b);
    const written = this.rng.pick(boundaries) - position;
    if (overwrite) return bytes.slice(0, written);
    const out = new Uint8Array(bytes.byteLength);
    out.set(bytes.subarray(0, written));
    return out;
  }

  private crashFile(f: SimFile): void {
    if (f.unsynced.length === 0) return;
    const pending = [...f.unsynced];
    const kept = this.rng.int(0, pending.length);
    undo(f, kept);
    const next = pending[kept];
    if (next !== undefined && next.position >= 0 && next.bytes.byteLength > 1 && this.rng.chance(0.5)) {
      write(f, next.position, this.tornPart(next.position, next.bytes, f.length));
      this.stats.tornFiles++;
    }
    f.unsynced = [];
  }
}

/** Disks write sectors whole. */
const SECTOR_BYTES = 512;

/** Writes `bytes` at `position` (a gap before it reads as zeros); returns how to undo it. */
function write(f: SimFile, position: number, bytes: Uint8Array): UnsyncedWrite {
  const end = position + bytes.byteLength;
  const lengthBefore = f.length;
  const replaced = f.buf.slice(Math.min(position, f.length), Math.min(end, f.length));
  if (end > f.buf.byteLength) {
    const grown = new Uint8Array(Math.max(end, f.buf.byteLength * 2));
    grown.set(f.buf.subarray(0, f.length));
    f.buf = grown;
  }
  if (position > f.length) f.buf.fill(0, f.length, position);
  f.buf.set(bytes, position);
  f.length = Math.max(f.length, end);
  return { position, bytes, replaced, lengthBefore };
}

/** Takes back the unsynced writes from index `from` on, newest first. */
function undo(f: SimFile, from: number): void {
  for (let i = f.unsynced.length - 1; i >= from; i--) {
    const w = f.unsynced[i];
    if (w.position < 0) f.buf.set(w.replaced, 0);
    else f.buf.set(w.replaced, Math.min(w.position, w.lengthBefore));
    f.length = w.lengthBefore;
  }
  f.unsynced.length = from;
}
