// The C heap, where Buffers and ArrayBuffers live, through the small addon in native/: glibc's malloc_trim, and
// mallopt(M_MMAP_THRESHOLD) to give large buffers pages of their own.
//
// glibc keeps what buffers free for reuse; after a burst of writes a member's C heap held 32–60 MiB free that way,
// and at a million keys 140–190 MiB (native/malloc_trim.c says why). `npm ci` builds the addon (binding.gyp); where
// it could not be built, or on a C library other than glibc, these are undefined or return false and members simply
// keep that memory.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

interface CHeapAddon {
  trim(): boolean;
  mmapThreshold(bytes: number): boolean;
}

function loadAddon(): Partial<CHeapAddon> {
  // build/ is at the package root: two levels above src/server (tsx), three above dist/src/server.
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ["../..", "../../.."]) {
    const file = path.join(here, up, "build/Release/malloc_trim.node");
    if (!fs.existsSync(file)) continue;
    try {
      const addon = createRequire(import.meta.url)(file) as Record<string, unknown>;
      // An addon built from an older checkout has trim only.
      return {
        trim: typeof addon.trim === "function" ? (addon.trim as CHeapAddon["trim"]) : undefined,
        mmapThreshold:
          typeof addon.mmapThreshold === "function" ? (addon.mmapThreshold as CHeapAddon["mmapThreshold"]) : undefined,
      };
    } catch {
      return {}; // built for another Node ABI or platform: run without it
    }
  }
  return {};
}

const addon = loadAddon();

/** malloc_trim(0): true if memory was returned. Undefined where the addon is not built. */
export const trimCHeap: (() => boolean) | undefined = addon.trim;

/**
 * Buffers of this many bytes or more get pages of their own (mmap), returned to the OS when freed: a member's
 * value chunks, log arenas and snapshot pieces (1 MiB each) among them. glibc's own threshold starts here too but
 * rises to the largest such buffer freed, after which they all come from the heap and leave holes in it.
 */
const LARGE_BUFFER_BYTES = 128 * 1024;

/** Fixes glibc's mmap threshold at LARGE_BUFFER_BYTES for this process; false where that cannot be done. */
export function fixMmapThreshold(): boolean {
  return addon.mmapThreshold?.(LARGE_BUFFER_BYTES) ?? false;
}
