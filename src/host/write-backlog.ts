// The bytes a member's snapshot job has handed to its file and the disk has not yet taken. The job makes pieces
// faster than a busy disk writes them: unbounded, they piled up in memory (each a fresh 1 MiB piece, since none
// came back for reuse), ~90 MiB more resident per member at a million keys, and the save after the last run
// waited 1.3–2.0 s for the queue. Bounded, the job waits for the disk between runs instead.

import { assert } from "../assert.js";

export class WriteBacklog {
  private bytes = 0;
  private resume: (() => void) | undefined;
  /** How many times the job waited for the backlog to fall under the bound. */
  waits = 0;

  constructor(private readonly limitBytes: number) {
    assert(limitBytes > 0, "a write backlog's bound must be positive");
  }

  /** `bytes` were handed to the writer. */
  add(bytes: number): void {
    this.bytes += bytes;
  }

  /** `bytes` handed earlier were written (or dropped: the file failed or was aborted). */
  written(bytes: number): void {
    this.bytes -= bytes;
    assert(this.bytes >= 0, () => `a write backlog went below zero (${this.bytes} bytes)`);
    if (this.resume !== undefined && this.bytes < this.limitBytes) {
      const resume = this.resume;
      this.resume = undefined;
      resume();
    }
  }

  /** Undefined when under the bound; else a promise that resolves once it is. One waiter at a time. */
  whenUnder(): Promise<void> | undefined {
    if (this.bytes < this.limitBytes) return undefined;
    assert(this.resume === undefined, "two waiters on one write backlog");
    this.waits++;
    return new Promise((resolve) => (this.resume = resolve));
  }
}
