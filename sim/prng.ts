// sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG): 128 bits of state, passes PractRand, and is a handful
// of 32-bit integer operations per draw. The simulator's ONLY source of randomness: every choice it makes, and
// every RaftNode's `rng`, derives from one seed, so a seed replays exactly.

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // Spread the seed over the state with splitmix32, then discard the first outputs (sfc32's recommendation).
    let s = seed >>> 0;
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Prng.pick: cannot pick from an empty list");
    return items[Math.floor(this.next() * items.length)];
  }

  /** An independent generator seeded from this one (a node's own rng; a subsystem's own stream). */
  fork(): Prng {
    return new Prng(this.nextU32() ^ Math.imul(this.nextU32(), 0x27d4eb2d));
  }

  /** This generator as the `() => number` a RaftConfig wants. */
  asFunction(): () => number {
    return () => this.next();
  }
}
