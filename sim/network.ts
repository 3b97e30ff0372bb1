// The simulated network between endpoints (members, and the simulated clients): per-message delay drawn from the
// current delay profile, loss, duplication (and so reordering), and partitions as a set of cut directed links.
// Peer messages are datagrams: a cut link drops what is sent over it and what was in flight on it when it is
// delivered. Client connections are streams (client-socket.ts): in order, never lost, stalled by a cut. All
// randomness comes from the simulation's PRNG.

import type { Message } from "../src/raft/types.js";
import type { Prng } from "./prng.js";

export interface NetworkProfile {
  /** Delay range of an ordinary message, in virtual time units (a tick is ~100). */
  minDelay: number;
  maxDelay: number;
  /** Probability that a message is delayed by up to `spikeDelay` instead (reorders it past later ones). */
  spikeRate: number;
  spikeDelay: number;
  lossRate: number;
  duplicateRate: number;
}

export const calmNetwork: NetworkProfile = {
  minDelay: 2,
  maxDelay: 20,
  spikeRate: 0,
  spikeDelay: 0,
  lossRate: 0,
  duplicateRate: 0,
};

export class Network {
  profile: NetworkProfile = calmNetwork;
  private readonly cut = new Set<string>();
  /** Members cut off from everyone on their own (isolations overlap independently of partitions). */
  private readonly isolated = new Map<string, number>();
  /** Scripted scenarios: drop every message this returns true for. */
  dropIf: ((m: Message) => boolean) | null = null;
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(private readonly rng: Prng) {}

  /** Delivery delays for one peer message: [] when lost, two when duplicated. */
  delays(m: Message): number[] {
    this.sent++;
    if (this.isCut(m.from, m.to) || this.dropIf?.(m) || this.rng.chance(this.profile.lossRate)) {
      this.dropped++;
      return [];
    }
    const out = [this.delay()];
    if (this.rng.chance(this.profile.duplicateRate)) {
      this.duplicated++;
      out.push(this.delay());
    }
    return out;
  }

  /** One delivery delay (client streams: never lost). */
  delay(): number {
    const p = this.profile;
    if (p.spikeRate > 0 && this.rng.chance(p.spikeRate))
      return this.rng.int(p.maxDelay, Math.max(p.maxDelay, p.spikeDelay));
    return this.rng.int(p.minDelay, p.maxDelay);
  }

  isCut(from: string, to: string): boolean {
    return (this.cut.size > 0 && this.cut.has(`${from}>${to}`)) || (this.isolated.size > 0 && (this.isolated.has(from) || this.isolated.has(to)));
  }

  cutLink(from: string, to: string): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Split into two sides that cannot talk to each other (both directions). */
  partition(side: readonly string[], others: readonly string[]): void {
    for (const a of side) {
      for (const b of others) {
        this.cutLink(a, b);
        this.cutLink(b, a);
      }
    }
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }

  /** Cut `id` off from every other member (until unisolate; isolations of several members may overlap). */
  isolate(id: string): void {
    this.isolated.set(id, (this.isolated.get(id) ?? 0) + 1);
  }

  unisolate(id: string): void {
    const n = (this.isolated.get(id) ?? 0) - 1;
    if (n > 0) this.isolated.set(id, n);
    else this.isolated.delete(id);
  }

  healAll(): void {
    this.cut.clear();
    this.isolated.clear();
  }
}
