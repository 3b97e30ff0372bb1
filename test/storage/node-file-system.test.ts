// The real file system's write: parts go out with writev, in order, at the position given, however many there
// are (more than IOV_MAX, 1024 on Linux, is split by libuv) and whatever their sizes.
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
  it("writes every part in order at the position, past IOV_MAX parts and with empty ones", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-nfs-"));
    dirs.push(dir);
    const file = path.join(dir, "f");
    const parts: Uint8Array[] = [];
    let seed = 7;
    for (let i = 0; i < 3000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const part = new Uint8Array(i % 97 === 0 ? 0 : seed % 700);
      part.fill(i & 0xff);
      parts.push(part);
    }
    const h = await nodeFileSystem.open(file, "truncate");
    await h.write([new Uint8Array(10).fill(0xee)], 0);
    await h.write(parts, 10);
    await h.datasync();
    await h.close();
    const want = Buffer.concat([Buffer.alloc(10, 0xee), ...parts]);
    expect(want.length).toBeGreaterThan(500_000);
    expect(Buffer.compare(fs.readFileSync(file), want)).toBe(0);
  });
});
