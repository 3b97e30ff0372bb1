// vitest globalSetup: transpiles src/ and cli/ once into .test-build/ (esbuild, the same TypeScript transform tsx
// applies on the fly), so the member and CLI processes the tests start run plain JavaScript. Each `concord`
// process then starts in ~0.4 s instead of ~1.2 s with tsx's loader thread, and hundreds of them start per run.
// The tests still exercise these sources: the build is made fresh from them on every run.

import fs from "node:fs";
import path from "node:path";
import { build } from "esbuild";
import { BUILT_CLI_ENV, REPO_ROOT } from "../src/harness/command.js";

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((e) => {
    const file = path.join(e.parentPath, e.name);
    return e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && !e.name.endsWith(".d.ts") ? [file] : [];
  });
}

export default async function setup(): Promise<void> {
  const outdir = path.join(REPO_ROOT, ".test-build");
  fs.rmSync(outdir, { recursive: true, force: true });
  await build({
    entryPoints: [...sources(path.join(REPO_ROOT, "src")), ...sources(path.join(REPO_ROOT, "cli"))],
    outbase: REPO_ROOT,
    outdir,
    bundle: false,
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: "inline",
    tsconfig: path.join(REPO_ROOT, "tsconfig.json"),
    logLevel: "error",
  });
  process.env[BUILT_CLI_ENV] = path.join(outdir, "cli/concord.js");
}
