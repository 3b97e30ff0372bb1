// Clock faults (through the clock-skew preload): bump a minority's wall clock by up to ±60 s (forward bumps
// also jump the monotonic clock), run its monotonic clock fast or slow (0.5×–5×), or strobe its wall clock.
// Leases and locks must stay safe: a fast leader clock expires leases early, which fencing must absorb.

import { NORMAL_CLOCK, type ClockSettings } from "../drivers/driver.js";
import type { Nemesis, NemesisContext } from "./nemesis.js";

export class ClockNemesis implements Nemesis {
  readonly name = "clock";
  private skewed: string[] = [];

  async start(ctx: NemesisContext): Promise<string> {
    const running = ctx.driver.running();
    if (running.length === 0) return "nothing running";
    const leader = await ctx.driver.leader(3000);
    const victims = ctx.rng.next() < 0.5 && leader !== null ? [leader] : ctx.rng.shuffle(running).slice(0, Math.max(1, Math.floor((running.length - 1) / 2)));
    const kind = ctx.rng.pick(["bump", "rate", "strobe"] as const);
    const parts: string[] = [];
    for (const v of victims) {
      const clock: ClockSettings = { ...NORMAL_CLOCK };
      if (kind === "bump") clock.offsetMs = (ctx.rng.next() < 0.5 ? -1 : 1) * (1000 + ctx.rng.int(59_000));
      else if (kind === "rate") clock.rate = ctx.rng.pick([0.5, 1.5, 2, 3, 5]);
      else {
        clock.strobeMs = 50 + ctx.rng.int(200);
        clock.strobeDeltaMs = 1000 + ctx.rng.int(10_000);
      }
      ctx.driver.setClock(v, clock);
      this.skewed.push(v);
      parts.push(`${v} ${JSON.stringify(clock)}`);
    }
    return `${kind}: ${parts.join("; ")}`;
  }

  async stop(ctx: NemesisContext): Promise<string> {
    const names = this.skewed;
    this.skewed = [];
    for (const n of names) if (ctx.driver.members().some((m) => m.name === n)) ctx.driver.setClock(n, NORMAL_CLOCK);
    return `clocks reset: ${names.join(",") || "none"}`;
  }
}
