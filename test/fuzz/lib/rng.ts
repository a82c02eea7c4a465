/** A small seeded generator (xorshift128+ reduced to 32 bits): runs are reproducible from their seed. */
export class Rng {
  #s0: number;
  #s1: number;

  constructor(seed: number) {
    this.#s0 = (seed ^ 0x9e3779b9) | 0 || 1;
    this.#s1 = (Math.imul(seed, 0x85ebca6b) ^ 0xc2b2ae35) | 0 || 2;
    for (let i = 0; i < 8; i++) this.u32();
  }

  u32(): number {
    let s1 = this.#s0;
    const s0 = this.#s1;
    this.#s0 = s0;
    s1 ^= s1 << 23;
    s1 ^= s1 >>> 17;
    s1 ^= s0 ^ (s0 >>> 26);
    this.#s1 = s1;
    return (this.#s0 + this.#s1) >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}
