// Values on the wire are bytes; callers may pass strings (stored as UTF-8) and read either form back.

import { invalidArgument } from "./errors.js";

export type ValueInput = string | Uint8Array;

export function toBytes(field: string, v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === "string") return Buffer.from(v, "utf8");
  throw invalidArgument(field, "a string or a Uint8Array", v);
}

export function checkKey(field: string, key: unknown, allowEmpty = false): string {
  if (typeof key !== "string" || (!allowEmpty && key.length === 0)) {
    throw invalidArgument(field, allowEmpty ? "a string (may be empty: every key)" : "a non-empty string", key);
  }
  return key;
}

export function checkPositiveInt(field: string, v: unknown, min = 1): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min)
    throw invalidArgument(field, `an integer >= ${min}`, v);
  return v;
}

const decoder = new TextDecoder("utf-8", { fatal: false });

export function bytesToText(b: Uint8Array): string {
  return decoder.decode(b);
}
