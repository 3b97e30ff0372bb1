// Part 1 of the seeds npm test runs (sim/seeds.ts).
import { describeSeedPart } from "./seed-part.js";

describeSeedPart(0, 2);
