// Deliberately broken builds, to show the suite is not blind. A mutant is a copy of the repository's server
// sources in a temp directory with ONE textual change; members then run from that copy. The patch must match
// exactly once (else the mutant is stale against the current code and we refuse to run it — a mutant that
// silently patched nothing would "prove" the suite blind, or sighted, for nothing).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface Mutant {
  readonly description: string;
  readonly file: string;
  /** Each `find` must occur exactly once. */
  readonly patches: ReadonlyArray<{ readonly find: string; readonly replace: string }>;
}

export const MUTANTS: Readonly<Record<string, Mutant>> = {
  "election-two-leaders": {
    description: "a campaign that should queue is answered as won, with the sitting leader's token",
    file: "src/locks/elections.ts",
    patches: [
      {
        find: `return ok({ leader: false, position: e.candidates.size - 1 }); // O(1): a new candidate is last`,
        replace: `return ok({ leader: true, token: e.leaderToken || ctx.index }); /* MUTANT election-two-leaders */`,
      },
    ],
  },
  "watch-resume-off-by-one": {
    description: "a watch resumed from a revision replays history from the revision after it (one event lost per resume)",
    file: "src/host/streams.ts",
    patches: [{ find: `sm.watchEventsSince(fromRevision, { key, prefix })`, replace: `sm.watchEventsSince(fromRevision + 1 /* MUTANT */, { key, prefix })` }],
  },
  "local-reads": {
    description: "linearizable reads served from local state by any member, without the ReadIndex barrier",
    file: "src/host/service.ts",
    patches: [{ find: `      await this.replica.readBarrier();\n      // Checked again as of the read point`, replace: `      /* MUTANT local-reads: no read barrier */\n      // Checked again as of the read point` }],
  },
  "lock-no-exclusion": {
    description:
      "a plain lock silently admits two holders (its limit is stored one too high), consistently enough that the state machine's own invariant checks do not notice",
    file: "src/locks/locks.ts",
    patches: [
      { find: `        name: c.name,\n        limit: c.limit,\n`, replace: `        name: c.name,\n        limit: c.limit + 1 /* MUTANT */,\n` },
      { find: `if (lock !== undefined && lock.limit !== c.limit) {`, replace: `if (lock !== undefined && lock.limit !== c.limit + 1 /* MUTANT */) {` },
    ],
  },
  "fence-ignored": {
    description: "fenced writes accepted whatever their token (the store stops being a fencing-aware resource)",
    file: "src/locks/locks.ts",
    patches: [
      {
        find: `    const lock = this.locks.get(fence.lock);\n    if (lock === undefined) {`,
        replace: `    const lock = this.locks.get(fence.lock);\n    if (fence.token > 0) return null; /* MUTANT fence-ignored */\n    if (lock === undefined) {`,
      },
    ],
  },
};

/** Copies the repository's runnable parts to a temp dir, applies the mutant, returns the copy's root. */
export function prepareMutant(repoRoot: string, name: string): string {
  const mutant = MUTANTS[name];
  if (mutant === undefined) throw new TypeError(`unknown mutant ${JSON.stringify(name)}; accepted: ${Object.keys(MUTANTS).join(", ")}`);
  const root = path.join(os.tmpdir(), `concord-mutant-${name}`);
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  for (const part of ["src", "cli"]) fs.cpSync(path.join(repoRoot, part), path.join(root, part), { recursive: true });
  for (const file of ["package.json", "tsconfig.json", "tsconfig.build.json"]) fs.copyFileSync(path.join(repoRoot, file), path.join(root, file));
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(root, "node_modules"), "dir");
  const target = path.join(root, mutant.file);
  let source = fs.readFileSync(target, "utf8");
  for (const [i, patch] of mutant.patches.entries()) {
    const matches = source.split(patch.find).length - 1;
    if (matches !== 1)
      throw new Error(`mutant ${name}: expected patch ${i + 1}'s text exactly once in ${mutant.file}, found it ${matches} times; update jepsen-style-tests/mutants.ts`);
    source = source.replace(patch.find, patch.replace);
  }
  fs.writeFileSync(target, source);
  return root;
}
