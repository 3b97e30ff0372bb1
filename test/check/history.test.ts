import { describe, expect, it } from "vitest";
import { HistoryFormatError } from "../../src/check/errors.js";
import { formatOperation, pairOperations, parseHistory, readHistory } from "../../src/check/history.js";
import { history, jsonl } from "./helpers.js";

function formatError(text: string): HistoryFormatError {
  try {
    readHistory(text);
  } catch (error) {
    expect(error).toBeInstanceOf(HistoryFormatError);
    return error as HistoryFormatError;
  }
  throw new Error("expected a HistoryFormatError");
}

describe("parseHistory", () => {
  it("parses the vectors' line format, skipping blank lines but counting them", () => {
    const text =
      '{"process":3,"type":"invoke","f":"cas","key":"k1","value":[1,4],"time":1203344}\n\n{"process":3,"type":"ok","f":"cas","key":"k1","value":[1,4],"time":1209911}\n';
    const events = parseHistory(text);
    expect(events).toEqual([
      { line: 1, process: 3, type: "invoke", f: "cas", key: "k1", value: [1, 4], time: 1203344 },
      { line: 3, process: 3, type: "ok", f: "cas", key: "k1", value: [1, 4], time: 1209911 },
    ]);
  });

  it.each([
    ["not json", "{process:1}", 1, /not valid JSON/],
    ["an array", "[1,2]", 1, /expected a JSON object/],
    [
      "a negative process",
      '{"process":-1,"type":"invoke","f":"read"}',
      1,
      /"process" must be a non-negative integer or a non-empty string, got -1/,
    ],
    [
      "an unknown type",
      '{"process":1,"type":"done","f":"read"}',
      1,
      /"type" must be one of invoke, ok, fail, info; got "done"/,
    ],
    ["a missing f", '{"process":1,"type":"invoke"}', 1, /"f" must be a non-empty string, got nothing/],
    ["a numeric key", '{"process":1,"type":"invoke","f":"read","key":7}', 1, /"key" must be a string/],
    ["a fractional token", '{"process":1,"type":"invoke","f":"release","token":1.5}', 1, /"token" must be an integer/],
  ])("rejects %s with the line and what is accepted", (_name, line, lineNo, message) => {
    const error = formatError(`\n${line}\n`);
    expect(error.line).toBe(lineNo + 1);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^history line 2: /);
  });
});

describe("pairOperations", () => {
  it("pairs per process, drops fail, and keeps info and never-completed invokes open until the end", () => {
    const h = history([
      [1, "invoke", "write", 1],
      [2, "invoke", "write", 2],
      [3, "invoke", "cas", [1, 5]],
      [4, "invoke", "read"],
      [2, "fail", "write", 2],
      [1, "ok", "write", 1],
      [3, "info", "cas", [1, 5]],
      [5, "invoke", "read"],
      [5, "ok", "read", 1],
    ]);
    expect(h.failed).toBe(1);
    expect(h.operations.map((op) => [op.process, op.f, op.status, op.completeLine])).toEqual([
      [1, "write", "ok", 6],
      [3, "cas", "info", null],
      [4, "read", "info", null],
      [5, "read", "ok", 9],
    ]);
    const [write, cas, , read] = h.operations;
    expect(write!.completeIndex).toBe(5);
    expect(cas!.completeIndex).toBe(Infinity);
    expect(read!.input).toBeNull();
    expect(read!.output).toBe(1);
    expect(formatOperation(cas!)).toBe("p3 cas [1,5] → info (open until the end) (line 3–end)");
  });

  it("takes the token from the completion, else from the invoke", () => {
    const h = history([
      [1, "invoke", "acquire"],
      [1, "ok", "acquire", null, { token: 7 }],
      [1, "invoke", "release", null, { token: 7 }],
      [1, "ok", "release"],
    ]);
    expect(h.operations.map((op) => op.token)).toEqual([7, 7]);
  });

  it("rejects a second invoke on a process with an open operation", () => {
    const error = formatError(
      jsonl([
        [1, "invoke", "read"],
        [1, "invoke", "write", 3],
      ]),
    );
    expect(error.message).toBe(
      'history line 2: process 1 invokes "write" while its "read" from line 1 is still open; a process has at most one operation open',
    );
  });

  it("rejects a completion with no invoke, and one whose f differs", () => {
    expect(formatError(jsonl([[1, "ok", "read", 1]])).message).toMatch(/"ok" for process 1, which has no open invoke/);
    expect(
      formatError(
        jsonl([
          [1, "invoke", "read"],
          [1, "ok", "write", 1],
        ]),
      ).message,
    ).toMatch(/line 2: completion "f" is "write" but the invoke on line 1 is "read"/);
  });

  it("pairs in-memory events too", () => {
    const events = parseHistory(
      jsonl([
        ["w", "invoke", "write", 1],
        ["w", "ok", "write", 1],
      ]),
    );
    expect(pairOperations(events).operations).toHaveLength(1);
  });
});
