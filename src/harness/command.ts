// How the harness runs `concord`: node, then the arguments that load the CLI. From the TypeScript sources through
// tsx (tests, the Jepsen-style suite and its mutant copies of src/ and cli/), from the compiled dist/ (benchmarks
// measure what users install: no tsx loader thread in every member), or exactly as the running CLI was started
// (`concord dev`, whichever way it was run).

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface ConcordCommand {
  /** The node binary (default: the one running this process). */
  readonly node?: string;
  /** Arguments to node before the `concord` subcommand. */
  readonly nodeArgs: readonly string[];
  /** Working directory: where `--import tsx` resolves tsx from, so a copy of the repository must link node_modules. */
  readonly cwd: string;
}

/** The repository this file belongs to (run from source: src/harness → ../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** `node --import tsx [--import preload…] <root>/cli/concord.ts`. */
export function sourceCommand(root = REPO_ROOT, preloads: readonly string[] = []): ConcordCommand {
  const cli = path.join(root, "cli/concord.ts");
  if (!fs.existsSync(cli)) throw new Error(`no ${cli}: ${root} is not a Concord source tree`);
  return { nodeArgs: ["--import", "tsx", ...preloads.flatMap((p) => ["--import", p]), cli], cwd: root };
}

/** `node <root>/dist/cli/concord.js`: the built CLI, as the installed `concord` binary runs (under `node`, if given). */
export function distCommand(root = REPO_ROOT, node?: string): ConcordCommand {
  const cli = path.join(root, "dist/cli/concord.js");
  if (!fs.existsSync(cli)) throw new Error(`no ${cli}: run \`npm run build\` first`);
  return { node, nodeArgs: [cli], cwd: root };
}

/** Set (by the tests' vitest globalSetup) to a transpiled `concord.js` for harnessCommand() to run. */
export const BUILT_CLI_ENV = "CONCORD_HARNESS_BUILT_CLI";

/**
 * What the harness runs unless told otherwise: the sources through tsx, or, when BUILT_CLI_ENV names one, the
 * same sources transpiled beforehand (test/global-build.ts), which start without tsx's loader.
 */
export function harnessCommand(): ConcordCommand {
  const built = process.env[BUILT_CLI_ENV];
  if (!built) return sourceCommand();
  if (!fs.existsSync(built)) throw new Error(`${BUILT_CLI_ENV}=${built}: no such file`);
  return { nodeArgs: ["--enable-source-maps", built], cwd: REPO_ROOT };
}

/** The `concord` CLI this process is running, started the same way (node flags, tsx loader, script). */
export function currentCommand(): ConcordCommand {
  const script = process.argv[1];
  if (script === undefined) throw new Error("cannot tell how this process was started (no script in process.argv)");
  return { nodeArgs: [...process.execArgv, script], cwd: process.cwd() };
}
