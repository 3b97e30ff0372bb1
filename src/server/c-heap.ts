// Returns the C heap's free pages to the OS: glibc's malloc_trim, through the small addon in native/.
//
// Buffers live in the C heap, and glibc keeps what they free for reuse; after a burst of writes a member's C heap
// held 32–60 MiB free that way. `npm ci` builds the addon (binding.gyp); where it could not be built, or on a C
// library without malloc_trim, this is undefined or returns false and members simply keep that memory.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

function loadTrim(): (() => boolean) | undefined {
  // build/ is at the package root: two levels above src/server (tsx), three above dist/src/server.
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ["../..", "../../.."]) {
    const file = path.join(here, up, "build/Release/malloc_trim.node");
    if (!fs.existsSync(file)) continue;
    try {
      const addon = createRequire(import.meta.url)(file) as { trim?: unknown };
      return typeof addon.trim === "function" ? (addon.trim as () => boolean) : undefined;
    } catch {
      return undefined; // built for another Node ABI or platform: run without it
    }
  }
  return undefined;
}

/** malloc_trim(0): true if memory was returned. Undefined where the addon is not built. */
export const trimCHeap: (() => boolean) | undefined = loadTrim();
