// Logging: pino, JSON lines by default (one object per event, machine-parsable), pretty for humans in dev.
// Events that can repeat without bound (a peer retrying a refused connection every backoff step) go through
// OnceLogger, which logs a (key, reason) pair once until the key is reset.

import { pino, type DestinationStream, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogFormat, LogLevel } from "./config.js";

export type { Logger } from "pino";

export interface CreateLoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** The node's name; every line carries it as `name`. */
  name: string;
  /** Where lines go; stdout when absent. Tests pass a stream to read the lines back. */
  destination?: DestinationStream | NodeJS.WritableStream;
}

/**
 * Secrets that must never reach a log line, wherever they appear in a logged object: the peer secret (for
 * example inside a logged config), bearer tokens, and authorization headers.
 */
const REDACT_PATHS = [
  "peerSecret",
  "*.peerSecret",
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
];

export function createLogger(options: CreateLoggerOptions): Logger {
  const base = {
    name: options.name,
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: "<redacted>" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.format === "pretty") {
    // pino-pretty as an in-process synchronous stream rather than a worker transport: dev output stays ordered
    // with the process's other output, and a crash does not lose the last lines.
    const stream = pretty({
      sync: true,
      colorize: options.destination === undefined && process.stdout.isTTY === true,
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname",
      destination: (options.destination as NodeJS.WritableStream | undefined) ?? 1,
    });
    return pino(base, stream);
  }
  return options.destination === undefined ? pino(base) : pino(base, options.destination as DestinationStream);
}

export type OnceLevel = "fatal" | "error" | "warn" | "info" | "debug";

/**
 * Logs a (key, reason) pair once until `reset(key)`: a key whose reason changes is logged again, with the
 * number of repeats of the previous reason that were suppressed. Keys are bounded (oldest forgotten first) so
 * that an unbounded set of keys, such as remote addresses, cannot grow memory; a forgotten key may log again.
 */
export class OnceLogger {
  private readonly seen = new Map<string, { reason: string; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly maxKeys = 4096,
  ) {
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1)
      throw new RangeError(`OnceLogger maxKeys: expected a positive integer, got ${maxKeys}`);
  }

  /** Returns true when the line was written, false when it was suppressed as a repeat. */
  log(level: OnceLevel, key: string, reason: string, fields: Record<string, unknown> = {}): boolean {
    const last = this.seen.get(key);
    if (last !== undefined && last.reason === reason) {
      last.suppressed++;
      return false;
    }
    if (last === undefined && this.seen.size >= this.maxKeys) {
      this.seen.delete(this.seen.keys().next().value!);
    }
    const line: Record<string, unknown> = { ...fields, key, reason };
    if (last !== undefined && last.suppressed > 0) line.previousReasonRepeats = last.suppressed;
    this.logger[level](line, reason);
    // Delete first so that the map's insertion order stays "least recently logged first" for eviction.
    this.seen.delete(key);
    this.seen.set(key, { reason, suppressed: 0 });
    return true;
  }

  /** Forgets `key` (the condition cleared: the peer connected); returns how many repeats were suppressed. */
  reset(key: string): number {
    const last = this.seen.get(key);
    this.seen.delete(key);
    return last?.suppressed ?? 0;
  }

  clear(): void {
    this.seen.clear();
  }

  get size(): number {
    return this.seen.size;
  }
}
