// Leader transfer storm: while active, ask the leader to hand over to a random other voter every few hundred
// milliseconds (TimeoutNow), so leadership moves many times under load.

import { connectClient } from "../client.js";
import { sleep } from "../util.js";
import type { Nemesis, NemesisContext } from "./nemesis.js";

export class TransferNemesis implements Nemesis {
  readonly name = "transfer";
  private storm: { stop: AbortController; done: Promise<number> } | null = null;

  async start(ctx: NemesisContext): Promise<string> {
    const stop = new AbortController();
    const done = (async () => {
      let transfers = 0;
      const client = await connectClient(ctx.driver.endpoints(), { timeoutMs: 3000 }).catch(() => null);
      if (client === null) return 0;
      try {
        while (!stop.signal.aborted) {
          try {
            const { members, leader } = await client.members();
            const voters = members.filter((m) => m.role === "voter" && m.id !== leader).map((m) => m.id);
            if (voters.length > 0) {
              await client.transferLeader(ctx.rng.pick(voters));
              transfers++;
            }
          } catch {
            // A transfer racing an election fails; the storm goes on.
          }
          await sleep(300 + ctx.rng.int(400), stop.signal);
        }
      } finally {
        await client.close().catch(() => {});
      }
      return transfers;
    })();
    this.storm = { stop, done };
    return "leader transfers every 0.3–0.7 s";
  }

  async stop(): Promise<string> {
    const storm = this.storm;
    this.storm = null;
    if (storm === null) return "no storm";
    storm.stop.abort();
    return `storm over: ${await storm.done} transfers requested`;
  }
}
