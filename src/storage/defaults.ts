// Storage defaults the server's configuration shows as its own (config.ts), in a module of constants only, so that
// loading the configuration loads none of the storage (test/cli/startup.test.ts).

/**
 * 1 MiB of the newest entries held in memory: ~3,500 puts of 256 B, a quarter of a second at put c=256 here, so a
 * follower a collection's pause behind still reads from memory. The entries held, and the frames their data are
 * views of, stay resident and survive young collections: at 4 MiB the largest member held 2–8 MiB more after
 * bench:compare's 100,000 puts, with no throughput to show for it at put c=256 or c=1,024 (docs/benchmarks.md,
 * "The memory log").
 */
export const DEFAULT_MEMORY_LOG_BYTES = 1024 * 1024;
