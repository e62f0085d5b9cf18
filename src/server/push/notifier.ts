/**
 * Wakes offline devices: when an envelope is queued for a device that has no socket, its push
 * subscription (if it has one) gets a Web Push that carries no message content ({@link WAKE_PAYLOAD}).
 *
 * - Only the node that stored the envelope pushes (it sees the `stored` event as the publisher, see
 *   `bus.ts`), so a cluster sends each push once.
 * - "Connected" is known exactly for sockets on this node. In a cluster, when the device's account has a
 *   socket on some node (presence), the device may be connected there: the push waits
 *   {@link PushConfig.ackGraceMs} and is sent only if what woke it is still queued. Alone (the in-process
 *   bus), this node's sockets are all there is, and an unconnected device is pushed at once.
 * - Per device: one push, then at most one more per {@link PushConfig.minIntervalMs} window for everything
 *   queued meanwhile, and only if that is still queued (a device that came online and acknowledged it
 *   gets nothing more). A burst of messages costs one or two pushes and one subscription read per window.
 * - Envelopes a device's own account sent (its other devices' sync copies) do not wake it.
 * - Asynchronous: {@link stored} only records and schedules; nothing here delays a send or its ack. A
 *   push service answering 404 or 410 has dropped the subscription: it is deleted. Other failures are
 *   logged (without the endpoint, a capability URL) and counted; the envelope stays queued either way.
 */
import { Counter, type Registry } from 'prom-client';
import { drop } from '../drop.js';
import type { AccountId, DeviceRef } from '../ids.js';
import type { Logger } from '../log.js';
import type { PresenceDirectory } from '../bus/bus.js';
import type { PushStore, PushSubscriptionRecord, VapidKeyPair } from '../storage/push-store.js';
import type { MessageStore, StoredEnvelope } from '../storage/stores.js';
import type { PushConfig } from './config.js';
import { sendWakePush, type PushRequestOptions, type PushUrgency } from './sender.js';

/** Envelope type 9: a group update the server wrote (administration, not a message). */
const GROUP_UPDATE_TYPE = 9;
/** Devices tracked at once (a state lives for about one window after the device's last envelope). */
const MAX_TRACKED_DEVICES = 100_000;

/** Sends one push; the default is {@link sendWakePush}. Tests and benchmarks may count calls. */
export type PushTransport = (subscription: PushSubscriptionRecord, options: PushRequestOptions) => Promise<number>;

/** What the notifier needs. */
export interface PushNotifierDeps {
  readonly store: PushStore;
  readonly messages: MessageStore;
  readonly vapid: VapidKeyPair;
  readonly config: PushConfig;
  /** Cross-node presence (a cluster's bus); undefined alone. */
  readonly presence: PresenceDirectory | undefined;
  readonly logger: Logger;
  /** Where the `parley_push_*` metrics go. */
  readonly registry: Registry;
  readonly transport?: PushTransport;
}

/** What arrived for one device since its last push decision. */
interface Pending {
  /** Lowest seq queued since then (the queue check looks from there). */
  minSeq: number;
  urgency: PushUrgency;
  /** The sending account of the first envelope, and whether there were others. */
  source: AccountId;
  mixedSources: boolean;
}

/** One device being woken. */
interface DeviceState {
  pending: Pending | undefined;
  /** A push was already sent in this state's life: the next one checks the queue first. */
  pushed: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** Outcomes counted in `parley_push_requests_total`. */
type Outcome = 'sent' | 'gone' | 'rejected' | 'failed';

/** Decides when to wake which device, and sends the pushes. */
export class PushNotifier {
  readonly #deps: PushNotifierDeps;
  readonly #transport: PushTransport;
  /** Sockets (bus subscriptions) per device on this node. */
  readonly #local = new Map<DeviceRef, number>();
  readonly #states = new Map<DeviceRef, DeviceState>();
  readonly #running = new Set<Promise<void>>();
  #inFlight = 0;
  readonly #slotWaiters: Array<() => void> = [];
  readonly #sleepers = new Set<() => void>();
  #closed = false;
  readonly #requests: Counter<'result'>;
  readonly #skipped: Counter<'reason'>;

