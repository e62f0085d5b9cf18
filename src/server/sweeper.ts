import type { BlobStore } from './blobs/blob-store.js';
import type { Clock } from './clock.js';
import { drop } from './drop.js';
import type { Logger } from './log.js';
import type { DeviceStore, MessageStore, ProvisioningStore, VerificationStore } from './storage/stores.js';

/** What one sweep deleted. */
export interface SweepResult {
  readonly envelopes: number;
  readonly codes: number;
  /** Expired provisioning codes and provisioning messages. */
  readonly provisioning: number;
  readonly blobs: number;
  /** Resumable blob uploads without a chunk for 24 hours. */
  readonly blobUploads: number;
}

/** What the sweeper expires. */
export interface SweptStores {
  readonly messages: MessageStore;
  readonly verification: VerificationStore;
  readonly devices: DeviceStore;
  readonly provisioning: ProvisioningStore;
  readonly blobs: BlobStore;
}

/**
 * Deletes what has expired: envelopes older than the queue TTL (30 days by default; delivery also skips
 * them, so a sweep that has not run yet never lets one through), idempotency keys past their window,
 * expired verification and provisioning codes, provisioning messages, blobs past their TTL (30 days;
 * they are not served once expired either) and, with retention `fetched`, blobs every registered device
 * has fetched (past the grace period), and resumable uploads without a chunk for 24 hours. Runs on an unref'd interval and on demand.
 */
export class Sweeper {
  readonly #stores: SweptStores;
  readonly #clock: Clock;
  readonly #ttl: { readonly queueTtlMs: number; readonly idempotencyTtlMs: number };
  readonly #logger: Logger;
  readonly #timer: NodeJS.Timeout;

  constructor(stores: SweptStores, clock: Clock, ttl: { readonly queueTtlMs: number; readonly idempotencyTtlMs: number }, intervalMs: number, logger: Logger) {
    this.#stores = stores;
    this.#clock = clock;
    this.#ttl = ttl;
    this.#logger = logger;
    this.#timer = setInterval(() => drop(this.sweep(), (err) => this.#logger.warn({ err }, 'sweep failed')), intervalMs);
    this.#timer.unref();
  }

  /** Runs one sweep now. */
  async sweep(): Promise<SweepResult> {
    const now = this.#clock.now();
    const s = this.#stores;
    const envelopes = await s.messages.expire(now - this.#ttl.queueTtlMs, now - this.#ttl.idempotencyTtlMs);
    const codes = await s.verification.expire(now);
    const provisioning = (await s.devices.expire(now)) + (await s.provisioning.expire(now));
    const blobs = await s.blobs.expire(now);
    const blobUploads = await s.blobs.expireUploads(now);
    if (envelopes > 0 || blobs > 0 || blobUploads > 0) this.#logger.info({ event: 'sweep', envelopes, codes, provisioning, blobs, blobUploads }, 'expired data deleted');
    return { envelopes, codes, provisioning, blobs, blobUploads };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
