// Network partitions through the per-direction peer proxies (Jepsen's partition nemeses):
// - halves:          a random minority / majority split;
// - isolate-leader:  the current leader alone on one side;
// - majorities-ring: every node sees a majority, but no two see the same one (needs ≥ 5 members);
// - bridge:          two halves joined through one bridge node that sees both;
// - one-way:         one node's inbound links dropped (it still sends, hears nothing): asymmetric faults.

import type { Nemesis, NemesisContext } from "./nemesis.js";

export type PartitionShape = "halves" | "isolate-leader" | "majorities-ring" | "bridge" | "one-way";
export const PARTITION_SHAPES: readonly PartitionShape[] = ["halves", "isolate-leader", "majorities-ring", "bridge", "one-way"];

/** Which directed links to drop: a "grudge" (from → set of members it can no longer reach). */
export type Grudge = Map<string, Set<string>>;

function dropBetween(grudge: Grudge, a: readonly string[], b: readonly string[]): void {
  for (const x of a) for (const y of b) {
    if (!grudge.has(x)) grudge.set(x, new Set());
    if (!grudge.has(y)) grudge.set(y, new Set());
    grudge.get(x)!.add(y);
    grudge.get(y)!.add(x);
  }
}

/** The grudge for `shape` over `nodes` (in ring order). Pure, so it is unit-checked in the self-test. */
export function grudgeFor(shape: PartitionShape, nodes: readonly string[], pick: (n: number) => number, leader: string | null): Grudge {
  const grudge: Grudge = new Map();
  // Fisher–Yates with the caller's PRNG: the same seed gives the same partitions.
  const shuffled = [...nodes].sort((a, b) => a.localeCompare(b));
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  switch (shape) {
    case "halves": {
      const cut = Math.floor(shuffled.length / 2);
      dropBetween(grudge, shuffled.slice(0, cut), shuffled.slice(cut));
      return grudge;
    }
    case "isolate-leader": {
      const alone = leader !== null && shuffled.includes(leader) ? leader : shuffled[0]!;
      dropBetween(grudge, [alone], shuffled.filter((n) => n !== alone));
      return grudge;
    }
    case "majorities-ring": {
      // Node i keeps the k nearest nodes on each side of the ring, k the least with 2k + 1 ≥ a majority:
      // every node sees a majority, and neighbours see different majorities.
      const n = shuffled.length;
      const k = Math.ceil(Math.floor(n / 2) / 2);
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          const d = Math.min(j - i, n - (j - i));
          if (d > k) dropBetween(grudge, [shuffled[i]!], [shuffled[j]!]);
        }
      }
      return grudge;
    }
    case "bridge": {
      // shuffled[cut] is the bridge: it keeps every link; the sides around it lose each other.
      const cut = Math.floor(shuffled.length / 2);
      dropBetween(grudge, shuffled.slice(0, cut), shuffled.slice(cut + 1));
      return grudge;
    }
    case "one-way": {
      const victim = shuffled[0]!;
      // Others cannot reach the victim; the victim still reaches them.
      for (const other of shuffled) if (other !== victim) {
        if (!grudge.has(other)) grudge.set(other, new Set());
        grudge.get(other)!.add(victim);
      }
      return grudge;
    }
  }
}

export function describeGrudge(grudge: Grudge): string {
  const parts: string[] = [];
  for (const [from, tos] of [...grudge.entries()].sort()) if (tos.size > 0) parts.push(`${from}↛{${[...tos].sort().join(",")}}`);
  return parts.join(" ");
}

export class PartitionNemesis implements Nemesis {
  readonly name = "partition";
  constructor(private readonly shapes: readonly PartitionShape[] = PARTITION_SHAPES) {}

  async start(ctx: NemesisContext): Promise<string> {
    const linked = new Set(ctx.driver.links().flat());
    const nodes = ctx.driver.members().map((m) => m.name).filter((n) => linked.has(n));
    const usable = this.shapes.filter((s) => s !== "majorities-ring" || nodes.length >= 5);
    const shape = ctx.rng.pick(usable.length > 0 ? usable : ["halves" as const]);
    const leader = shape === "isolate-leader" ? await ctx.driver.leader(3000) : null;
    const grudge = grudgeFor(shape, nodes, (n) => ctx.rng.int(n), leader);
    for (const [from, tos] of grudge) for (const to of tos) ctx.driver.setLink(from, to, "drop");
    return `${shape}: ${describeGrudge(grudge)}`;
  }

  async stop(ctx: NemesisContext): Promise<string> {
    ctx.driver.healLinks();
    return "all links pass";
  }
}
