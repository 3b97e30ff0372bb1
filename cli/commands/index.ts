import type { Command } from "commander";

/** Registers the client-facing subcommands (put/get/…, lease, lock, elect, member, status, snapshot). */
export function registerClientCommands(_program: Command): void {}
