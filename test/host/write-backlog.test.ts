// The bound on a snapshot job's bytes handed to its file and not yet written (Replica.maybeSnapshot): the job asks
// before each run, and waits while the bound is reached.

import { describe, expect, it } from "vitest";
import { WriteBacklog } from "../../src/host/write-backlog.js";

describe("WriteBacklog", () => {
  it("lets the job run under the bound and makes it wait from the bound on, until writes take it back under", async () => {
    const b = new WriteBacklog(100);
    expect(b.whenUnder()).toBeUndefined();
    b.add(60);
    expect(b.whenUnder()).toBeUndefined();
    b.add(40);
    const wait = b.whenUnder();
    expect(wait).toBeInstanceOf(Promise);
    let resumed = false;
    void wait!.then(() => (resumed = true));
    b.written(0);
    await Promise.resolve();
    expect(resumed).toBe(false); // still at the bound
    b.written(60);
    await Promise.resolve();
    expect(resumed).toBe(true);
    expect(b.waits).toBe(1);
    expect(b.whenUnder()).toBeUndefined();
  });

  it("refuses a second waiter, more written than was handed over, and a bound of zero", () => {
    const b = new WriteBacklog(10);
    b.add(10);
    void b.whenUnder();
    expect(() => b.whenUnder()).toThrow(/two waiters/);
    expect(() => b.written(11)).toThrow(/below zero/);
    expect(() => new WriteBacklog(0)).toThrow(/positive/);
  });
});
