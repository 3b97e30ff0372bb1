// The dashboard's browser test (npm run test:ui, run by .ci/run): real headless Chromium against a real cluster.
// Kept out of `npm test`: it needs Debian's chromium (apt-get install chromium), which .ci/run installs.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/ui/**/*.ui.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
