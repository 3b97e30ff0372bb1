// Process faults: SIGKILL (then restart on the same data directory) and SIGSTOP (then SIGCONT), aimed at a
// random member, the leader, or — for kill — every member at once (a whole-cluster crash and recovery).

import type { Nemesis, NemesisContext } from "./nemesis.js";

export type Target = "random" | "leader" | "all" | "minority";

async function chooseTargets(ctx: NemesisContext, targets: readonly Target[]): Promise<{ target: Target; names: string[] }> {
  const running = ctx.driver.running().filter((n) => !ctx.driver.pausedMembers().includes(n));
  const target = ctx.rng.pick(targets);
  if (running.length === 0) return { target, names: [] };
  switch (target) {
    case "leader": {
      const leader = await ctx.driver.leader(3000);
      return { target, names: [leader ?? ctx.rng.pick(running)] };
    }
    case "all":
      return { target, names: running };
    case "minority": {
      const size = Math.max(1, Math.floor((ctx.driver.members().length - 1) / 2));
      return { target, names: ctx.rng.shuffle(running).slice(0, size) };
    }
    default:
      return { target, names: [ctx.rng.pick(running)] };
  }
}

export class KillNemesis implements Nemesis {
  readonly name = "kill";
  private killed: string[] = [];
  constructor(private readonly targets: readonly Target[] = ["random", "leader", "minority", "all"]) {}

  async start(ctx: NemesisContext): Promise<string> {
    const { target, names } = await chooseTargets(ctx, this.targets);
    await Promise.all(names.map((n) => ctx.driver.kill(n)));
    this.killed.push(...names);
    return `SIGKILL ${target}: ${names.join(",")}`;
  }

  async stop(ctx: NemesisContext): Promise<string> {
    const names = this.killed.filter((n) => ctx.driver.members().some((m) => m.name === n));
    this.killed = [];
    for (const n of names) await ctx.driver.restart(n);
    return `restarted ${names.join(",") || "nothing"}`;
  }
}

export class PauseNemesis implements Nemesis {
  readonly name = "pause";
  private paused: string[] = [];
  constructor(private readonly targets: readonly Target[] = ["random", "leader", "minority"]) {}

  async start(ctx: NemesisContext): Promise<string> {
    const { target, names } = await chooseTargets(ctx, this.targets);
    for (const n of names) ctx.driver.pause(n);
    this.paused.push(...names);
    return `SIGSTOP ${target}: ${names.join(",")}`;
  }

  async stop(ctx: NemesisContext): Promise<string> {
    const names = this.paused;
    this.paused = [];
    for (const n of names) ctx.driver.resume(n);
    return `SIGCONT ${names.join(",") || "nothing"}`;
  }
}
