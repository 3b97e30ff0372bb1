// The file-system calls durable storage makes, as an interface: the server passes the real one
// (node-file-system.ts), the simulator one with page-cache semantics (unsynced writes lost on a crash, torn
// writes, directory entries durable only once their directory is synced, fsyncs that fail).
//
// Durability rules a caller must follow (POSIX, and what the simulator enforces):
// - data written to a file is durable only after `sync` on its handle, or the `writeAndSync` that wrote it, succeeded;
// - a created, renamed or removed directory entry is durable only after `syncDir` of its directory;
// - after a failed sync the written data may be gone even though reads still return it: never retry a sync
//   and carry on (fsyncgate); the caller stops.
//
// Synchronous calls are for opening a data directory (small files, directory entries) and for reading a snapshot
// file back a range at a time; everything on the write path is asynchronous (the real `writeAndSync` does a small
// write's work on the event loop, but in a microtask, after it returned), and so are recovery's reads of WAL segments
// and snapshot files (`read`: hundreds of megabytes read synchronously hold the event loop for as long).

export interface FileHandle {
  /** Write all of `parts` (in order) at `position`. */
  write(parts: readonly Uint8Array[], position: number): Promise<void>;
  /**
   * Write all of `parts` at `position`, then fdatasync: the file's data (and the size it needs) is durable once this
   * resolves. The WAL's one durable write per batch.
   */
  writeAndSync(parts: readonly Uint8Array[], position: number): Promise<void>;
  /** fsync: data and metadata. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** How a file is opened: an existing one for writing, or created (refused when it exists: "createNew"). */
export type OpenMode = "readWrite" | "createNew" | "truncate";

export interface FileSystem {
  exists(path: string): boolean;
  isDirectory(path: string): boolean;
  /** Size in bytes of a file. */
  size(path: string): number;
  /** Names in a directory (any order). */
  list(dir: string): string[];
  readFile(path: string): Uint8Array;
  /** `length` bytes of a file from `position` (fewer at its end). */
  readAt(path: string, position: number, length: number): Uint8Array;
  /**
   * Reads into `into` from `position`, off the event loop: resolves with the bytes read, fewer than `into.length`
   * only at the file's end.
   */
  read(path: string, position: number, into: Uint8Array): Promise<number>;
  /** Create a directory and its missing parents; not durable until their parents are synced. */
  mkdirSync(path: string): void;
  /** Write a whole small file and fsync it (its directory entry still needs `syncDirSync`). */
  writeFileSync(path: string, data: Uint8Array): void;
  /** Cut a file to `size` bytes and fsync it. */
  truncateSync(path: string, size: number): void;
  renameSync(from: string, to: string): void;
  removeSync(path: string): void;
  syncDirSync(dir: string): void;

  open(path: string, mode: OpenMode): Promise<FileHandle>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  syncDir(dir: string): Promise<void>;

  /**
   * Keep other processes out of `dir` while this one uses it (throws StorageLockedError naming the holder);
   * `unlock` gives it back. A lock dies with its process.
   */
  lock(dir: string): void;
  unlock(dir: string): void;
}
