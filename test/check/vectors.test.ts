// Every labelled Jepsen/Porcupine/Knossos history in ../shared/vectors must get its known verdict.

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readHistory } from "../../src/check/history.js";
import { checkLinearizability } from "../../src/check/linearizability.js";
import { modelByName } from "../../src/check/models.js";
import { VECTORS_DIR } from "./helpers.js";

interface ManifestEntry {
  readonly file: string;
  readonly model: string;
  readonly initial: unknown;
  readonly linearizable: boolean;
}

const manifestPath = fileURLToPath(new URL("manifest.json", VECTORS_DIR));
const present = existsSync(manifestPath);
if (!present)
  console.warn(
    `skipping the linearizability vectors: ${manifestPath} does not exist (they live beside the repository)`,
  );
const manifest: ManifestEntry[] = present ? (JSON.parse(readFileSync(manifestPath, "utf8")) as ManifestEntry[]) : [];

/** Per-vector budget: far above the slowest vector (≈0.3 s), low enough that a regression fails instead of hanging. */
const VECTOR_BUDGET_MS = 10_000;

describe.skipIf(!present)("linearizability vectors", () => {
  let totalMs = 0;
  afterAll(() => {
    if (present) console.log(`checked ${manifest.length} vectors in ${totalMs.toFixed(0)} ms of search`);
  });

  it("covers all 223 labelled histories and both models", () => {
    expect(manifest).toHaveLength(223);
    expect(new Set(manifest.map((e) => e.model))).toEqual(new Set(["register", "mutex"]));
  });

  it.each(manifest.map((e) => [e.file, e] as const))("%s agrees with its label", (_file, entry) => {
    const text = readFileSync(fileURLToPath(new URL(entry.file, VECTORS_DIR)), "utf8");
    const started = performance.now();
    const result = checkLinearizability(readHistory(text), {
      model: modelByName(entry.model),
      initial: entry.initial,
      budget: { timeMs: VECTOR_BUDGET_MS },
    });
    totalMs += performance.now() - started;
    expect(result.verdict, `${entry.file}: expected ${entry.linearizable ? "linearizable" : "not-linearizable"}`).toBe(
      entry.linearizable ? "linearizable" : "not-linearizable",
    );
    if (!entry.linearizable) {
      const failure = result.failure!;
      expect(failure.blocked.status).toBe("ok");
      expect(failure.window.firstLine).toBeLessThanOrEqual(failure.blocked.completeLine!);
    }
  });

  it("stays well inside the 30 s budget for all vectors together", () => {
    // Runs last (vitest keeps declaration order within a file), after every vector has been timed.
    expect(totalMs).toBeLessThan(30_000);
  });
});
