import type { CommandError } from "../statemachine/errors.js";

/** A state machine error carried to the client as it is (code, message, field, compactRevision). */
export class CommandFailure extends Error {
  constructor(readonly error: CommandError) {
    super(error.message);
    this.name = "CommandFailure";
  }
}
