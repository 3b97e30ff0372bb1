// Compact builders for hand-written histories in the checker tests.

import { readHistory } from "../../src/check/history.js";
import type { PairedHistory } from "../../src/check/history.js";

/** [process, type, f, value?, extra?] — one history line. */
export type Line = [number | string, "invoke" | "ok" | "fail" | "info", string, unknown?, Record<string, unknown>?];

export function jsonl(lines: readonly Line[]): string {
  return (
    lines
      .map(([process, type, f, value, extra]) => JSON.stringify({ process, type, f, value: value ?? null, ...extra }))
      .join("\n") + "\n"
  );
}

export function history(lines: readonly Line[]): PairedHistory {
  return readHistory(jsonl(lines));
}

/** The vectors live beside the repository, never inside it: /work/shared/vectors for /work/main. */
export const VECTORS_DIR = new URL("../../../shared/vectors/", import.meta.url);
