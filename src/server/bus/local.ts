import type { DeviceRef } from '../ids.js';
import type { DeviceEvent, MessageBus } from './bus.js';

/** Subscriber sets by key, removing a key when its last subscriber leaves (bounded by live sockets). */
class Topics<K, E> {
  readonly #handlers = new Map<K, Set<(event: E) => void>>();

  publish(key: K, event: E): void {
    const handlers = this.#handlers.get(key);
    if (handlers === undefined) return;
    for (const handler of [...handlers]) handler(event);
  }

  subscribe(key: K, handler: (event: E) => void): () => void {
    let handlers = this.#handlers.get(key);
    if (handlers === undefined) {
      handlers = new Set();
      this.#handlers.set(key, handlers);
    }
    handlers.add(handler);
    return () => {
      const current = this.#handlers.get(key);
      if (current === undefined) return;
      current.delete(handler);
      if (current.size === 0) this.#handlers.delete(key);
    };
  }

  get size(): number {
    return this.#handlers.size;
  }
}

/**
 * The in-process {@link MessageBus}: subscribers are called synchronously, in publish order, so per
 * device the order of `stored` events is the commit order.
 */
export class LocalMessageBus implements MessageBus {
  readonly #devices = new Topics<DeviceRef, DeviceEvent>();

  publishToDevice(ref: DeviceRef, event: DeviceEvent): void {
    this.#devices.publish(ref, event);
  }

  subscribeDevice(ref: DeviceRef, handler: (event: DeviceEvent) => void): () => void {
    return this.#devices.subscribe(ref, handler);
  }

  /** Topics with at least one subscriber (tests check that closed sockets unsubscribe). */
  get topicCount(): number {
    return this.#devices.size;
  }

  async close(): Promise<void> {}
}
