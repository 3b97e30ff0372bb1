import os from "node:os";
import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    exclude: [...configDefaults.exclude, "test/package/**"], // npm run test:package (vitest.package.config.ts)
    globalSetup: ["test/global-build.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // At least two files at once: most files wait on real member processes and sockets, so even two cores keep
    // both busy (vitest's default of cores - 1 would run one file at a time here). Each file has its own ports.
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
  },
});
