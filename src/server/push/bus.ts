/**
 * The push notifier's view of the bus: a {@link MessageBus} that passes everything through to the real
 * one (in-process or NATS) and tells the notifier what it needs, without any change to the services:
 * - `publishToDevice(ref, stored)` is called by the service that committed the envelope, on the node that
 *   stored it: the one node that decides about its push;
 * - `subscribeDevice` is called for each socket's delivery on this node, for its lifetime: the device is
 *   connected here until the unsubscribe;
 * - `publishToDevice(ref, removed)`: the device is gone.
 */
import type { DeviceRef } from '../ids.js';
import type { DeviceEvent, MessageBus, PresenceDirectory } from '../bus/bus.js';
import type { PushNotifier } from './notifier.js';

/** Wraps `inner`, reporting to `notifier`. */
export class PushingBus implements MessageBus {
  readonly #inner: MessageBus;
  readonly #notifier: PushNotifier;

  constructor(inner: MessageBus, notifier: PushNotifier) {
    this.#inner = inner;
    this.#notifier = notifier;
  }

  get nodeId(): string {
    return this.#inner.nodeId;
  }

  get presence(): PresenceDirectory | undefined {
    return this.#inner.presence;
  }

  publishToDevice(ref: DeviceRef, event: DeviceEvent): void {
    // Publish first: the socket path must never wait for the push decision.
    this.#inner.publishToDevice(ref, event);
    if (event.kind === 'stored') this.#notifier.stored(ref, event.envelope);
    else if (event.kind === 'removed') this.#notifier.removed(ref);
  }

  subscribeDevice(ref: DeviceRef, handler: (event: DeviceEvent) => void): () => void {
    this.#notifier.connected(ref);
    const unsubscribe = this.#inner.subscribeDevice(ref, handler);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      unsubscribe();
      this.#notifier.disconnected(ref);
    };
  }

  ready(): Promise<void> {
    return this.#inner.ready();
  }

  onResync(handler: () => void): () => void {
    return this.#inner.onResync(handler);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
