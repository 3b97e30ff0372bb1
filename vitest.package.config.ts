import { defineConfig } from "vitest/config";

// `npm run test:package`: the packed tarball installed and run outside the repository (test/package). Slow (a
// clean build and installs from the registry), so .ci/run runs it and `npm test` does not.
export default defineConfig({
  test: {
    include: ["test/package/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 360_000,
  },
});
