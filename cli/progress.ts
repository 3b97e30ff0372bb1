// Progress bars on stderr with cli-progress: redrawn in place on a terminal, and nothing at all when stderr is a
// pipe or a file (the commands print their result anyway), so captured output carries no control characters.

import { SingleBar, type ValueType } from "cli-progress";

/**
 * A bar in `format` (cli-progress tokens: {bar}, {percentage}, {value}, {total} and payload fields), with {value}
 * and {total} rendered by `unit`. Call start(), update() and, on every path, stop(): a started bar redraws on a
 * timer until stopped.
 */
export function progressBar(
  format: string,
  unit: (v: number) => string,
  stream: NodeJS.WritableStream = process.stderr,
): SingleBar {
  return new SingleBar({
    stream,
    format,
    barsize: 30,
    barCompleteChar: "#",
    barIncompleteChar: ".",
    // An unknown total (0) reads as 0%, not as done.
    emptyOnZero: true,
    formatValue: (v: number, _o: unknown, type: ValueType) => (type === "value" || type === "total" ? unit(v) : String(v)),
  });
}

export const mebibytes = (bytes: number): string => (bytes / (1024 * 1024)).toFixed(1);
