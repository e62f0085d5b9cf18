import type { DeviceRef } from '../ids.js';
import type { DeviceEvent, MessageBus } from './bus.js';

/** Subscriber sets by key, removing a key when its last subscriber leaves (bounded by live sockets). */
export class Topics<K, E> {
  readonly #handlers = new Map<K, Set<(event: E) => void>>();

  publish(key: K, event: E): void {
    const handlers = this.#handlers.get(key);
    if (handlers === undefined) return;
    for (const handler of [...handlers]) handler(event);
  }

  /**
   * Adds a subscriber; `onFirst` runs when the key had none, `onLast` when its last subscriber leaves.
   * Returns the unsubscribe function (idempotent).
   */
  subscribe(key: K, handler: (event: E) => void, hooks: { onFirst?: () => void; onLast?: () => void } = {}): () => void {
    let handlers = this.#handlers.get(key);
    if (handlers === undefined) {
      handlers = new Set();
      this.#handlers.set(key, handlers);
      hooks.onFirst?.();
    }
    handlers.add(handler);
    return () => {
      const current = this.#handlers.get(key);
      if (current === undefined || !current.delete(handler)) return;
      if (current.size > 0) return;
      this.#handlers.delete(key);
      hooks.onLast?.();
    };
  }

  has(key: K): boolean {
    return this.#handlers.has(key);
  }

  keys(): K[] {
    return [...this.#handlers.keys()];
  }

  get size(): number {
    return this.#handlers.size;
  }
}

/**
 * The in-process {@link MessageBus}: subscribers are called synchronously, in publish order, so per
 * device the order of `stored` events is the commit order. It never has an outage, so resync handlers
 * are never called; presence is left to the connection registry.
 */
export class LocalMessageBus implements MessageBus {
  readonly nodeId = 'local';
  readonly presence = undefined;
  readonly #devices = new Topics<DeviceRef, DeviceEvent>();

  publishToDevice(ref: DeviceRef, event: DeviceEvent): void {
    this.#devices.publish(ref, event);
  }

  subscribeDevice(ref: DeviceRef, handler: (event: DeviceEvent) => void): () => void {
    return this.#devices.subscribe(ref, handler);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  onResync(): () => void {
    return () => undefined;
  }

  /** Topics with at least one subscriber (tests check that closed sockets unsubscribe). */
  get topicCount(): number {
    return this.#devices.size;
  }

  async close(): Promise<void> {}
}
