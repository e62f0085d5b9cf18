import type { Clock } from './clock.js';
import { drop } from './drop.js';
import type { Logger } from './log.js';
import type { MessageStore, VerificationStore } from './storage/stores.js';

/** What one sweep deleted. */
export interface SweepResult {
  readonly envelopes: number;
  readonly codes: number;
}

/**
 * Deletes what has expired: envelopes older than the queue TTL (30 days by default; delivery also skips
 * them, so a sweep that has not run yet never lets one through), idempotency keys past their window,
 * and expired verification codes. Runs on an unref'd interval and on demand.
 */
export class Sweeper {
  readonly #messages: MessageStore;
  readonly #verification: VerificationStore;
  readonly #clock: Clock;
  readonly #ttl: { readonly queueTtlMs: number; readonly idempotencyTtlMs: number };
  readonly #logger: Logger;
  readonly #timer: NodeJS.Timeout;

  constructor(
    messages: MessageStore,
    verification: VerificationStore,
    clock: Clock,
    ttl: { readonly queueTtlMs: number; readonly idempotencyTtlMs: number },
    intervalMs: number,
    logger: Logger,
  ) {
    this.#messages = messages;
    this.#verification = verification;
    this.#clock = clock;
    this.#ttl = ttl;
    this.#logger = logger;
    this.#timer = setInterval(() => drop(this.sweep(), (err) => this.#logger.warn({ err }, 'sweep failed')), intervalMs);
    this.#timer.unref();
  }

  /** Runs one sweep now. */
  async sweep(): Promise<SweepResult> {
    const now = this.#clock.now();
    const envelopes = await this.#messages.expire(now - this.#ttl.queueTtlMs, now - this.#ttl.idempotencyTtlMs);
    const codes = await this.#verification.expire(now);
    if (envelopes > 0) this.#logger.info({ event: 'sweep', envelopes, codes }, 'expired envelopes deleted');
    return { envelopes, codes };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
