// Disk faults on a minority: with the member stopped, truncate its newest WAL segment's tail (a torn write
// it must survive) or flip bits in the middle of it (corruption it must DETECT: refuse to start, naming the
// file and offset). A member that detected corruption is re-seeded as an operator would: removed from the
// configuration, replaced by a fresh member. An undetected flip is a finding (recorded as a violation).

import type { DiskFault, DiskFaultOutcome } from "../drivers/driver.js";
import type { Nemesis, NemesisContext } from "./nemesis.js";

export class DiskNemesis implements Nemesis {
  readonly name = "disk";
  readonly outcomes: DiskFaultOutcome[] = [];
  private reseed: string | null = null;
  private flips = 0;

  async start(ctx: NemesisContext): Promise<string> {
    const leader = await ctx.driver.leader(3000);
    const running = ctx.driver.running().filter((n) => n !== leader && !ctx.driver.pausedMembers().includes(n));
    if (running.length === 0) return "no follower to damage";
    const victim = ctx.rng.pick(running);
    // Alternate, starting with a flip: each run exercises both detection and torn-tail recovery.
    const fault: DiskFault = this.outcomes.length % 2 === 0 ? "flip-wal-bits" : "truncate-wal-tail";
    if (fault === "flip-wal-bits") this.flips++;
    const outcome = await ctx.driver.corruptDisk(victim, fault, ctx.rng.int(1 << 30));
    this.outcomes.push(outcome);
    const verdict = fault === "flip-wal-bits" ? (outcome.detected ? "DETECTED (refused to start)" : "NOT DETECTED") : outcome.restarted ? "recovered" : "did not restart";
    ctx.history.fault("info", this.name, `${victim} ${fault}: ${outcome.detail}: ${verdict}`);
    if (!outcome.restarted) this.reseed = victim;
    return `${victim} ${fault}: ${verdict}`;
  }

  async stop(ctx: NemesisContext): Promise<string> {
    const victim = this.reseed;
    this.reseed = null;
    if (victim === null) return "nothing to re-seed";
    await ctx.driver.removeMember(victim);
    const added = await ctx.driver.addMember();
    return `re-seeded ${victim} as ${added}`;
  }
}
