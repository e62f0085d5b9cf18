/**
 * Delivery of one device's queue over its socket.
 *
 * On connect the stored queue is drained in order (pages read after a cursor), then `PUT /v1/queue/empty`
 * is sent once; after that, envelopes arrive as bus events in commit order and are pushed directly.
 * At most `pushWindow` pushes await their ack at a time. An envelope is deleted only when its push is
 * answered with 200 (the ack); any other answer, or a socket that closes first, leaves it queued, and it
 * is delivered again on the next connection, before anything newer (at-least-once; clients dedupe by
 * guid). The bus is only a hint: whenever the live path cannot keep up (a full backlog) or an event
 * arrives mid-drain, the store is read again from the cursor, so nothing committed is skipped.
 *
 * In a cluster two more things happen. Events from different nodes can arrive out of commit order, and
 * after a bus outage events may be missing altogether: an event for an envelope older than the cursor
 * that was never pushed, a `resync` event, or {@link QueueDelivery.resync} (the gateway calls it when the
 * bus reconnects) make the delivery read the whole queue again from the start, in order, skipping what
 * this socket already pushed. And a socket announces itself on the bus (`connected`): an older socket
 * of the same device, on whichever node, closes as replaced.
 */
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import type { DeviceEvent, MessageBus } from '../bus/bus.js';
import type { ServerConfig } from '../config.js';
import { drop } from '../drop.js';
import type { Logger } from '../log.js';
import type { ServerMetrics } from '../metrics.js';
import type { MessageStore, NewEnvelope, StoredEnvelope } from '../storage/stores.js';
import type { EnvelopeFields } from '../ws/frames.js';

/** How the delivery reaches the device: server-initiated requests on its socket. */
export interface PushChannel {
  /** Sends `PUT /v1/queue/message`; resolves with the device's status, rejects if the socket closes first. */
  push(envelope: EnvelopeFields): Promise<number>;
  /** Sends `PUT /v1/queue/empty`. */
  queueEmpty(): Promise<number>;
}

/** What a delivery needs. */
export interface DeliveryDeps {
  readonly messages: MessageStore;
  readonly bus: MessageBus;
  readonly config: ServerConfig;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
}

/** What a delivery tells its socket, and how the socket names itself on the bus. */
export interface DeliveryHooks {
  /** A unique id of this socket in the cluster (node id and a counter). */
  readonly connectionId: string;
  /** When the socket opened (ms). */
  readonly connectedAt: number;
  /** The device was removed (its account re-registered): close the socket (4401). */
  onRemoved(): void;
  /** A newer socket of the same device opened, here or on another node: close this one (4409). */
  onReplaced(): void;
}

/** Envelopes read from the store per page while draining. */
const PAGE_SIZE = 200;

/** The fields of a push for a queued or ephemeral envelope. */
function pushFields(e: NewEnvelope, ephemeral: boolean): EnvelopeFields {
  return {
    guid: e.guid,
    type: e.type,
    sourceAccountId: e.sourceAccountId,
    sourceDeviceId: e.sourceDeviceId,
    destinationDeviceId: e.destinationDeviceId,
    timestamp: e.timestamp,
    serverTimestamp: e.serverTimestamp,
    content: e.content,
    ephemeral,
    groupId: e.groupId ?? '',
  };
}

/** Pushes one device's queue, in order, over one socket. */
export class QueueDelivery {
  readonly #device: AuthenticatedDevice;
  readonly #channel: PushChannel;
  readonly #deps: DeliveryDeps;
  readonly #hooks: DeliveryHooks;
  #unsubscribe: (() => void) | undefined;
  /** The highest seq pushed (or skipped as already pushed). */
  #cursor = 0;
  #draining = false;
  /** A bus event arrived while draining: read the store again before going live. */
  #dirty = false;
  /** The next drain reads the queue from the start (events may be missing or out of order). */
  #rescan = false;
  /** The next drain first waits for the bus subscription to be active. */
  #awaitReady = true;
  #sentEmpty = false;
  #stopped = false;
  #inFlight = 0;
  /** Seqs pushed on this socket, oldest first (bounded): a rescan skips them. */
  readonly #pushed = new Set<number>();
  readonly #pushedLimit: number;
  /** Deletes of acknowledged envelopes still running. */
  readonly #removing = new Set<Promise<void>>();
  /** Envelopes that arrived live while the window was full (bounded by the window). */
  #backlog: StoredEnvelope[] = [];
  #slotWaiter: (() => void) | undefined;

