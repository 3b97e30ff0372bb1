// `concord check` / `npm run check -- …`: checks a JSONL history (../shared/vectors/README.md format) for
// linearizability against a model.
//
// Exit codes: 0 linearizable, 1 not linearizable, 2 unknown (budget spent), 64 usage error,
// 65 malformed history or model input, 66 history file unreadable.

import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { HistoryFormatError, ModelInputError } from "../src/check/errors.js";
import { readHistory } from "../src/check/history.js";
import { checkLinearizability } from "../src/check/linearizability.js";
import type { CheckResult } from "../src/check/linearizability.js";
import { MODELS, modelByName } from "../src/check/models.js";
import { formatFailure, formatVerdictLine } from "../src/check/report.js";

export const EXIT = { linearizable: 0, notLinearizable: 1, unknown: 2, usage: 64, dataError: 65, noInput: 66 } as const;

export interface CheckIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const DEFAULT_INITIAL: Record<string, unknown> = { register: null, mutex: null, "fenced-mutex": null };

/**
 * Validates `--initial` as JSON but keeps the text: commander replaces a parser's `null` result with "", so the
 * value itself is decoded in the action.
 */
function validateJson(text: string): string {
  try {
    JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`not valid JSON: ${text} (examples: null, 0, "a", {"holder": 1})`);
  }
  return text;
}

function parseBudget(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`must be a positive integer number of milliseconds, got ${text}`);
  return n;
}

function exitCodeOf(result: CheckResult): number {
  if (result.verdict === "linearizable") return EXIT.linearizable;
  return result.verdict === "not-linearizable" ? EXIT.notLinearizable : EXIT.unknown;
}

export function buildCheckCommand(io: CheckIo, setExit: (code: number) => void): Command {
  return new Command("check")
    .description(
      "check a JSONL history for linearizability (exit 0 linearizable, 1 not, 2 unknown, 64 usage, 65 bad input, 66 unreadable file)",
    )
    .addOption(
      new Option("--model <model>", "the sequential specification").choices(Object.keys(MODELS)).makeOptionMandatory(),
    )
    .option(
      "--initial <json>",
      "initial model value as JSON (default: null, i.e. empty register / free lock)",
      validateJson,
    )
    .option("--budget-ms <ms>", "give up with exit 2 after this many milliseconds of search", parseBudget)
    .option("--json", "print the full result as JSON instead of text")
    .argument("<history>", "JSONL history file")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .action((file: string, opts: { model: string; initial?: string; budgetMs?: number; json?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        io.err(`concord check: cannot read ${file}: ${(error as Error).message}`);
        return setExit(EXIT.noInput);
      }
      try {
        const model = modelByName(opts.model);
        const initial =
          opts.initial === undefined ? DEFAULT_INITIAL[opts.model] : (JSON.parse(opts.initial) as unknown);
        const budget = opts.budgetMs === undefined ? {} : { timeMs: opts.budgetMs };
        const result = checkLinearizability(readHistory(text), { model, initial, budget });
        if (opts.json === true) io.out(JSON.stringify(result, (_k, v: unknown) => (v === Infinity ? null : v)));
        else {
          io.out(formatVerdictLine(result, opts.model));
          if (result.failure !== undefined) for (const line of formatFailure(result.failure)) io.out(`  ${line}`);
        }
        setExit(exitCodeOf(result));
      } catch (error) {
        if (error instanceof HistoryFormatError || error instanceof ModelInputError) {
          io.err(`concord check: ${file}: ${error.message}`);
          return setExit(EXIT.dataError);
        }
        throw error;
      }
    });
}

/** Runs the command on `argv` (without node and script); returns the exit code. */
export function runCheck(argv: readonly string[], io: CheckIo): number {
  let code: number = EXIT.usage;
  const command = buildCheckCommand(io, (c) => (code = c));
  try {
    command.parse([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; everything else commander refuses is a usage error.
      return error.exitCode === 0 ? 0 : EXIT.usage;
    }
    throw error;
  }
  return code;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = runCheck(process.argv.slice(2), { out: (l) => console.log(l), err: (l) => console.error(l) });
}
