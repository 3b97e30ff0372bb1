// Histories: the JSONL format of ../shared/vectors/README.md, parsed into typed events and paired into operations.
//
// One line is one event, in real-time order: `invoke` starts an operation on a process, and `ok` (took effect,
// with this result), `fail` (certainly did not take effect) or `info` (unknown) completes it. Pairing rules:
// - a process has at most one operation open at a time; a completion must match its invoke's `f`;
// - `fail` operations are dropped: they did not happen, so they constrain nothing;
// - `info` operations, and invokes never completed, stay open until the end of the history: they may take
//   effect at any point after their invoke, or never.

import { assert } from "../assert.js";
import { HistoryFormatError } from "./errors.js";

export type ProcessId = number | string;
export type EventType = "invoke" | "ok" | "fail" | "info";

const EVENT_TYPES: ReadonlySet<string> = new Set(["invoke", "ok", "fail", "info"]);

/** One validated history line. */
export interface HistoryEvent {
  /** 1-based line in the source text (or 1-based position for in-memory histories). */
  readonly line: number;
  readonly process: ProcessId;
  readonly type: EventType;
  readonly f: string;
  readonly key?: string;
  readonly value: unknown;
  /** Fenced locks: the fencing token (returned by `acquire`, carried by `release`). */
  readonly token?: number;
  /** Nanoseconds, for reports only: order is the line order. */
  readonly time?: number;
}

/** A paired operation that may have taken effect: completed `ok`, or open until the end (`info`). */
export interface Operation {
  /** Dense index in the paired history, in invoke order. */
  readonly id: number;
  readonly process: ProcessId;
  readonly f: string;
  readonly key?: string;
  /** The invoke's value (what the client asked for: the value written, `[expected, new]` for cas). */
  readonly input: unknown;
  /** The completion's value (what the client was told, e.g. the value read); undefined when `info`. */
  readonly output: unknown;
  /** The completion's token if it carries one, else the invoke's. */
  readonly token?: number;
  readonly status: "ok" | "info";
  /** Positions in the event sequence: the real-time order. `completeIndex` is Infinity when open. */
  readonly invokeIndex: number;
  readonly completeIndex: number;
  readonly invokeLine: number;
  /** null when the operation never completed or completed with `info`. */
  readonly completeLine: number | null;
  readonly invokeTime?: number;
  readonly completeTime?: number;
}

export interface PairedHistory {
  readonly operations: Operation[];
  /** How many `fail` operations were dropped. */
  readonly failed: number;
  readonly events: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validates one decoded event object; `line` is used in error messages. */
export function validateEvent(raw: unknown, line: number): HistoryEvent {
  if (!isRecord(raw)) throw new HistoryFormatError(line, `expected a JSON object, got ${describe(raw)}`);
  const { process, type, f, key, value, token, time } = raw;
  if (!(
    (typeof process === "number" && Number.isSafeInteger(process) && process >= 0) ||
    (typeof process === "string" && process.length > 0)
  )) {
    throw new HistoryFormatError(
      line,
      `"process" must be a non-negative integer or a non-empty string, got ${describe(process)}`,
    );
  }
  if (typeof type !== "string" || !EVENT_TYPES.has(type)) {
    throw new HistoryFormatError(line, `"type" must be one of invoke, ok, fail, info; got ${describe(type)}`);
  }
  if (typeof f !== "string" || f.length === 0)
    throw new HistoryFormatError(line, `"f" must be a non-empty string, got ${describe(f)}`);
  if (key !== undefined && typeof key !== "string")
    throw new HistoryFormatError(line, `"key" must be a string when present, got ${describe(key)}`);
  if (token !== undefined && token !== null && !(typeof token === "number" && Number.isSafeInteger(token))) {
    throw new HistoryFormatError(line, `"token" must be an integer when present, got ${describe(token)}`);
  }
  if (time !== undefined && !(typeof time === "number" && Number.isFinite(time))) {
    throw new HistoryFormatError(line, `"time" must be a finite number when present, got ${describe(time)}`);
  }
  const event: { -readonly [K in keyof HistoryEvent]: HistoryEvent[K] } = {
    line,
    process,
    type: type as EventType,
    f,
    value: value ?? null,
  };
  if (key !== undefined) event.key = key;
  if (typeof token === "number") event.token = token;
  if (time !== undefined) event.time = time;
  return event;
}

/** Parses JSONL text into validated events. Blank lines are skipped (their numbers still count). */
export function parseHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const source = lines[i]!.trim();
    if (source.length === 0) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(source);
    } catch (error) {
      throw new HistoryFormatError(
        i + 1,
        `not valid JSON (${(error as Error).message}); each line must be one JSON object`,
      );
    }
    events.push(validateEvent(raw, i + 1));
  }
  return events;
}

