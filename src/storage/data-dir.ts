// The data directory's identity: LOCK (one process at a time) and VERSION (the on-disk format).
//
//   <dir>/LOCK      the pid of the process that has the directory open; created with O_EXCL
//   <dir>/VERSION   "1\n"
//   <dir>/wal/      WAL segments (see wal.ts)
//   <dir>/snap/     snapshot files (see snapshot-file.ts)

import fs from "node:fs";
import path from "node:path";
import { StorageCorruptionError, StorageLockedError, StorageVersionError } from "./errors.js";
import type { FileSystem } from "./file-system.js";
import { isErrno } from "./fsutil.js";

export const FORMAT_VERSION = "1";
export const SUPPORTED_VERSIONS: readonly string[] = [FORMAT_VERSION];

/** Directories this process holds, so a LOCK naming our own pid is recognised as a previous incarnation's. */
const heldByThisProcess = new Set<string>();

function pidIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else — it is alive.
    return !isErrno(err, "ESRCH");
  }
}

/**
 * Take `<dir>/LOCK` (the real file system's `lock`, see node-file-system.ts). A lock left by a dead process (or by an earlier process that had our pid, as pid 1 in a
 * restarted container) is taken over; a live holder is a StorageLockedError naming its pid.
 */
export function acquireLock(dir: string): void {
  const key = path.resolve(dir);
  const lockFile = path.join(dir, "LOCK");
  if (heldByThisProcess.has(key)) throw new StorageLockedError(dir, process.pid);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(lockFile, "wx");
      try {
        // Not fsynced: after a crash the pid in it is dead (or is ours again), and either way it is stale.
        fs.writeSync(fd, `${process.pid}\n`);
      } finally {
        fs.closeSync(fd);
      }
      heldByThisProcess.add(key);
      return;
    } catch (err) {
      if (!isErrno(err, "EEXIST")) throw err;
    }
    const text = readIfExists(lockFile);
    if (text === undefined) continue; // released between our create and our read: try again
    const pid = Number.parseInt(text.trim(), 10);
    const stale = !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || !pidIsAlive(pid);
    if (!stale) throw new StorageLockedError(dir, pid);
    fs.rmSync(lockFile, { force: true });
  }
  throw new StorageLockedError(dir, Number.parseInt(readIfExists(lockFile) ?? "0", 10));
}

/**
 * The pid of the live process holding `<dir>/LOCK`, or undefined when the directory is not held (no LOCK, or one
 * acquireLock would take over as stale). Reads only: for tools that must not touch a directory in use.
 */
export function lockHolder(dir: string): number | undefined {
  const text = readIfExists(path.join(dir, "LOCK"));
  if (text === undefined) return undefined;
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (pid === process.pid) return heldByThisProcess.has(path.resolve(dir)) ? pid : undefined;
  return pidIsAlive(pid) ? pid : undefined;
}

export function releaseLock(dir: string): void {
  const key = path.resolve(dir);
  if (!heldByThisProcess.delete(key)) return;
  const lockFile = path.join(dir, "LOCK");
  if (readIfExists(lockFile)?.trim() === String(process.pid)) fs.rmSync(lockFile, { force: true });
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
}

/**
 * Check `<dir>/VERSION`, writing it (durably) for a directory that holds no data yet. A directory with data
 * but no VERSION is not one of ours, or was damaged: refuse rather than guess.
 */
export function checkVersion(fs: FileSystem, dir: string, hasData: boolean): void {
  const file = path.join(dir, "VERSION");
  if (!fs.exists(file)) {
    if (hasData) {
      throw new StorageCorruptionError(
        file,
        0,
        "VERSION is missing but the directory holds WAL or snapshot files",
        false,
      );
    }
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, new TextEncoder().encode(`${FORMAT_VERSION}\n`));
    fs.renameSync(tmp, file);
    fs.syncDirSync(dir);
    return;
  }
  const found = new TextDecoder().decode(fs.readFile(file)).trim();
  if (!SUPPORTED_VERSIONS.includes(found)) throw new StorageVersionError(dir, found, SUPPORTED_VERSIONS);
}
