// Snapshot files larger than one write piece (the data is checksummed and written 4 MiB at a time, the header
// with the checksum last): they load back exactly, and damage in their last piece is caught.

import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StorageCorruptionError } from "../../src/storage/errors.js";
import { nodeFileSystem } from "../../src/storage/node-file-system.js";
import { loadSnapshotFile, writeSnapshotFile } from "../../src/storage/snapshot-file.js";
import { removeDir, tempDir } from "./helpers.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

describe("a snapshot file of several write pieces", () => {
  it("loads back exactly; a flipped byte in its last piece is a StorageCorruptionError", async () => {
    const dir = tempDir("snapfile");
    dirs.push(dir);
    const data = new Uint8Array(3 * (4 << 20) + 12345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const metadata = {
      index: 42,
      term: 3,
      confState: { voters: ["n1", "n2", "n3"], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    };
    const file = await writeSnapshotFile(nodeFileSystem, dir, { metadata, data });
    const loaded = loadSnapshotFile(nodeFileSystem, file);
    expect(loaded.metadata).toEqual(metadata);
    expect(Buffer.from(loaded.data).equals(data)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual([path.basename(file)]); // the temp file was renamed into place

    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 100] ^= 1;
    fs.writeFileSync(file, bytes);
    expect(() => loadSnapshotFile(nodeFileSystem, file)).toThrow(StorageCorruptionError);
  });
});
