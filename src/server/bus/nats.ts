/**
 * The NATS {@link MessageBus}: the bus of a cluster of server nodes sharing one database.
 *
 * Subjects (under `subjectPrefix`, default `parley`):
 *   `<prefix>.dev.<ref>`  events of one device. A node subscribes while it has a socket of the device
 *                         (first local subscriber in, last out), so each node gets only its own devices'
 *                         events; any node publishes to it after committing.
 *   `<prefix>.resync`     "every node: read every connected device's queue again" (sent after an outage
 *                         in which this node skipped more publishes than it could remember).
 * Presence lives in the JetStream KV bucket `<prefix with . as _>_presence` ({@link NatsPresenceDirectory}).
 *
 * NATS is a hint path, the store is the record. While NATS is unreachable, publishing is skipped (sends
 * are still stored and acknowledged; the bus never throws at them), and the node remembers which
 * devices it skipped. When the connection comes back it tells those devices' nodes to resync (or, past
 * `maxSkippedDevices`, every node), and runs its own {@link MessageBus.onResync} handlers, since events
 * for its own devices may have been lost: the gateway then re-reads every local device's queue.
 */
import { connect, Events, type NatsConnection, type Subscription } from 'nats';
import { drop } from '../drop.js';
import type { DeviceRef } from '../ids.js';
import type { Logger } from '../log.js';
import type { DeviceEvent, MessageBus } from './bus.js';
import { decodeDeviceEvent, encodeDeviceEvent } from './codec.js';
import { Topics } from './local.js';
import { NatsPresenceDirectory } from './nats-presence.js';

/** Options of {@link connectNatsBus}. */
export interface NatsBusOptions {
  /** This node's name, unique in the cluster (logs, the NATS connection name, presence keys). */
  readonly nodeId: string;
  readonly logger: Logger;
  /** Subject prefix: NATS tokens of `A-Za-z0-9_-` joined by dots (default `parley`). Tests isolate with it. */
  readonly subjectPrefix?: string | undefined;
  /** How long a presence entry lives without its heartbeat, ms (default 30,000; refreshed every third). */
  readonly presenceTtlMs?: number | undefined;
  /** How long the first connection may take, ms (default 5,000). */
  readonly connectTimeoutMs?: number | undefined;
  /** Wait between reconnect attempts, ms (default 250, with jitter). NATS is retried forever. */
  readonly reconnectTimeWaitMs?: number | undefined;
  /** Ping interval, ms (default 5,000; two missed pongs count as a lost connection). */
  readonly pingIntervalMs?: number | undefined;
  /** Devices remembered for a resync after an outage, beyond which every node resyncs (default 100,000). */
  readonly maxSkippedDevices?: number | undefined;
  /** How long {@link NatsMessageBus.close} may take to drain, ms (default 5,000). */
  readonly drainTimeoutMs?: number | undefined;
}

const PREFIX = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/;
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** How long {@link NatsMessageBus.ready} waits for the server's confirmation before going on. */
const READY_TIMEOUT_MS = 2000;

