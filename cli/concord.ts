#!/usr/bin/env node
// The `concord` command.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { ConfigError, addServerOptions, serverConfig } from "../src/server/config.js";
import { registerClientCommands } from "./commands/index.js";
import { benchCommand } from "./bench.js";
import { EXIT } from "./commands/common.js";

// Output piped into `head` and the like: a closed pipe ends the command quietly, as for any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

/** The package's version, from the package.json above this file (cli/ when run from source, dist/cli/ when built). */
function packageVersion(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "concord" && pkg.version) return pkg.version;
    }
    if (path.dirname(dir) === dir) return "unknown";
  }
}

const program = new Command()
  .name("concord")
  .description("Concord: a Raft-based coordination service — linearizable KV, leases, fencing-token locks, leader election")
  .version(packageVersion(), "-V, --version", "print the version")
  // A command's options follow its name: `concord lock status N --endpoints …` reaches `status`, not `lock`.
  .enablePositionalOptions();

addServerOptions(
  program
    .command("server")
    .description("run one cluster member (flags > CONCORD_* environment > --config file > defaults)")
    .addHelpText(
      "after",
      `
Examples:
  concord server --name n1 --data-dir /var/lib/concord/n1 \\
    --client-url ws://10.0.0.1:7000 --peer-url ws://10.0.0.1:7001 \\
    --initial-cluster n1=ws://10.0.0.1:7001,n2=ws://10.0.0.2:7001,n3=ws://10.0.0.3:7001 \\
    --initial-cluster-clients n1=ws://10.0.0.1:7000,n2=ws://10.0.0.2:7000,n3=ws://10.0.0.3:7000
  CONCORD_NAME=n1 CONCORD_DATA_DIR=./data concord server

SIGTERM or SIGINT stops gracefully: a leader hands leadership to the most caught-up voter first.`,
    ),
).action(async (_opts: unknown, command: Command) => {
  let config;
  try {
    config = serverConfig(command);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`concord server: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  // Loaded here, not at the top: a client command (`concord get`, `concord lock`) starts in a fraction of the
  // time without the server's modules (Raft, storage, metrics, logging).
  const { startServer } = await import("../src/server/server.js");
  const server = await startServer(config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, "shutting down");
    const hardStop = setTimeout(() => process.exit(1), 15_000);
    hardStop.unref();
    await server.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  server.host.replica.failed.add(() => setTimeout(() => process.exit(1), 100));
});

program
  .command("dev")
  .description("start a local cluster of real member processes on loopback (what `npm start` runs)")
  .addOption(new Option("--nodes <n>", "members").default("3"))
  .addOption(new Option("--base-port <port>", "client port of n1; n2 is +10, n3 +20 (peer port = client port + 1)").default("7100"))
  .addOption(new Option("--data <dir>", "data directory root").default("./.concord/dev"))
  .addOption(new Option("--fresh", "delete the data directory first (refused while a running process holds it)"))
  .addOption(new Option("--log-level <level>", "members' log level").default("info"))
  .action(async (o: { nodes: string; basePort: string; data: string; fresh?: boolean; logLevel: string }) => {
    const { runDev } = await import("./dev.js");
    await runDev({ nodes: Number(o.nodes), basePort: Number(o.basePort), data: o.data, fresh: !!o.fresh, logLevel: o.logLevel });
  });

program
  .command("check")
  .description("check a history (JSONL, ../shared/vectors/README.md format) for linearizability; exit 0 yes, 1 no, 2 unknown")
  .allowUnknownOption()
  .helpOption(false)
  .argument("[args...]", "see `concord check --help`")
  .action(async () => {
    const { runCheck } = await import("./check.js");
    process.exitCode = runCheck(process.argv.slice(process.argv.indexOf("check") + 1), { out: (l) => console.log(l), err: (l) => console.error(l) });
  });

registerClientCommands(program);
program.addCommand(benchCommand());

/**
 * Argument errors found by commander (unknown option or command, missing or invalid argument) are usage errors:
 * one line on stderr in the format of every other error (`concord <command>: INVALID_ARGUMENT: …`), exit 2.
 * Applied to every command (settings made on the program reach only commands created after them).
 */
function configureErrors(cmd: Command, names: string[]): void {
  const where = ["concord", ...names].join(" ");
  cmd.exitOverride().configureOutput({
    outputError: (str, write) => {
      // One line, whatever commander adds (a "(Did you mean …?)" suggestion comes on a line of its own).
      const message = str.trim().replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
      write(`${where}: INVALID_ARGUMENT: ${message} (see \`${where} --help\`)\n`);
    },
  });
  for (const sub of cmd.commands) configureErrors(sub, [...names, sub.name()]);
}
configureErrors(program, []);

program.parseAsync(process.argv).catch((e: Error) => {
  // Help and --version end here with exit code 0; argument errors were printed by outputError.
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
  console.error(`concord: ${e.message}`);
  process.exit(EXIT.FAILED);
});
