// Values are bytes: how the CLI takes them in (arguments, stdin, files) and shows them (as text when they are
// UTF-8, marked otherwise). Nothing is changed silently: text that did not arrive as valid UTF-8 is refused.

import { isUtf8 } from "node:buffer";
import { ConcordError } from "../../src/client/errors.js";

/** A value for JSON output: the text when it is UTF-8, else base64 marked with `encoding`. */
export function valueJson(b: Uint8Array): { value: string; encoding?: "base64" } {
  return isUtf8(b)
    ? { value: Buffer.from(b).toString("utf8") }
    : { value: Buffer.from(b).toString("base64"), encoding: "base64" };
}

/** A value for human output: the text when it is UTF-8, else its bytes in hex, marked as such. */
export function displayValue(b: Uint8Array): string {
  return isUtf8(b)
    ? Buffer.from(b).toString("utf8")
    : `<${b.byteLength} bytes, not UTF-8: ${Buffer.from(b).toString("hex")}>`;
}

/**
 * A key, name or value given as a command-line argument. Node decodes arguments as UTF-8 and turns invalid bytes
 * into U+FFFD, so an argument holding U+FFFD was almost surely not valid UTF-8: refused rather than stored changed.
 */
export function textArg(name: string, v: string, hint = "keys and names are UTF-8 text"): string {
  const at = v.indexOf("\uFFFD");
  if (at >= 0) {
    throw new ConcordError({
      code: "INVALID_ARGUMENT",
      message: `${name} is not valid UTF-8 (it decodes with U+FFFD, the replacement character, at index ${at}); ${hint}`,
      field: name,
    });
  }
  return v;
}

/** Decodes text read from stdin or a file, refusing bytes that are not UTF-8. */
export function utf8Text(name: string, b: Buffer): string {
  if (!isUtf8(b)) {
    throw new ConcordError({ code: "INVALID_ARGUMENT", message: `${name} is not valid UTF-8 text`, field: name });
  }
  return b.toString("utf8");
}
