// Every mutant of the simulator (sim/mutants.ts) and of the Jepsen-style suite (jepsen-style-tests/mutants.ts)
// still finds each of its patches' text exactly once in today's source. Those suites run only in .ci/run and
// refuse a stale mutant there, minutes in; this says so in npm test, in a second, when a change (or a
// reformat) moves the text a mutant patches.

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { MUTANTS as SIM_MUTANTS } from "../../sim/mutants.js";
import { MUTANTS as JEPSEN_MUTANTS } from "../../jepsen-style-tests/mutants.js";

const repo = path.resolve(import.meta.dirname, "../..");
const count = (file: string, text: string) => fs.readFileSync(path.join(repo, file), "utf8").split(text).length - 1;

describe("mutants match the source", () => {
  it.each(Object.entries(SIM_MUTANTS))("simulator mutant %s", (_name, mutant) => {
    for (const [i, p] of mutant.patches.entries()) expect(count(p.file, p.find), `patch ${i + 1} in ${p.file}`).toBe(1);
  });
  it.each(Object.entries(JEPSEN_MUTANTS))("Jepsen-style mutant %s", (_name, mutant) => {
    for (const [i, p] of mutant.patches.entries())
      expect(count(mutant.file, p.find), `patch ${i + 1} in ${mutant.file}`).toBe(1);
  });
});
