// Typed errors of the history checkers. Bad input never crashes a checker: it is rejected with one of these,
// naming where the input is wrong (a history line, an operation, a field) and what would have been accepted.

/** A history (JSONL text or in-memory events) is malformed; `line` is 1-based in the source text. */
export class HistoryFormatError extends Error {
  readonly code = "HISTORY_FORMAT";
  constructor(
    readonly line: number,
    readonly problem: string,
  ) {
    super(`history line ${line}: ${problem}`);
    this.name = "HistoryFormatError";
  }
}

/** An operation or initial value does not fit the chosen model (e.g. a `cas` whose value is not `[expected, new]`). */
export class ModelInputError extends Error {
  readonly code = "MODEL_INPUT";
  constructor(
    readonly model: string,
    readonly problem: string,
    readonly line?: number,
  ) {
    super(line === undefined ? `model ${model}: ${problem}` : `model ${model}, history line ${line}: ${problem}`);
    this.name = "ModelInputError";
  }
}

/** The input of one of the small checkers (set, lock safety, watch order, election) is malformed. */
export class CheckerInputError extends Error {
  readonly code = "CHECKER_INPUT";
  constructor(
    readonly checker: string,
    readonly problem: string,
  ) {
    super(`${checker} checker: ${problem}`);
    this.name = "CheckerInputError";
  }
}
