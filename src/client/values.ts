// Values on the wire are bytes; callers may pass strings (stored as UTF-8) and read either form back. Keys and
// names are UTF-8 text: a string that has no UTF-8 form (a lone UTF-16 surrogate) is refused, never changed.

import { clientError, invalidArgument } from "./errors.js";

export type ValueInput = string | Uint8Array;

export function toBytes(field: string, v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === "string") {
    checkWellFormed(field, v, "pass a Uint8Array to store arbitrary bytes");
    return Buffer.from(v, "utf8");
  }
  throw invalidArgument(field, "a string or a Uint8Array", v);
}

export function checkKey(field: string, key: unknown, allowEmpty = false): string {
  if (typeof key !== "string" || (!allowEmpty && key.length === 0)) {
    throw invalidArgument(field, allowEmpty ? "a string (may be empty: every key)" : "a non-empty string", key);
  }
  return checkWellFormed(field, key, "keys and names are UTF-8 text");
}

export function checkPositiveInt(field: string, v: unknown, min = 1): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min)
    throw invalidArgument(field, `an integer >= ${min}`, v);
  return v;
}

/** A UTF-16 surrogate without its pair: a string holding one has no UTF-8 encoding. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkWellFormed(field: string, s: string, hint: string): string {
  const m = LONE_SURROGATE.exec(s);
  if (m) {
    throw clientError(
      "INVALID_ARGUMENT",
      `${field} has a lone UTF-16 surrogate at index ${m.index}, which has no UTF-8 form; expected well-formed Unicode text (${hint})`,
      field,
    );
  }
  return s;
}

const decoder = new TextDecoder("utf-8", { fatal: false });

export function bytesToText(b: Uint8Array): string {
  return decoder.decode(b);
}
