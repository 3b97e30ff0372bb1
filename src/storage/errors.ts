// Typed errors of the durable storage. Every message says what was wrong, where (file and byte offset), and
// what the operator can do about it.

/** A checksum, framing or consistency failure in the data directory. The node must not start on it. */
export class StorageCorruptionError extends Error {
  readonly code = "STORAGE_CORRUPTION";
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
    readonly repairable = true,
  ) {
    super(
      `storage corruption in ${file} at byte offset ${offset}: ${reason}. ` +
        (repairable
          ? "Refusing to start. Restart with --repair (DurableStorage.open(dir, { repair: true })) to truncate the " +
            "write-ahead log at this offset, dropping this record and everything after it, or replace this " +
            "member's data directory and let it catch up from the cluster."
          : "Refusing to start. This cannot be repaired automatically: replace this member's data directory " +
            "and let it catch up from the cluster."),
    );
    this.name = "StorageCorruptionError";
  }
}

/** Another live process holds the data directory's LOCK file. */
export class StorageLockedError extends Error {
  readonly code = "STORAGE_LOCKED";
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `data directory ${dir} is locked by the running process ${pid} (${dir}/LOCK); two processes must never ` +
        `share a data directory. Stop that process, or use another directory.`,
    );
    this.name = "StorageLockedError";
  }
}

/** The data directory was written by an unknown format version (or is not a Concord data directory). */
export class StorageVersionError extends Error {
  readonly code = "STORAGE_VERSION";
  constructor(
    readonly dir: string,
    readonly found: string,
    readonly supported: readonly string[],
  ) {
    super(
      `data directory ${dir} has format version ${JSON.stringify(found)} in ${dir}/VERSION; this build ` +
        `supports version ${supported.join(", ")}`,
    );
    this.name = "StorageVersionError";
  }
}

/** A caller passed something the storage cannot accept (bad options, non-contiguous entries, …). */
export class StorageInputError extends Error {
  readonly code = "STORAGE_INPUT";
  constructor(message: string) {
    super(message);
    this.name = "StorageInputError";
  }
}

/**
 * A write or fsync failed, or the storage was closed. After a failed fsync the page cache state is unknown
 * (fsyncgate), so the storage refuses all further writes; the process should exit and recover from disk.
 */
export class StorageFailedError extends Error {
  readonly code = "STORAGE_FAILED";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageFailedError";
  }
}