  constructor(device: AuthenticatedDevice, channel: PushChannel, deps: DeliveryDeps, hooks: DeliveryHooks) {
    this.#device = device;
    this.#channel = channel;
    this.#deps = deps;
    this.#hooks = hooks;
    this.#pushedLimit = Math.max(1024, 4 * deps.config.limits.pushWindow);
  }

  /** Subscribes to the device's events, announces this socket, then drains its stored queue. */
  start(): void {
    const { bus } = this.#deps;
    // Subscribe before the first read (which waits for the subscription to be active), so that an
    // envelope committed after the read is seen as an event.
    this.#unsubscribe = bus.subscribeDevice(this.#device.ref, (event) => this.#onEvent(event));
    bus.publishToDevice(this.#device.ref, { kind: 'connected', connectionId: this.#hooks.connectionId, connectedAt: this.#hooks.connectedAt });
    this.#startDrain();
  }

  /** Stops pushing (the socket closed). Unacked envelopes stay queued. */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#backlog = [];
    this.#slotWaiter?.();
  }

  /**
   * Reads the whole queue again, in order, pushing what this socket has not pushed yet: events may have
   * been lost (a bus outage) or have come out of order (from several nodes).
   */
  resync(): void {
    if (this.#stopped) return;
    this.#rescan = true;
    this.#awaitReady = true;
    if (this.#draining) this.#dirty = true;
    else this.#startDrain();
  }

  /** Resolves when the deletes of acknowledged envelopes have finished (for shutdown). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#removing]);
  }

  #onEvent(event: DeviceEvent): void {
    if (this.#stopped) return;
    switch (event.kind) {
      case 'removed':
        this.#hooks.onRemoved();
        return;
      case 'connected':
        if (event.connectionId === this.#hooks.connectionId) return;
        // Of two sockets of one device, the later one (then the larger id) wins, on every node alike.
        if (event.connectedAt > this.#hooks.connectedAt || (event.connectedAt === this.#hooks.connectedAt && event.connectionId > this.#hooks.connectionId)) {
          this.#hooks.onReplaced();
        }
        return;
      case 'resync':
        this.resync();
        return;
      case 'ephemeral':
        // Not stored and not ordered with the queue; dropped when the socket is far behind.
        if (this.#inFlight < 2 * this.#deps.config.limits.pushWindow) this.#send(event.envelope, 0, true);
        return;
      case 'stored':
        this.#onStored(event.envelope);
        return;
    }
  }

  #onStored(envelope: StoredEnvelope): void {
    if (this.#draining) {
      this.#dirty = true;
      return;
    }
    const last = this.#backlog.length > 0 ? (this.#backlog[this.#backlog.length - 1] as StoredEnvelope).seq : this.#cursor;
    if (envelope.seq <= last) {
      // Behind the cursor and never pushed: an event that came late (another node published it after a
      // newer one arrived). Read the queue again in order rather than push it out of turn.
      if (!this.#pushed.has(envelope.seq) && !this.#backlog.some((e) => e.seq === envelope.seq)) this.resync();
      return;
    }
    if (this.#backlog.length === 0 && this.#inFlight < this.#deps.config.limits.pushWindow) {
      this.#cursor = envelope.seq;
      this.#send(envelope, envelope.seq, false);
    } else if (this.#backlog.length < this.#deps.config.limits.pushWindow) {
      this.#backlog.push(envelope);
    } else {
      // Too far behind to hold in memory: forget the backlog and read from the store after the cursor.
      this.#backlog = [];
      this.#startDrain();
    }
  }

  #startDrain(): void {
    if (this.#draining || this.#stopped) return;
    this.#draining = true;
    drop(this.#drain(), (err) => {
      this.#draining = false;
      if (!this.#stopped) this.#deps.logger.warn({ err, accountId: this.#device.accountId, deviceId: this.#device.deviceId }, 'queue drain failed');
    });
  }

  async #drain(): Promise<void> {
    const { messages, config, bus } = this.#deps;
    let after = this.#cursor;
    for (;;) {
      if (this.#awaitReady) {
        this.#awaitReady = false;
        await bus.ready();
        if (this.#stopped) return;
      }
      if (this.#rescan) {
        this.#rescan = false;
        after = 0;
      }
      this.#dirty = false;
      const notBefore = config.clock.now() - config.queueTtlMs;
      const page = await messages.page(this.#device.ref, after, PAGE_SIZE, notBefore);
      for (const envelope of page) {
        after = envelope.seq;
        await this.#slot();
        if (this.#stopped) return;
        if (envelope.seq <= this.#cursor && this.#pushed.has(envelope.seq)) continue;
        // Behind the cursor only in a rescan; pushing in seq order keeps the queue's order.
        if (envelope.seq > this.#cursor) this.#cursor = envelope.seq;
        this.#send(envelope, envelope.seq, false);
      }
      if (this.#stopped) return;
      // No await between this check and leaving drain mode: an event after it is handled live.
      if (page.length < PAGE_SIZE && !this.#dirty && !this.#rescan) break;
      if (page.length < PAGE_SIZE && !this.#rescan) after = Math.max(after, this.#cursor);
    }
    this.#draining = false;
    if (!this.#sentEmpty) {
      this.#sentEmpty = true;
      drop(this.#channel.queueEmpty());
    }
  }

  /** Resolves when fewer than `pushWindow` pushes are unacknowledged. */
  #slot(): Promise<void> {
    if (this.#inFlight < this.#deps.config.limits.pushWindow || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#slotWaiter = resolve;
    });
  }

