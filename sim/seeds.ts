// Which seeds the test suite runs (npm test): test/sim/seeds-*.test.ts split them so both cores work. The
// mutation runs (sim/mutants.ts) promise that every broken rule is caught within these seeds.

/** Seeds 1..SEEDS_IN_TESTS run in npm test. */
export const SEEDS_IN_TESTS = 300;

/** Founding voters by seed: odd seeds 3, even seeds 5 (the CLI's default too). */
export const nodesFor = (seed: number): number => (seed % 2 === 0 ? 5 : 3);

/** The seeds of test file `part` of `parts` (round-robin, so each part gets a fair mix). */
export function seedsOfPart(part: number, parts: number): number[] {
  const out: number[] = [];
  for (let s = 1 + part; s <= SEEDS_IN_TESTS; s += parts) out.push(s);
  return out;
}
