// The nemesis schedule: quiet period, one fault from the mix, hold it, repair it; repeat until stopped.
// At the end `healAll` undoes whatever any nemesis (or an aborted schedule) left broken, so the final reads
// and checks run against a whole cluster.

import { NORMAL_CLOCK } from "../drivers/driver.js";
import { sleep } from "../util.js";
import type { Nemesis, NemesisContext } from "./nemesis.js";
import { PartitionNemesis } from "./partition.js";
import { LinksNemesis } from "./links.js";
import { KillNemesis, PauseNemesis } from "./process-faults.js";
import { TransferNemesis } from "./transfer.js";
import { MemberNemesis } from "./membership.js";
import { DiskNemesis } from "./disk.js";
import { ClockNemesis } from "./clock.js";

export const NEMESIS_NAMES = ["none", "partition", "links", "kill", "pause", "transfer", "member", "disk", "clock"] as const;
export type NemesisName = (typeof NEMESIS_NAMES)[number];

export function makeNemesis(name: string): Nemesis | null {
  switch (name) {
    case "none":
      return null;
    case "partition":
      return new PartitionNemesis();
    case "links":
      return new LinksNemesis();
    case "kill":
      return new KillNemesis();
    case "pause":
      return new PauseNemesis();
    case "transfer":
      return new TransferNemesis();
    case "member":
      return new MemberNemesis();
    case "disk":
      return new DiskNemesis();
    case "clock":
      return new ClockNemesis();
    default:
      throw new TypeError(`unknown nemesis ${JSON.stringify(name)}; accepted: ${NEMESIS_NAMES.join(", ")} (comma-separated for a mix)`);
  }
}

export interface ScheduleOptions {
  quietMs: readonly [number, number];
  faultMs: readonly [number, number];
}

export async function runSchedule(ctx: NemesisContext, nemeses: readonly Nemesis[], stop: AbortSignal, opts: ScheduleOptions): Promise<void> {
  if (nemeses.length === 0) return;
  const between = ([lo, hi]: readonly [number, number]) => lo + ctx.rng.int(Math.max(1, hi - lo));
  // Round-robin over a seeded shuffle: in a mix of k nemeses every one fires within k faults.
  const order = ctx.rng.shuffle(nemeses);
  for (let turn = 0; !stop.aborted; turn++) {
    await sleep(between(opts.quietMs), stop);
    if (stop.aborted) break;
    const nemesis = order[turn % order.length]!;
    await step(ctx, nemesis, "start");
    await sleep(between(opts.faultMs), stop);
    await step(ctx, nemesis, "stop");
  }
}

async function step(ctx: NemesisContext, nemesis: Nemesis, phase: "start" | "stop"): Promise<void> {
  try {
    const detail = await (phase === "start" ? nemesis.start(ctx) : nemesis.stop(ctx));
    ctx.history.fault(phase, nemesis.name, detail);
    ctx.log(`nemesis ${nemesis.name} ${phase}: ${detail}`);
  } catch (e) {
    const detail = `${phase} failed: ${(e as Error).message.split("\n")[0]}`;
    ctx.history.fault("info", nemesis.name, detail);
    ctx.log(`nemesis ${nemesis.name} ${detail}`);
  }
}

/** Repairs everything: links, paused and stopped members, clocks. */
export async function healAll(ctx: NemesisContext): Promise<void> {
  ctx.driver.healLinks();
  for (const n of ctx.driver.pausedMembers()) ctx.driver.resume(n);
  for (const m of ctx.driver.members()) {
    ctx.driver.setClock(m.name, NORMAL_CLOCK);
    if (!ctx.driver.running().includes(m.name)) await ctx.driver.restart(m.name).catch(() => {});
  }
  ctx.history.fault("stop", "heal", "all links pass, all members running, clocks normal");
}
