// `npm run image [-- --tag name:tag]`: builds a runnable image of a Concord member from this checkout without
// pulling anything (image/build.ts); how to run it: docs/operations.md, "Container image".

import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { buildMemberImage, checkImageRuns, DEFAULT_IMAGE_TAG } from "./build.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { tag } = new Command()
  .name("image")
  .description("build a runnable Concord member image FROM scratch from this checkout (nothing is pulled)")
  .option("--tag <name>", "image name and tag", DEFAULT_IMAGE_TAG)
  .parse(process.argv)
  .opts<{ tag: string }>();

try {
  await buildMemberImage({ repoRoot, tag, log: (m) => console.log(`image: ${m}`) });
  await checkImageRuns(tag);
  console.log(`image: ${tag} built and starts; run it as docs/operations.md ("Container image") shows`);
} catch (e) {
  console.error(`image: ${(e as Error).message}`);
  process.exitCode = 1;
}