  #remember(seq: number): void {
    this.#pushed.add(seq);
    if (this.#pushed.size > this.#pushedLimit) {
      const oldest = this.#pushed.values().next().value as number;
      this.#pushed.delete(oldest);
    }
  }

  #send(envelope: NewEnvelope, seq: number, ephemeral: boolean): void {
    this.#inFlight++;
    if (!ephemeral) this.#remember(seq);
    const { messages, metrics } = this.#deps;
    this.#channel.push(pushFields(envelope, ephemeral)).then(
      (status) => {
        this.#inFlight--;
        if (status === 200) {
          if (ephemeral) {
            metrics.ephemeralDelivered.inc();
          } else {
            // The ack: the device has the envelope durably, so it may go. Not awaited by anyone.
            metrics.messagesDelivered.inc();
            const removing = messages.remove(this.#device.ref, seq).catch((err: unknown) => this.#deps.logger.warn({ err }, 'deleting an acknowledged envelope failed'));
            this.#removing.add(removing);
            drop(removing.finally(() => this.#removing.delete(removing)));
          }
        }
        this.#slotFreed();
      },
      () => {
        this.#inFlight--;
      },
    );
  }

  #slotFreed(): void {
    if (this.#stopped) return;
    const waiter = this.#slotWaiter;
    if (waiter !== undefined) {
      this.#slotWaiter = undefined;
      waiter();
      return;
    }
    while (this.#backlog.length > 0 && this.#inFlight < this.#deps.config.limits.pushWindow && !this.#draining) {
      const next = this.#backlog.shift() as StoredEnvelope;
      this.#cursor = next.seq;
      this.#send(next, next.seq, false);
    }
  }
}
