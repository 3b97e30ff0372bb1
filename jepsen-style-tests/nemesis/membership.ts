// Membership changes under load: remove a random non-leader voter (the process stops), later add a fresh
// member (learner → catch up → promote). Never goes below three voters, so a majority can always form.

import type { Nemesis, NemesisContext } from "./nemesis.js";

const MIN_VOTERS = 3;

export class MemberNemesis implements Nemesis {
  readonly name = "member";
  private removed = 0;

  async start(ctx: NemesisContext): Promise<string> {
    const members = ctx.driver.members().map((m) => m.name);
    if (members.length <= MIN_VOTERS) {
      const added = await ctx.driver.addMember();
      return `added ${added} (${members.length} → ${members.length + 1} members)`;
    }
    const leader = await ctx.driver.leader(5000);
    const candidates = members.filter((n) => n !== leader);
    const victim = ctx.rng.pick(candidates);
    await ctx.driver.removeMember(victim);
    this.removed++;
    return `removed ${victim} (${members.length} → ${members.length - 1} members)`;
  }

  async stop(ctx: NemesisContext): Promise<string> {
    if (this.removed === 0) return "nothing to re-add";
    this.removed--;
    const added = await ctx.driver.addMember();
    return `added ${added} (${ctx.driver.members().length} members)`;
  }
}