/** Pairs invokes with completions per process (see the rules at the top of this file). */
export function pairOperations(events: readonly HistoryEvent[]): PairedHistory {
  interface Open {
    readonly event: HistoryEvent;
    readonly index: number;
  }
  const open = new Map<ProcessId, Open>();
  const drafts: Array<{ invoke: Open; completion: { event: HistoryEvent; index: number } | null }> = [];
  const draftOf = new Map<HistoryEvent, number>();
  let failed = 0;
  const dropped = new Set<number>();

  for (let index = 0; index < events.length; index++) {
    const event = events[index]!;
    const pending = open.get(event.process);
    if (event.type === "invoke") {
      if (pending !== undefined) {
        throw new HistoryFormatError(
          event.line,
          `process ${String(event.process)} invokes "${event.f}" while its "${pending.event.f}" from line ${pending.event.line} is still open; a process has at most one operation open`,
        );
      }
      open.set(event.process, { event, index });
      draftOf.set(event, drafts.length);
      drafts.push({ invoke: { event, index }, completion: null });
      continue;
    }
    if (pending === undefined) {
      throw new HistoryFormatError(
        event.line,
        `"${event.type}" for process ${String(event.process)}, which has no open invoke`,
      );
    }
    if (pending.event.f !== event.f) {
      throw new HistoryFormatError(
        event.line,
        `completion "f" is "${event.f}" but the invoke on line ${pending.event.line} is "${pending.event.f}"`,
      );
    }
    if (pending.event.key !== event.key && event.key !== undefined) {
      throw new HistoryFormatError(
        event.line,
        `completion "key" is "${event.key}" but the invoke on line ${pending.event.line} has ${describe(pending.event.key)}`,
      );
    }
    open.delete(event.process);
    const draftIndex = draftOf.get(pending.event)!;
    if (event.type === "fail") {
      failed++;
      dropped.add(draftIndex);
    } else if (event.type === "ok") {
      drafts[draftIndex]!.completion = { event, index };
    }
    // `info`: leave the completion null, the operation stays open until the end.
  }

  const operations: Operation[] = [];
  for (let d = 0; d < drafts.length; d++) {
    if (dropped.has(d)) continue;
    const { invoke, completion } = drafts[d]!;
    const op: { -readonly [K in keyof Operation]: Operation[K] } = {
      id: operations.length,
      process: invoke.event.process,
      f: invoke.event.f,
      input: invoke.event.value,
      output: completion === null ? undefined : completion.event.value,
      status: completion === null ? "info" : "ok",
      invokeIndex: invoke.index,
      completeIndex: completion === null ? Infinity : completion.index,
      invokeLine: invoke.event.line,
      completeLine: completion === null ? null : completion.event.line,
    };
    if (invoke.event.key !== undefined) op.key = invoke.event.key;
    const token = completion?.event.token ?? invoke.event.token;
    if (token !== undefined) op.token = token;
    if (invoke.event.time !== undefined) op.invokeTime = invoke.event.time;
    if (completion?.event.time !== undefined) op.completeTime = completion.event.time;
    assert(op.invokeIndex < op.completeIndex, "an operation completes after its invoke");
    operations.push(op);
  }
  return { operations, failed, events: events.length };
}

/** Validates in-memory event objects (as a simulator records them); "line" in errors is the 1-based position. */
export function eventsFromObjects(objects: readonly unknown[]): HistoryEvent[] {
  return objects.map((raw, i) => validateEvent(raw, i + 1));
}

/** parseHistory + pairOperations. */
export function readHistory(text: string): PairedHistory {
  return pairOperations(parseHistory(text));
}

/** A short, human-readable rendering of an operation for reports: `p3 cas [1,4] → ok (lines 12–15)`. */
export function formatOperation(op: Operation): string {
  const key = op.key === undefined ? "" : ` ${op.key}`;
  const token = op.token === undefined ? "" : ` token=${op.token}`;
  const result = op.status === "info" ? "info (open until the end)" : `ok ${JSON.stringify(op.output ?? null)}`;
  const lines = op.completeLine === null ? `line ${op.invokeLine}–end` : `lines ${op.invokeLine}–${op.completeLine}`;
  return `p${String(op.process)} ${op.f}${key} ${JSON.stringify(op.input ?? null)}${token} → ${result} (${lines})`;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
