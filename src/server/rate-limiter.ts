import type { Clock } from './clock.js';
import type { RateLimit } from './config.js';
import { ServerError, ServerErrorCode } from './errors.js';

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * Token buckets per key (a number, an address, an account, a connection), in memory. Each bucket holds
 * up to `capacity` tokens and refills at `capacity` per `windowMs`. The table is bounded: past
 * `maxKeys` the least recently touched buckets are dropped (a dropped bucket starts full again, so the
 * bound trades a little leniency for bounded memory under a flood of distinct keys).
 */
export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #clock: Clock;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limit: RateLimit, clock: Clock, maxKeys = 100_000) {
    this.#limit = limit;
    this.#clock = clock;
    this.#maxKeys = maxKeys;
  }

  /**
   * Takes `cost` tokens for `key`. Returns 0 when allowed, otherwise the milliseconds until enough
   * tokens are back (and takes nothing).
   */
  take(key: string, cost = 1): number {
    const now = this.#clock.now();
    const { capacity, windowMs } = this.#limit;
    const rate = capacity / windowMs;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: capacity, updatedAt: now };
    } else {
      this.#buckets.delete(key); // re-inserted below: Map order is then least-recently-used first
      const elapsed = Math.max(0, now - bucket.updatedAt);
      bucket.tokens = Math.min(capacity, bucket.tokens + elapsed * rate);
      bucket.updatedAt = now;
    }
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > this.#maxKeys) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done !== true) this.#buckets.delete(oldest.value);
    }
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return 0;
    }
    return Math.max(1, Math.ceil((cost - bucket.tokens) / rate));
  }

  /** Like {@link take}, but throws SERVER_RATE_LIMITED with `retryAfterMs` when refused. */
  check(key: string, what: string, cost = 1): void {
    const wait = this.take(key, cost);
    if (wait > 0) throw new ServerError(ServerErrorCode.RateLimited, `too many ${what}`, { retryAfterMs: wait });
  }

  /** Forgets `key` (its next request starts with a full bucket). */
  reset(key: string): void {
    this.#buckets.delete(key);
  }

  /** How many keys are tracked. */
  get size(): number {
    return this.#buckets.size;
  }
}
