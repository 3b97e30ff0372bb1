// Snapshot files larger than one write piece (the data is checksummed and written 1 MiB at a time, the header
// with the checksum last): they load back exactly, read back a chunk at a time (what a leader streams to a
// follower, and what a member's start reads asynchronously), and damage in their last piece is caught every way.

import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StorageCorruptionError } from "../../src/storage/errors.js";
import { nodeFileSystem } from "../../src/storage/node-file-system.js";
import type { FileSystem } from "../../src/storage/file-system.js";
import {
  loadSnapshotFile,
  readSnapshotFile,
  snapshotFileReader,
  writeSnapshotFile,
} from "../../src/storage/snapshot-file.js";
import { removeDir, tempDir } from "./helpers.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

const metadata = {
  index: 42,
  term: 3,
  confState: { voters: ["n1", "n2", "n3"], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
};

/** A snapshot file of `bytes` bytes of data (a pattern with no runs) in a fresh directory. */
async function sampleFile(bytes: number): Promise<{ dir: string; file: string; data: Uint8Array }> {
  const dir = tempDir("snapfile");
  dirs.push(dir);
  const data = new Uint8Array(bytes);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  return { dir, file: await writeSnapshotFile(nodeFileSystem, dir, { metadata, data }, 1), data };
}

describe("a snapshot file of several write pieces", () => {
  it("loads back exactly; a flipped byte in its last piece is a StorageCorruptionError", async () => {
    const { dir, file, data } = await sampleFile(3 * (4 << 20) + 12345);
    const loaded = loadSnapshotFile(nodeFileSystem, file);
    expect(loaded.metadata).toEqual(metadata);
    expect(Buffer.from(loaded.data).equals(data)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual([path.basename(file)]); // the temp file was renamed into place

    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 100] ^= 1;
    fs.writeFileSync(file, bytes);
    expect(() => loadSnapshotFile(nodeFileSystem, file)).toThrow(StorageCorruptionError);
  });

  it("reads back a chunk at a time, in order; damage fails the read that reaches the end, not before", async () => {
    const { file, data } = await sampleFile(5 * (1 << 20) + 777);
    const chunk = 1 << 20;
    const readAll = () => {
      const reader = snapshotFileReader(nodeFileSystem, file);
      expect(reader.size).toBe(data.length);
      const parts: Uint8Array[] = [];
      for (let at = 0; at < reader.size; at += chunk) parts.push(reader.read(at, chunk));
      return Buffer.concat(parts);
    };
    expect(readAll().equals(data)).toBe(true);
    expect(() => snapshotFileReader(nodeFileSystem, file).read(chunk, chunk)).toThrow(/the next in order is 0/);

    const bytes = fs.readFileSync(file);
    bytes[bytes.length - data.length + 10] ^= 1; // in the first chunk
    fs.writeFileSync(file, bytes);
    const reader = snapshotFileReader(nodeFileSystem, file);
    for (let at = 0; at + chunk < reader.size; at += chunk) expect(() => reader.read(at, chunk)).not.toThrow();
    expect(() => reader.read(5 * chunk, chunk)).toThrow(/snapshot checksum mismatch/);
  });
});

describe("a snapshot file read asynchronously (readSnapshotFile: a member's start)", () => {
  /** The real file system with its synchronous reads refused, and the asynchronous ones' lengths recorded. */
  const asyncOnly = (): { fs: FileSystem; reads: number[] } => {
    const reads: number[] = [];
    const refused = () => {
      throw new Error("a synchronous read");
    };
    const fs: FileSystem = {
      ...nodeFileSystem,
      readFile: refused,
      readAt: refused,
      read: (p, position, into) => {
        reads.push(into.length);
        return nodeFileSystem.read(p, position, into);
      },
    };
    return { fs, reads };
  };

  it("reads back exactly, with no synchronous read and no read over 4 MiB", async () => {
    const { file, data } = await sampleFile(2 * (4 << 20) + 999);
    const { fs: asyncFs, reads } = asyncOnly();
    const read = await readSnapshotFile(asyncFs, file);
    expect(read.metadata).toEqual(metadata);
    expect(Buffer.from(read.data).equals(data)).toBe(true);
    expect(reads.filter((n) => n > 100)).toEqual([4 << 20, 4 << 20, 999]); // after the header and the metadata
  });

  it("damage anywhere, a cut-short file or a missing one is a StorageCorruptionError naming the file", async () => {
    const { file, data } = await sampleFile((4 << 20) + 50);
    const original = fs.readFileSync(file);
    for (const at of [2, 10, 30, original.length - data.length + 5, original.length - 1]) {
      const bytes = Buffer.from(original);
      bytes[at] ^= 0x10;
      fs.writeFileSync(file, bytes);
      const err = await readSnapshotFile(nodeFileSystem, file).catch((e: unknown) => e);
      expect(err, `byte ${at}`).toBeInstanceOf(StorageCorruptionError);
      expect((err as Error).message).toContain(path.basename(file));
    }
    fs.writeFileSync(file, original.subarray(0, original.length - 7));
    await expect(readSnapshotFile(nodeFileSystem, file)).rejects.toThrow(/checksum mismatch|shorter/);
    fs.writeFileSync(file, original.subarray(0, 12));
    await expect(readSnapshotFile(nodeFileSystem, file)).rejects.toThrow(/shorter than its header/);
    fs.rmSync(file);
    await expect(readSnapshotFile(nodeFileSystem, file)).rejects.toThrow(/cannot read the snapshot file/);
  });
});

describe("a large snapshot file is synced as it is written", () => {
  it("starts a sync every 4 MiB written, not only at the end (a WAL fsync meanwhile waits behind little)", async () => {
    const dir = tempDir("snapsync");
    dirs.push(dir);
    /** How far each sync of the file found it written. */
    const syncedAt: number[] = [];
    let written = 0;
    const counting: FileSystem = {
      ...nodeFileSystem,
      open: async (p, mode) => {
        const fh = await nodeFileSystem.open(p, mode);
        return {
          ...fh,
          write: async (parts, position) => {
            await fh.write(parts, position);
            written = Math.max(written, position + parts.reduce((n, b) => n + b.length, 0));
          },
          writeAndSync: (parts, position) => fh.writeAndSync(parts, position),
          sync: async () => {
            syncedAt.push(written);
            await fh.sync();
          },
          close: () => fh.close(),
        };
      },
    };
    const data = new Uint8Array(10 * (1 << 20) + 5);
    const file = await writeSnapshotFile(counting, dir, { metadata, data }, 1);
    expect(Buffer.from(loadSnapshotFile(nodeFileSystem, file).data).equals(data)).toBe(true);
    // One started at 4 MiB; another at 8 unless the first was still running (the writes do not wait for it); the
    // last at the end.
    expect(syncedAt.length).toBeGreaterThanOrEqual(2);
    expect(syncedAt[0]).toBeGreaterThanOrEqual(4 << 20);
    expect(syncedAt[0]).toBeLessThan(5 << 20);
    for (let i = 1; i < syncedAt.length - 1; i++) expect(syncedAt[i] - syncedAt[i - 1]).toBeGreaterThanOrEqual(4 << 20);
    expect(syncedAt.at(-1)).toBe(fs.statSync(file).size);
  });
});
