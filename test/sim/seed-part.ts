// One part of the seeds npm test runs (sim/seeds.ts), as a suite: every invariant and history check holds. The
// seeds are split over files so that vitest runs them side by side.
import { describe, expect, it } from "vitest";
import { nodesFor, seedsOfPart } from "../../sim/seeds.js";
import { runSeed } from "../../sim/simulation.js";

/** Seeds per test case: a failure names its block, and progress shows as blocks pass. */
const BLOCK = 25;

export function describeSeedPart(part: number, parts: number): void {
  const seeds = seedsOfPart(part, parts);
  describe(`simulator: seeds hold every invariant (part ${part + 1} of ${parts})`, () => {
    for (let i = 0; i < seeds.length; i += BLOCK) {
      const block = seeds.slice(i, i + BLOCK);
      it(`seeds ${block[0]}..${block.at(-1)} (every ${parts === 2 ? "other" : `${parts}th`} one)`, async () => {
        const failures: string[] = [];
        for (const s of block) {
          const r = await runSeed({ seed: s, nodes: nodesFor(s) });
          if (r.violation) failures.push(`seed ${s}: ${r.violation.message} — replay: npm run sim -- --seed ${s} --nodes ${r.nodes} --verbose`);
        }
        expect(failures).toEqual([]);
      });
    }
  });
}
