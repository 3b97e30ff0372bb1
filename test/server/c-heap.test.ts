import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { trimCHeap } from "../../src/server/c-heap.js";
import { findCollector } from "../../src/server/idle-gc.js";

const glibcLinux = process.platform === "linux" && typeof process.report?.getReport === "function" &&
  Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

const rssAnonBytes = () => Number(/RssAnon:\s+(\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

describe("trimCHeap (glibc malloc_trim addon)", () => {
  // CI has a C compiler, so there the addon must have been built; a user's machine may lack one (npm ci says so).
  it.skipIf(!glibcLinux || !process.env.CI)("is built on glibc Linux in CI (npm ci builds native/ with node-gyp)", () => {
    expect(typeof trimCHeap).toBe("function");
  });

  it.skipIf(!glibcLinux || !trimCHeap)("returns freed buffers' pages that glibc would keep", () => {
    const collect = findCollector()!;
    // 100 KiB buffers come from the C heap (under glibc's mmap threshold); keeping every tenth pins the heap, so
    // freeing the rest leaves holes that free() alone never returns.
    let buffers: Buffer[] = Array.from({ length: 2000 }, () => Buffer.alloc(100 * 1024, 1));
    const kept = buffers.filter((_, i) => i % 10 === 9);
    buffers = [];
    collect();
    collect();
    const before = rssAnonBytes();
    expect(trimCHeap!()).toBe(true);
    const returned = before - rssAnonBytes();
    expect(returned).toBeGreaterThan(64 * 2 ** 20); // ~175 MiB freed
    expect(kept.every((b) => b[0] === 1 && b[b.length - 1] === 1)).toBe(true); // live buffers untouched
  });
});
