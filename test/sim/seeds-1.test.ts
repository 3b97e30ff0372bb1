// Part 2 of the seeds npm test runs (sim/seeds.ts).
import { describeSeedPart } from "./seed-part.js";

describeSeedPart(1, 2);
