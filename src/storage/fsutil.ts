// Small durable-filesystem helpers. POSIX only guarantees that a created, renamed or removed directory entry
// survives a crash once the directory itself is fsynced.

import { promises as fsp } from "node:fs";
import fs from "node:fs";

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Create `dir` (and parents) if missing; returns true when it had to be created (its parent is fsynced). */
export function ensureDirSync(dir: string, parent: string): boolean {
  if (fs.existsSync(dir)) return false;
  fs.mkdirSync(dir, { recursive: true });
  fsyncDirSync(parent);
  return true;
}

export const isErrno = (err: unknown, code: string): boolean =>
  typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
