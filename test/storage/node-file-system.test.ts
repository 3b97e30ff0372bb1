// The real file system's write: parts go out with writev, in order, at the position given, however many there
// are (more than IOV_MAX, 1024 on Linux, is split by libuv) and whatever their sizes, whether writeAndSync does
// them inline or on the threadpool. Its asynchronous read
// fills the buffer given from the position given, short only at the file's end.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { nodeFileSystem } from "../../src/storage/node-file-system.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("nodeFileSystem write", () => {
  /** `count` parts of 0 to `maxPart - 1` bytes (every 97th empty), each filled with its own byte. */
  function someParts(count: number, maxPart: number): Uint8Array[] {
    const parts: Uint8Array[] = [];
    let seed = 7;
    for (let i = 0; i < count; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const part = new Uint8Array(i % 97 === 0 ? 0 : seed % maxPart);
      part.fill(i & 0xff);
      parts.push(part);
    }
    return parts;
  }

  // writeAndSync does up to 1 MiB inline (writevSync, fdatasyncSync) and more on the threadpool: one case each.
  it.each([
    ["inline", 3000, 500, [500_000, 1 << 20]],
    ["on the threadpool", 3000, 1400, [(1 << 20) + 1, 4 << 20]],
  ])(
    "writes every part in order at the position, past IOV_MAX parts and with empty ones (%s)",
    async (_how, count, maxPart, [min, max]) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-nfs-"));
      dirs.push(dir);
      const file = path.join(dir, "f");
      const parts = someParts(count, maxPart);
      const h = await nodeFileSystem.open(file, "truncate");
      await h.write([new Uint8Array(10).fill(0xee)], 0);
      await h.writeAndSync(parts, 10);
      await h.close();
      const written = parts.reduce((n, p) => n + p.length, 0);
      expect(written).toBeGreaterThanOrEqual(min);
      expect(written).toBeLessThanOrEqual(max);
      const want = Buffer.concat([Buffer.alloc(10, 0xee), ...parts]);
      expect(Buffer.compare(fs.readFileSync(file), want)).toBe(0);
    },
  );

  it("a failed writeAndSync rejects (inline or not) instead of throwing", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-nfs-"));
    dirs.push(dir);
    const h = await nodeFileSystem.open(path.join(dir, "f"), "truncate");
    await h.close();
    for (const size of [16, 2 << 20]) {
      let pending: Promise<void> | undefined;
      expect(() => (pending = h.writeAndSync([new Uint8Array(size)], 0))).not.toThrow();
      await expect(pending).rejects.toThrow(/EBADF/);
    }
  });
});

describe("nodeFileSystem read", () => {
  it("fills the buffer from the position, short only at the end; a missing file rejects", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-nfs-"));
    dirs.push(dir);
    const file = path.join(dir, "f");
    const content = Buffer.alloc(3 << 20).map((_, i) => (i * 31) & 0xff);
    fs.writeFileSync(file, content);
    const into = Buffer.alloc(2 << 20);
    expect(await nodeFileSystem.read(file, 12345, into)).toBe(into.length);
    expect(into.equals(content.subarray(12345, 12345 + into.length))).toBe(true);
    expect(await nodeFileSystem.read(file, content.length - 100, into)).toBe(100);
    expect(into.subarray(0, 100).equals(content.subarray(content.length - 100))).toBe(true);
    expect(await nodeFileSystem.read(file, content.length + 5, into)).toBe(0);
    expect(await nodeFileSystem.read(file, 0, new Uint8Array(0))).toBe(0);
    await expect(nodeFileSystem.read(path.join(dir, "none"), 0, into)).rejects.toThrow(/ENOENT/);
  });
});
