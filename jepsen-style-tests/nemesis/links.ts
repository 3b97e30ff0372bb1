// Flaky links through the proxies: a random third of the directed peer links is delayed (50–400 ms) and
// another sixth reset (connections torn down, reconnects refused) — slow and bouncing links rather than a clean
// partition. Heal: every link back to pass.

import type { Nemesis, NemesisContext } from "./nemesis.js";

export class LinksNemesis implements Nemesis {
  readonly name = "links";

  async start(ctx: NemesisContext): Promise<string> {
    const parts: string[] = [];
    for (const [from, to] of ctx.driver.links()) {
      const roll = ctx.rng.next();
      if (roll < 1 / 3) {
        const ms = 50 + ctx.rng.int(350);
        ctx.driver.setLink(from, to, "delay", ms);
        parts.push(`${from}→${to} +${ms}ms`);
      } else if (roll < 1 / 2) {
        ctx.driver.setLink(from, to, "reset");
        parts.push(`${from}→${to} reset`);
      }
    }
    return parts.join(", ") || "no link chosen";
  }

  async stop(ctx: NemesisContext): Promise<string> {
    ctx.driver.healLinks();
    return "all links pass";
  }
}
