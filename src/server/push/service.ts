import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { Clock } from '../clock.js';
import { notFound } from '../errors.js';
import type { RateLimit } from '../config.js';
import { RateLimiter } from '../rate-limiter.js';
import type { PushStore, PushSubscriptionRecord } from '../storage/push-store.js';
import { parseSubscription } from './subscription.js';

/** Subscription changes one device may make: enough for a toggle flipped often, not a flood of writes. */
export const SUBSCRIPTION_RATE: RateLimit = { capacity: 20, windowMs: 60_000 };

/** The device-facing side of Web Push: the VAPID public key, and each device's subscription. */
export class PushService {
  readonly #store: PushStore;
  readonly #clock: Clock;
  readonly #allowLoopbackHttp: boolean;
  readonly #limiter: RateLimiter;
  /** The server's VAPID public key (base64url), which browsers subscribe with. */
  readonly vapidPublicKey: string;

  constructor(store: PushStore, vapidPublicKey: string, clock: Clock, allowLoopbackHttp: boolean) {
    this.#store = store;
    this.vapidPublicKey = vapidPublicKey;
    this.#clock = clock;
    this.#allowLoopbackHttp = allowLoopbackHttp;
    this.#limiter = new RateLimiter(SUBSCRIPTION_RATE, clock);
  }

  /** Checks (`parseSubscription`) and stores the device's subscription, replacing any it had. */
  async subscribe(device: AuthenticatedDevice, body: Uint8Array): Promise<void> {
    this.#limiter.check(`${device.accountId}.${device.deviceId}`, 'push subscription changes');
    const input = parseSubscription(body, this.#allowLoopbackHttp);
    const result = await this.#store.put({ ref: device.ref, accountId: device.accountId, ...input, updatedAt: this.#clock.now() });
    // The device was removed between its authentication and this write.
    if (result.kind === 'device-gone') throw notFound('device');
  }

  subscription(device: AuthenticatedDevice): Promise<PushSubscriptionRecord | undefined> {
    return this.#store.get(device.ref);
  }

  /** Deletes the device's subscription (idempotent). */
  async unsubscribe(device: AuthenticatedDevice): Promise<void> {
    this.#limiter.check(`${device.accountId}.${device.deviceId}`, 'push subscription changes');
    await this.#store.delete(device.ref);
  }
}