  constructor(deps: PushNotifierDeps) {
    this.#deps = deps;
    this.#transport = deps.transport ?? sendWakePush;
    const registers = [deps.registry];
    this.#requests = new Counter({
      name: 'parley_push_requests_total',
      help: 'Web Push requests by outcome: sent (2xx), gone (404/410, subscription deleted), rejected (other status), failed (network error or timeout)',
      labelNames: ['result'],
      registers,
    });
    this.#skipped = new Counter({
      name: 'parley_push_skipped_total',
      help: 'Pushes not sent: delivered (acknowledged before the push was due), own (sync copies from the same account), overload (too many devices tracked)',
      labelNames: ['reason'],
      registers,
    });
  }

  /** A socket of the device subscribed on this node. */
  connected(ref: DeviceRef): void {
    this.#local.set(ref, (this.#local.get(ref) ?? 0) + 1);
  }

  /** A socket of the device on this node went away. */
  disconnected(ref: DeviceRef): void {
    const n = (this.#local.get(ref) ?? 0) - 1;
    if (n > 0) this.#local.set(ref, n);
    else this.#local.delete(ref);
  }

  /** The device was removed (its subscription went with it): forget its state. */
  removed(ref: DeviceRef): void {
    const state = this.#states.get(ref);
    if (state?.timer !== undefined) clearTimeout(state.timer);
    this.#states.delete(ref);
  }

  /** An envelope was committed to the device's queue on this node. Never throws, never waits. */
  stored(ref: DeviceRef, envelope: StoredEnvelope): void {
    if (this.#closed || this.#local.has(ref)) return;
    const urgency: PushUrgency = envelope.type === GROUP_UPDATE_TYPE ? 'normal' : 'high';
    let state = this.#states.get(ref);
    if (state === undefined) {
      if (this.#states.size >= MAX_TRACKED_DEVICES) {
        this.#skipped.inc({ reason: 'overload' });
        return;
      }
      state = { pending: undefined, pushed: false, timer: undefined };
      this.#states.set(ref, state);
      this.#schedule(ref, state, 0);
    }
    const p = state.pending;
    if (p === undefined) {
      state.pending = { minSeq: envelope.seq, urgency, source: envelope.sourceAccountId, mixedSources: false };
    } else {
      p.minSeq = Math.min(p.minSeq, envelope.seq);
      if (urgency === 'high') p.urgency = 'high';
      if (envelope.sourceAccountId !== p.source) p.mixedSources = true;
    }
  }

  /** Devices with a push decision pending or a window open (tests check that this drains). */
  get tracked(): number {
    return this.#states.size;
  }

  /** Stops: no new pushes; waits for the requests under way (each bounded by the timeout). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const state of this.#states.values()) if (state.timer !== undefined) clearTimeout(state.timer);
    this.#states.clear();
    for (const wake of this.#slotWaiters.splice(0)) wake();
    for (const wake of [...this.#sleepers]) wake();
    await Promise.allSettled([...this.#running]);
  }

  #schedule(ref: DeviceRef, state: DeviceState, delayMs: number): void {
    state.timer = setTimeout(() => {
      state.timer = undefined;
      const run = this.#decide(ref, state).catch((err: unknown) => this.#deps.logger.warn({ err, event: 'push_error' }, 'push decision failed'));
      this.#running.add(run);
      drop(run.finally(() => this.#running.delete(run)));
    }, delayMs);
    state.timer.unref();
  }

  /** Runs once per window per device: pushes for what is pending, then opens the next window (or forgets the device). */
  async #decide(ref: DeviceRef, state: DeviceState): Promise<void> {
    const pending = state.pending;
    state.pending = undefined;
    if (pending === undefined || this.#closed || this.#states.get(ref) !== state) {
      if (this.#states.get(ref) === state) this.#states.delete(ref);
      return;
    }
    try {
      await this.#pushFor(ref, state, pending);
    } finally {
      // The window: whatever arrives until it closes is pushed (at most once) when it does.
      if (!this.#closed && this.#states.get(ref) === state) this.#schedule(ref, state, this.#deps.config.minIntervalMs);
    }
  }

  async #pushFor(ref: DeviceRef, state: DeviceState, pending: Pending): Promise<void> {
    const { store, config, presence } = this.#deps;
    const subscription = await store.get(ref);
    if (subscription === undefined) return;
    if (!pending.mixedSources && pending.source === subscription.accountId) {
      this.#skipped.inc({ reason: 'own' });
      return;
    }
    if (this.#local.has(ref)) return;
    // Maybe connected on another node: give that socket time to take (and acknowledge) the envelopes.
    const maybeElsewhere = presence?.isOnline(subscription.accountId) === true;
    if (maybeElsewhere) await this.#sleep(config.ackGraceMs);
    if (this.#closed || this.#local.has(ref)) return;
    if ((maybeElsewhere || state.pushed) && !(await this.#stillQueued(ref, pending.minSeq))) {
      this.#skipped.inc({ reason: 'delivered' });
      return;
    }
    state.pushed = true;
    await this.#send(subscription, pending.urgency);
  }

  /** True while an envelope from `minSeq` on is still in the device's queue (not acknowledged). */
  async #stillQueued(ref: DeviceRef, minSeq: number): Promise<boolean> {
    return (await this.#deps.messages.page(ref, minSeq - 1, 1, 0)).length > 0;
  }

  async #send(subscription: PushSubscriptionRecord, urgency: PushUrgency): Promise<void> {
    const { config, vapid, store, logger } = this.#deps;
    await this.#slot();
    if (this.#closed) return;
    this.#inFlight++;
    let outcome: Outcome;
    let status: number | undefined;
    try {
      status = await this.#transport(subscription, { vapid, subject: config.vapidSubject, ttlSeconds: config.ttlSeconds, urgency, timeoutMs: config.timeoutMs });
      outcome = status >= 200 && status < 300 ? 'sent' : status === 404 || status === 410 ? 'gone' : 'rejected';
    } catch (err) {
      outcome = 'failed';
      logger.warn({ event: 'push_failed', host: hostOf(subscription.endpoint), err: err instanceof Error ? err.message : String(err) }, 'push request failed');
    } finally {
      this.#inFlight--;
      this.#slotWaiters.shift()?.();
    }
    this.#requests.inc({ result: outcome });
    if (outcome === 'gone') {
      // The push service dropped it (the browser unsubscribed, the app was uninstalled): stop pushing there.
      await store.delete(subscription.ref, subscription.endpoint);
      logger.info({ event: 'push_subscription_gone', status, deviceRef: subscription.ref }, 'push service dropped the subscription; deleted');
    } else if (outcome === 'rejected') {
      logger.warn({ event: 'push_rejected', status, host: hostOf(subscription.endpoint) }, 'push service refused a push');
    }
  }

  /** Waits for one of the `maxConcurrent` request slots. */
  async #slot(): Promise<void> {
    while (this.#inFlight >= this.#deps.config.maxConcurrent && !this.#closed) {
      await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
    }
  }

  /** Waits `ms`, or less if the notifier closes meanwhile. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.#sleepers.add(wake);
    });
  }
}

/** The endpoint's host, for logs (the path is the subscription's secret). */
function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return '(unparseable)';
  }
}
