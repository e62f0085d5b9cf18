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
  readonly #onRemoved: () => void;
  #unsubscribe: (() => void) | undefined;
  /** The seq of the last envelope pushed (or skipped as already pushed). */
  #cursor = 0;
  #draining = false;
  /** A bus event arrived while draining: read the store again before going live. */
  #dirty = false;
  #sentEmpty = false;
  #stopped = false;
  #inFlight = 0;
  /** Envelopes that arrived live while the window was full (bounded by the window). */
  #backlog: StoredEnvelope[] = [];
  #slotWaiter: (() => void) | undefined;

  constructor(device: AuthenticatedDevice, channel: PushChannel, deps: DeliveryDeps, onRemoved: () => void) {
    this.#device = device;
    this.#channel = channel;
    this.#deps = deps;
    this.#onRemoved = onRemoved;
  }

  /** Subscribes to the device's events, then drains its stored queue. */
  start(): void {
    // Subscribe before the first read, so that an envelope committed after the read is seen as an event.
    this.#unsubscribe = this.#deps.bus.subscribeDevice(this.#device.ref, (event) => this.#onEvent(event));
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

  #onEvent(event: DeviceEvent): void {
    if (this.#stopped) return;
    switch (event.kind) {
      case 'removed':
        this.#onRemoved();
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
    if (envelope.seq <= last) return;
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
    const { messages, config } = this.#deps;
    for (;;) {
      this.#dirty = false;
      const notBefore = config.clock.now() - config.queueTtlMs;
      const page = await messages.page(this.#device.ref, this.#cursor, PAGE_SIZE, notBefore);
      for (const envelope of page) {
        await this.#slot();
        if (this.#stopped) return;
        if (envelope.seq <= this.#cursor) continue;
        this.#cursor = envelope.seq;
        this.#send(envelope, envelope.seq, false);
      }
      if (this.#stopped) return;
      // No await between this check and leaving drain mode: an event after it is handled live.
      if (page.length < PAGE_SIZE && !this.#dirty) break;
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

  #send(envelope: NewEnvelope, seq: number, ephemeral: boolean): void {
    this.#inFlight++;
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
            drop(messages.remove(this.#device.ref, seq), (err) => this.#deps.logger.warn({ err }, 'deleting an acknowledged envelope failed'));
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
