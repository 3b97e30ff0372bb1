import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "results/**", ".concord/**", "coverage/**", ".test-build/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  {
    // The deterministic cores: no clocks, randomness, timers or I/O (see docs/architecture.md).
    files: ["src/raft/**/*.ts", "src/statemachine/**/*.ts", "src/locks/**/*.ts"],
    rules: {
      "no-restricted-globals": ["error", "setTimeout", "setInterval", "setImmediate", "performance"],
      "no-restricted-properties": [
        "error",
        { object: "Date", property: "now", message: "pure core: time enters through tick() or log entries" },
        { object: "Math", property: "random", message: "pure core: use the injected seeded PRNG" },
      ],
      "no-restricted-imports": [
        "error",
        { patterns: ["node:*", "fs", "net", "http", "https", "child_process", "ws", "../server/*", "../transport/*", "../storage/*"] },
      ],
    },
  },
  {
    // The host: deterministic too. It reaches time, the disk and the network only through src/host/world.ts, so
    // the simulator runs it unchanged; the real implementations (node:fs, ws, timers) are the server's wiring.
    files: ["src/host/**/*.ts"],
    rules: {
      "no-restricted-globals": ["error", "setTimeout", "setInterval", "setImmediate", "performance", "process"],
      "no-restricted-properties": [
        "error",
        { object: "Date", property: "now", message: "host: time comes from World.clock" },
        { object: "Math", property: "random", message: "host: randomness comes from World.random" },
      ],
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            "node:*",
            "fs",
            "net",
            "http",
            "https",
            "child_process",
            "ws",
            "../server/*",
            "../transport/peer.js",
            "../transport/peer-link.js",
            "../transport/peer-inbound.js",
            "../transport/client-socket.js",
            "../transport/ws-gateway.js",
            "../transport/turn-batching.js",
            "../storage/node-file-system.js",
            "../storage/data-dir.js",
          ],
        },
      ],
    },
  },
);