function timeout(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

/**
 * Connects to NATS (`url`: one server or a comma-separated list, `nats://host:port` or `host:port`),
 * opens the presence bucket and returns the bus. Rejects when NATS cannot be reached within
 * `connectTimeoutMs`, or for an invalid node id or prefix (RangeError).
 */
export async function connectNatsBus(url: string, options: NatsBusOptions): Promise<NatsMessageBus> {
  const prefix = options.subjectPrefix ?? 'parley';
  if (!PREFIX.test(prefix)) throw new RangeError('subjectPrefix must be NATS subject tokens of A-Za-z0-9_- joined by dots');
  if (!NODE_ID.test(options.nodeId)) throw new RangeError('nodeId must be 1 to 64 of A-Za-z0-9._-');
  const servers = url
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const nc = await connect({
    servers,
    name: `parley-${options.nodeId}`,
    timeout: options.connectTimeoutMs ?? 5000,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
    reconnectJitter: 100,
    pingInterval: options.pingIntervalMs ?? 5000,
    maxPingOut: 2,
    waitOnFirstConnect: false,
  });
  try {
    const presence = await NatsPresenceDirectory.open(nc, {
      nodeId: options.nodeId,
      bucket: `${prefix.replace(/\./g, '_')}_presence`,
      ttlMs: options.presenceTtlMs ?? 30_000,
      logger: options.logger,
    });
    return new NatsMessageBus(nc, prefix, presence, options);
  } catch (err) {
    await nc.close();
    throw err;
  }
}

/** The NATS {@link MessageBus}; build it with {@link connectNatsBus}. */
export class NatsMessageBus implements MessageBus {
  readonly nodeId: string;
  readonly presence: NatsPresenceDirectory;
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #options: NatsBusOptions;
  readonly #topics = new Topics<DeviceRef, DeviceEvent>();
  readonly #subscriptions = new Map<DeviceRef, Subscription>();
  readonly #resyncHandlers = new Set<() => void>();
  readonly #broadcast: Subscription;
  /** Devices whose `stored` events were skipped during the current outage. */
  readonly #skippedStored = new Set<DeviceRef>();
  /** Devices whose `removed` events were skipped during the current outage. */
  readonly #skippedRemoved = new Set<DeviceRef>();
  #skippedOverflow = false;
  #skippedCount = 0;
  #connected = true;
  #closed = false;
  #malformed = 0;

  /** @internal Use {@link connectNatsBus}. */
  constructor(nc: NatsConnection, prefix: string, presence: NatsPresenceDirectory, options: NatsBusOptions) {
    this.nodeId = options.nodeId;
    this.presence = presence;
    this.#nc = nc;
    this.#prefix = prefix;
    this.#logger = options.logger;
    this.#options = options;
    this.#broadcast = nc.subscribe(`${prefix}.resync`, { callback: () => this.#runResyncHandlers('broadcast') });
    drop(this.#watchStatus(), (err) => this.#logger.warn({ err }, 'NATS status loop ended'));
  }

  /** False while NATS is unreachable (publishes are skipped and remembered). */
  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /** Messages dropped because they could not be decoded (a bug or a foreign publisher). */
  get malformedCount(): number {
    return this.#malformed;
  }

  /** Devices with a NATS subscription on this node. */
  get subscriptionCount(): number {
    return this.#subscriptions.size;
  }

  /** The subject of a device's events. */
  deviceSubject(ref: DeviceRef): string {
    return `${this.#prefix}.dev.${ref}`;
  }

  publishToDevice(ref: DeviceRef, event: DeviceEvent): void {
    if (this.#closed) {
      this.#logger.warn({ ref, kind: event.kind }, 'bus closed: event not published');
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeDeviceEvent(event);
    } catch (err) {
      this.#logger.warn({ err, ref, kind: event.kind }, 'bus event cannot be encoded: not published');
      return;
    }
    if (!this.#connected) {
      this.#skip(ref, event);
      return;
    }
    try {
      this.#nc.publish(this.deviceSubject(ref), bytes);
    } catch (err) {
      this.#logger.warn({ err, ref, kind: event.kind }, 'NATS publish failed');
      this.#skip(ref, event);
    }
  }

  subscribeDevice(ref: DeviceRef, handler: (event: DeviceEvent) => void): () => void {
    return this.#topics.subscribe(ref, handler, {
      onFirst: () => {
        if (this.#closed) return;
        try {
          const subject = this.deviceSubject(ref);
          this.#subscriptions.set(ref, this.#nc.subscribe(subject, { callback: (err, msg) => (err === null ? this.#onMessage(ref, msg.data) : undefined) }));
        } catch (err) {
          this.#logger.warn({ err, ref }, 'NATS subscribe failed');
        }
      },
      onLast: () => {
        const subscription = this.#subscriptions.get(ref);
        this.#subscriptions.delete(ref);
        try {
          subscription?.unsubscribe();
        } catch {
          // the connection is closed: nothing to unsubscribe
        }
      },
    });
  }

  async ready(): Promise<void> {
    if (!this.connected) return; // the resync after the outage covers what a subscription misses now
    await Promise.race([this.#nc.flush().catch(() => undefined), timeout(READY_TIMEOUT_MS)]);
  }

  onResync(handler: () => void): () => void {
    this.#resyncHandlers.add(handler);
    return () => this.#resyncHandlers.delete(handler);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.presence.close();
    this.#closed = true;
    for (const subscription of this.#subscriptions.values()) {
      try {
        subscription.unsubscribe();
      } catch {
        // already gone
      }
    }
    this.#subscriptions.clear();
    if (this.#nc.isClosed()) return;
    // drain() flushes what was published and waits for in-flight messages; bounded, as NATS may be down.
    const drained = await Promise.race([this.#nc.drain().then(() => 'drained' as const, () => 'failed' as const), timeout(this.#options.drainTimeoutMs ?? 5000)]);
    if (drained !== 'drained' && !this.#nc.isClosed()) await this.#nc.close();
  }

  #onMessage(ref: DeviceRef, data: Uint8Array): void {
    let event: DeviceEvent;
    try {
      event = decodeDeviceEvent(data, ref);
    } catch (err) {
      this.#malformed++;
      this.#logger.warn({ err: (err as Error).message, ref, bytes: data.length }, 'malformed bus message dropped');
      return;
    }
    try {
      this.#topics.publish(ref, event);
    } catch (err) {
      this.#logger.warn({ err, ref, kind: event.kind }, 'bus event handler failed');
    }
  }

  #skip(ref: DeviceRef, event: DeviceEvent): void {
    if (this.#skippedCount++ === 0) this.#logger.warn({ event: 'bus_publish_skipped' }, 'NATS unreachable: publishes are skipped until it is back (messages stay stored)');
    if (event.kind !== 'stored' && event.kind !== 'removed') return; // ephemeral ones are lost by definition
    const set = event.kind === 'stored' ? this.#skippedStored : this.#skippedRemoved;
    if (set.has(ref)) return;
    if (this.#skippedStored.size + this.#skippedRemoved.size >= (this.#options.maxSkippedDevices ?? 100_000)) {
      this.#skippedOverflow = true;
      return;
    }
    set.add(ref);
  }

  async #watchStatus(): Promise<void> {
    for await (const status of this.#nc.status()) {
      switch (status.type) {
        case Events.Disconnect:
          if (this.#connected) this.#logger.warn({ event: 'bus_disconnected' }, 'NATS connection lost; reconnecting');
          this.#connected = false;
          break;
        case Events.Reconnect:
          this.#connected = true;
          this.#logger.info({ event: 'bus_reconnected', skipped: this.#skippedCount }, 'NATS connection back');
          this.#afterReconnect();
          break;
        case Events.LDM:
          this.#logger.info({ event: 'bus_lame_duck' }, 'NATS server entering lame duck mode');
          break;
        case Events.Error:
          this.#logger.warn({ event: 'bus_error', data: typeof status.data === 'string' ? status.data : JSON.stringify(status.data) }, 'NATS async error');
          break;
        default:
          break;
      }
    }
  }

  #afterReconnect(): void {
    if (this.#closed) return;
    const removed = [...this.#skippedRemoved];
    const stored = [...this.#skippedStored];
    const overflow = this.#skippedOverflow;
    this.#skippedRemoved.clear();
    this.#skippedStored.clear();
    this.#skippedOverflow = false;
    this.#skippedCount = 0;
    // Tell the devices' nodes what they missed from this node; theirs they will resync themselves.
    for (const ref of removed) this.publishToDevice(ref, { kind: 'removed' });
    if (overflow) {
      this.#publishBroadcast();
    } else {
      for (const ref of stored) this.publishToDevice(ref, { kind: 'resync' });
    }
    drop(this.presence.reconnected());
    this.#runResyncHandlers('reconnect');
  }

  #publishBroadcast(): void {
    try {
      this.#nc.publish(`${this.#prefix}.resync`);
    } catch (err) {
      this.#logger.warn({ err }, 'NATS resync broadcast failed');
    }
  }

  #runResyncHandlers(why: 'reconnect' | 'broadcast'): void {
    if (this.#closed) return;
    this.#logger.info({ event: 'bus_resync', why, devices: this.#topics.size }, 'rescanning the queues of connected devices');
    for (const handler of [...this.#resyncHandlers]) {
      try {
        handler();
      } catch (err) {
        this.#logger.warn({ err }, 'resync handler failed');
      }
    }
  }

  /** For tests: the broadcast subscription (so that its closing can be checked). */
  get broadcastSubscription(): Subscription {
    return this.#broadcast;
  }
}
