// Small durable-filesystem helpers. POSIX only guarantees that a created, renamed or removed directory entry
// survives a crash once the directory itself is fsynced.

import path from "node:path";
import type { FileSystem } from "./file-system.js";

/** Create `dir` and its missing parents, durably: the parent of every directory created is fsynced. */
export function ensureDirSync(fs: FileSystem, dir: string): void {
  if (fs.exists(dir)) return;
  const parent = path.dirname(dir);
  if (parent !== dir) ensureDirSync(fs, parent);
  fs.mkdirSync(dir);
  fs.syncDirSync(parent);
}

export const isErrno = (err: unknown, code: string): boolean =>
  typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
