// The history checkers: linearizability against a model, and the small property checkers of the test suites.

export * from "./errors.js";
export * from "./history.js";
export * from "./models.js";
export * from "./linearizability.js";
export * from "./report.js";
export * from "./set.js";
export * from "./lock-safety.js";
export * from "./watch-order.js";
export * from "./election.js";
