// A small seeded PRNG (mulberry32) for the random choices of tests: which messages are dropped, held back or
// reordered, and what the plaintexts look like. Key material never comes from here (it comes from the crypto
// provider); only the scenario does, so a failing run is reproduced by its seed. Isomorphic: no Node APIs.

/** A deterministic pseudo-random generator seeded with a 32-bit integer. Not for keys. */
export class Prng {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** A float in [0, 1). */
  next(): number {
    // mulberry32 (Tommy Ettinger): passes gjrand/PractRand at this size; plenty for choosing test scenarios.
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty array');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  }

  /** `length` pseudo-random bytes (scenario data such as plaintexts or garbage input, never keys). */
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }
}

/**
 * The seed for a test run: `PARLEY_TEST_SEED` when set (to reproduce a failure), otherwise a fresh one.
 * `env` is passed in so that this module stays free of Node globals.
 */
export function chooseSeed(env: Record<string, string | undefined> | undefined): number {
  const fixed = env?.PARLEY_TEST_SEED;
  if (fixed !== undefined && fixed !== '') {
    const n = Number(fixed);
    if (!Number.isInteger(n)) throw new TypeError(`PARLEY_TEST_SEED must be an integer, got ${fixed}`);
    return n >>> 0;
  }
  return (Math.random() * 2 ** 32) >>> 0;
}
