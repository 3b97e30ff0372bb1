// Shared plumbing of the client commands: connection options, output (tables or --json), and errors (one line
// on stderr, non-zero exit code).

import { Option, type Command } from "commander";
import { connect, type Client } from "../../src/client/client.js";
import { ConcordError } from "../../src/client/errors.js";

export interface ClientFlags {
  endpoints?: string;
  token?: string;
  json?: boolean;
  requestTimeout?: string;
}

/** Exit codes: 0 ok, 1 operation failed, 2 bad usage/argument, 3 lock busy or timed out (try again later). */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, BUSY: 3 } as const;

export const ENDPOINTS_HELP = "member client URLs, comma-separated (default ws://127.0.0.1:7100)";

/** Adds --endpoints, --token, --request-timeout (and --json when `json`) to a command. */
export function clientCommand(cmd: Command, opts: { json?: boolean } = {}): Command {
  cmd
    .addOption(new Option("--endpoints <urls>", ENDPOINTS_HELP).env("CONCORD_ENDPOINTS"))
    .addOption(new Option("--token <token>", "bearer token when the cluster requires one").env("CONCORD_TOKEN"))
    .addOption(new Option("--request-timeout <ms>", "deadline of each request, retries included").default("10000"));
  if (opts.json) cmd.option("--json", "machine-readable output (JSON)");
  return cmd;
}

export function parseIntArg(name: string, v: string | undefined, min = 0): number {
  const n = Number(v);
  if (v === undefined || v.trim() === "" || !Number.isSafeInteger(n) || n < min) {
    throw new ConcordError({
      code: "INVALID_ARGUMENT",
      message: `${name} is ${JSON.stringify(v)}; expected an integer >= ${min}`,
      field: name,
    });
  }
  return n;
}

/**
 * Parses a duration: plain milliseconds ("1500") or with a unit ("500ms", "10s", "2m").
 */
export function parseDuration(name: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) {
    throw new ConcordError({
      code: "INVALID_ARGUMENT",
      message: `${name} is ${JSON.stringify(v)}; expected a duration such as 1500, 500ms, 10s or 2m`,
      field: name,
    });
  }
  const n = Number(m[1]) * (m[2] === "s" ? 1000 : m[2] === "m" ? 60_000 : 1);
  return Math.round(n);
}

/** A lease TTL flag: a duration of at least 100 ms (shorter leases cannot be kept alive reliably). */
export function parseTtl(name: string, v: string): number {
  const ms = parseDuration(name, v);
  if (ms < 100)
    throw new ConcordError({
      code: "INVALID_ARGUMENT",
      message: `${name} is ${JSON.stringify(v)}; expected at least 100ms`,
      field: name,
    });
  return ms;
}

export async function openClient(flags: ClientFlags): Promise<Client> {
  return connect(flags.endpoints ?? "ws://127.0.0.1:7100", {
    token: flags.token,
    timeoutMs: parseIntArg("--request-timeout", flags.requestTimeout ?? "10000", 1),
  });
}

/** Writes everything pending on stdout/stderr, then exits. */
export function exit(code: number): void {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

/** Prints one line about a failure on stderr and returns the exit code for it. */
export function reportError(command: string, e: unknown): number {
  if (e instanceof ConcordError) {
    console.error(`concord ${command}: ${e.code}: ${e.message}`);
    if (e.code === "INVALID_ARGUMENT") return EXIT.USAGE;
    if (e.code === "LOCK_BUSY" || e.code === "LOCK_TIMEOUT") return EXIT.BUSY;
    return EXIT.FAILED;
  }
  console.error(`concord ${command}: ${e instanceof Error ? e.message : String(e)}`);
  return EXIT.FAILED;
}

/**
 * Runs a command body with a connected client; closes it, reports errors and exits with the right code.
 * `body` returns the exit code (default 0).
 */
export async function run(
  command: string,
  flags: ClientFlags,
  body: (c: Client) => Promise<number | void>,
): Promise<void> {
  let client: Client | null = null;
  let code: number = EXIT.OK;
  try {
    client = await openClient(flags);
    code = (await body(client)) ?? EXIT.OK;
  } catch (e) {
    code = reportError(command, e);
  }
  if (client) await client.close().catch(() => {});
  exit(code);
}

/** Prints rows as an aligned table with a header. */
export function printTable(headers: string[], rows: (string | number)[][]): void {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  for (const r of cells) console.log(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  "));
}

/** Prints one JSON line. Commands turn values into text or marked base64 themselves (valueJson). */
export function printJson(v: unknown): void {
  console.log(JSON.stringify(v));
}

/** Reads all of stdin (for values given as "-"). */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
