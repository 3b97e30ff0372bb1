import { describe, expect, it } from "vitest";
import { IdleCollector } from "../../src/server/idle-gc.js";

describe("IdleCollector", () => {
  it("collects once the watched progress stops moving, not while it moves", () => {
    let progress = 0;
    const collected: number[] = [];
    const idle = new IdleCollector(() => progress, (ms) => collected.push(ms), 3_600_000); // checks driven by hand
    idle.checkIdle();
    expect(collected).toEqual([]); // not armed: nothing to return
    idle.arm();
    for (let i = 0; i < 5; i++) {
      progress++;
      idle.checkIdle();
    }
    expect(collected).toEqual([]); // busy all along
    idle.checkIdle();
    expect(collected).toHaveLength(1);
    expect(idle.collections).toBe(1);
    idle.checkIdle();
    expect(collected).toHaveLength(1); // once per arm
    idle.arm();
    idle.stop(); // cancels
    idle.checkIdle();
    expect(idle.collections).toBe(1);
  });
});
