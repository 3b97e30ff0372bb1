// Part 1 of the seeds npm test runs (sim/seeds.ts): every invariant and history check holds.
import { describe, expect, it } from "vitest";
import { nodesFor, seedsOfPart } from "../../sim/seeds.js";
import { runSeed } from "../../sim/simulation.js";

const seeds = seedsOfPart(0, 2);
const BLOCK = 25;

describe("simulator: seeds hold every invariant (part 1 of 2)", () => {
  for (let i = 0; i < seeds.length; i += BLOCK) {
    const block = seeds.slice(i, i + BLOCK);
    it(`seeds ${block[0]}..${block.at(-1)} (every other one)`, async () => {
      const failures: string[] = [];
      for (const s of block) {
        const r = await runSeed({ seed: s, nodes: nodesFor(s) });
        if (r.violation) failures.push(`seed ${s}: ${r.violation.message} — replay: npm run sim -- --seed ${s} --nodes ${r.nodes} --verbose`);
      }
      expect(failures).toEqual([]);
    });
  }
});
