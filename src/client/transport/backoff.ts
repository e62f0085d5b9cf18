/**
 * Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff and Jitter"): the n-th wait is
 * uniform in [0, min(cap, base * 2^n)). Clients that lost the server together come back spread out instead of
 * in synchronised waves.
 */
export interface BackoffOptions {
  /** The first ceiling, ms (default 500). */
  readonly baseMs?: number;
  /** The largest ceiling, ms (default 30,000). */
  readonly maxMs?: number;
  /** Uniform random in [0, 1) (default Math.random); injected for deterministic tests. */
  readonly random?: () => number;
}

export class Backoff {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#baseMs = options.baseMs ?? 500;
    this.#maxMs = options.maxMs ?? 30_000;
    this.#random = options.random ?? Math.random;
  }

  /** How many delays have been handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The next delay in ms, and one more attempt counted. */
  next(): number {
    const ceiling = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.floor(this.#random() * ceiling);
  }

  /** Starts over (after a connection that worked). */
  reset(): void {
    this.#attempt = 0;
  }
}
