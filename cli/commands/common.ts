// Shared plumbing of the client commands: connection options, output (-w table|json), and errors (one line
// on stderr, non-zero exit code).

import fs from "node:fs";
import { InvalidArgumentError, Option, type Command } from "commander";
import { connect, type Client, type ClientOptions } from "../../src/client/client.js";
import { ConcordError } from "../../src/client/errors.js";

export interface ClientFlags {
  endpoints?: string;
  token?: string;
  /** --user name[:password] (a runtime user; see resolveUser). */
  user?: string;
  json?: boolean;
  /** Milliseconds (parsed by durationArg). */
  requestTimeout: number;
  /** PEM contents of --cacert, --cert and --key (read by pemFile). */
  cacert?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Exit codes: 0 ok, 1 operation failed, 2 bad usage/argument, 3 lock busy or timed out (try again later). */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, BUSY: 3 } as const;

export const ENDPOINTS_HELP = "member client URLs, comma-separated (default ws://127.0.0.1:7100)";

/** Adds --endpoints, --token, --cacert/--cert/--key, --request-timeout (and --json when `json`) to a command. */
export function clientCommand(cmd: Command, opts: { json?: boolean } = {}): Command {
  cmd
    .addOption(new Option("--endpoints <urls>", ENDPOINTS_HELP).env("CONCORD_ENDPOINTS"))
    .addOption(new Option("--token <token>", "bearer token when the cluster requires one").env("CONCORD_TOKEN"))
    .addOption(
      new Option("--user <name[:password]>", "authenticate as a runtime user; without :password, CONCORD_PASSWORD or a prompt gives it").env("CONCORD_USER"),
    )
    .addOption(
      new Option("--cacert <file>", "wss: CA certificate(s) to trust, PEM (default: the system's CAs)")
        .env("CONCORD_CACERT")
        .argParser(pemFile),
    )
    .addOption(
      new Option("--cert <file>", "wss: client certificate, PEM, for members that require one (with --key)")
        .env("CONCORD_CERT")
        .argParser(pemFile),
    )
    .addOption(new Option("--key <file>", "wss: private key of --cert, PEM").env("CONCORD_KEY").argParser(pemFile))
    .addOption(
      new Option("--request-timeout <duration>", "deadline of each request, retries included")
        .argParser(durationArg(1))
        .default(10_000, "10s"),
    );
  if (opts.json) addWriteOut(cmd);
  return cmd;
}

/**
 * Makes `parent` (which is also a command of its own, e.g. `concord lock NAME`) dispatch to subcommands named
 * first: options before the subcommand's name would be the parent's and never reach it, so they are refused.
 */
export function withInspectionSubcommands(parent: Command): Command {
  return parent
    .enablePositionalOptions()
    .helpCommand(false)
    .hook("preSubcommand", (self, sub) => {
      const given = self.options.find((opt) => self.getOptionValueSource(opt.attributeName()) === "cli");
      if (given) self.error(`${given.long ?? given.flags} comes before "${sub.name()}": give options after the subcommand (concord ${self.name()} ${sub.name()} … ${given.long})`);
    });
}

export const WRITE_OUT_FORMATS = ["table", "json"] as const;

/**
 * Adds the output format: `-w, --write-out table|json` (as etcdctl), and `--json` for `-w json`. Either sets
 * `json` in the command's options, which the command reads.
 */
export function addWriteOut(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("-w, --write-out <format>", "output format: table (for people) or json (one JSON document or line)")
        .choices(WRITE_OUT_FORMATS)
        .default("table"),
    )
    .addOption(new Option("--json", "the same as -w json").conflicts("writeOut"))
    .hook("preAction", (_self, action) => {
      if (action.opts().writeOut === "json") action.setOptionValue("json", true);
    });
}

// Argument parsers for commander (`.argParser()`, `.argument(name, help, parser)`): a bad value is a usage error
// reported by commander before anything connects (exit 2, see configureErrors).

/** The contents of a PEM file argument. */
function pemFile(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (e) {
    throw new InvalidArgumentError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (!pem.includes("-----BEGIN ")) throw new InvalidArgumentError(`${file} is not a PEM file (no -----BEGIN line)`);
  return pem;
}

/** An integer argument >= min. */
export function intArg(min = 0): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

const DURATION_UNITS: Record<string, number> = { "": 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_FORMS = "a duration such as 1500 (milliseconds), 500ms, 10s, 2m or 1h";

/** Parses a duration in milliseconds: "1500", "500ms", "10s", "2.5m", "1h". The CLI's one duration format. */
export function parseDuration(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? ""]);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** A duration argument of at least `minMs`. */
export function durationArg(minMs = 0): (v: string) => number {
  return (v) => {
    const ms = parseDuration(v);
    if (ms === undefined) throw new InvalidArgumentError(`expected ${DURATION_FORMS}`);
    if (ms < minMs) throw new InvalidArgumentError(`expected ${DURATION_FORMS}, at least ${minMs}ms`);
    return ms;
  };
}

/** A lease TTL: at least 100 ms (shorter leases cannot be kept alive reliably). */
export const ttlArg = () => durationArg(100);

export const DEFAULT_ENDPOINT = "ws://127.0.0.1:7100";

/** The client options the common flags ask for. */
export function clientOptions(flags: ClientFlags): ClientOptions {
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new ConcordError({
      code: "INVALID_ARGUMENT",
      message: "--cert and --key go together: give both (a client certificate and its key) or neither",
      field: flags.cert === undefined ? "cert" : "key",
    });
  }
  const tls = { ca: flags.cacert, cert: flags.cert, key: flags.key };
  return {
    token: flags.token,
    timeoutMs: flags.requestTimeout,
    ...(tls.ca || tls.cert ? { tls } : {}),
  };
}

export async function openClient(flags: ClientFlags): Promise<Client> {
  const user = flags.user === undefined ? undefined : await resolveUser(flags.user);
  return connect(flags.endpoints ?? DEFAULT_ENDPOINT, { ...clientOptions(flags), ...(user ? { user } : {}) });
}

/** `name:password`, or `name` with the password from CONCORD_PASSWORD or asked for (as etcdctl --user). */
export async function resolveUser(spec: string): Promise<{ name: string; password: string }> {
  const colon = spec.indexOf(":");
  if (colon >= 0) return { name: spec.slice(0, colon), password: spec.slice(colon + 1) };
  const env = process.env.CONCORD_PASSWORD;
  return { name: spec, password: env !== undefined ? env : await readPassword(`Password for ${spec}: `) };
}

/**
 * A password: typed at a terminal without echo, or the first line of stdin when it is not a terminal (scripts:
 * `printf '%s\n' "$PW" | concord user add alice`).
 */
export async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = "";
    for await (const chunk of stdin) {
      text += (chunk as Buffer).toString("utf8");
      if (text.includes("\n")) break;
    }
    return text.split(/\r?\n/)[0];
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = "";
      const onData = (d: Buffer) => {
        for (const ch of d.toString("utf8")) {
          if (ch === "\r" || ch === "\n") {
            stdin.off("data", onData);
            process.stderr.write("\n");
            return resolve(typed);
          }
          if (ch === "\u0003") {
            stdin.off("data", onData);
            return reject(new Error("interrupted"));
          }
          typed = ch === "\u007f" ? typed.slice(0, -1) : typed + ch;
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
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
