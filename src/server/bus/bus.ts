/**
 * The bus between the message store and the sockets: after an envelope is committed, the sending side
 * publishes it to its destination device; whichever process holds that device's socket pushes it. The
 * local implementation (`local.ts`) calls subscribers in-process; a NATS implementation can replace it
 * for a cluster. Events are hints for delivery, never the record: the store is, so a lost event delays
 * an envelope until the next reconnect or drain but never loses it.
 */
import type { DeviceRef } from '../ids.js';
import type { StoredEnvelope, NewEnvelope } from '../storage/stores.js';

/** Events addressed to one device. */
export type DeviceEvent =
  /** A stored envelope was committed to this device's queue. */
  | { readonly kind: 'stored'; readonly envelope: StoredEnvelope }
  /** An ephemeral envelope for this device: push it if connected, else drop it. */
  | { readonly kind: 'ephemeral'; readonly envelope: NewEnvelope }
  /** The device was deleted (its account re-registered): close its sockets. */
  | { readonly kind: 'removed' };

/** Publish/subscribe by device. */
export interface MessageBus {
  /** Delivers `event` to the subscribers of device `ref` (wherever they are). */
  publishToDevice(ref: DeviceRef, event: DeviceEvent): void;
  /** Subscribes to a device's events; returns the unsubscribe function. */
  subscribeDevice(ref: DeviceRef, handler: (event: DeviceEvent) => void): () => void;
  close(): Promise<void>;
}
