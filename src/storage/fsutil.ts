// Small durable-filesystem helpers. POSIX only guarantees that a created, renamed or removed directory entry
// survives a crash once the directory itself is fsynced.

import type { FileSystem } from "./file-system.js";

/** Create `dir` (and parents) if missing; returns true when it had to be created (its parent is fsynced). */
export function ensureDirSync(fs: FileSystem, dir: string, parent: string): boolean {
  if (fs.exists(dir)) return false;
  fs.mkdirSync(dir);
  fs.syncDirSync(parent);
  return true;
}

export const isErrno = (err: unknown, code: string): boolean =>
  typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
