/**
 * The bus between the message store and the sockets: after an envelope is committed, the sending side
 * publishes it to its destination device; whichever process holds that device's socket pushes it. The
 * local implementation (`local.ts`) calls subscribers in-process; the NATS implementation (`nats.ts`)
 * carries events between the nodes of a cluster. Events are hints for delivery, never the record: the
 * store is, so a lost event delays an envelope until the next drain (a reconnect of the device, or a
 * {@link MessageBus.onResync} after a bus outage) but never loses it.
 */
import type { AccountId, DeviceRef } from '../ids.js';
import type { StoredEnvelope, NewEnvelope } from '../storage/stores.js';

/** Events addressed to one device. */
export type DeviceEvent =
  /** A stored envelope was committed to this device's queue. */
  | { readonly kind: 'stored'; readonly envelope: StoredEnvelope }
  /** An ephemeral envelope for this device: push it if connected, else drop it. */
  | { readonly kind: 'ephemeral'; readonly envelope: NewEnvelope }
  /** The device was deleted (its account re-registered): close its sockets. */
  | { readonly kind: 'removed' }
  /**
   * A socket of this device opened (on this node or another): every older socket of the device closes
   * with 4409 Replaced. "Older" orders by `connectedAt`, then by `connectionId`, so that of two sockets
   * opened at once on two nodes exactly one survives.
   */
  | { readonly kind: 'connected'; readonly connectionId: string; readonly connectedAt: number }
  /**
   * Something may have been queued for this device without a `stored` event (the publisher could not
   * reach the bus): read the whole queue from the store again.
   */
  | { readonly kind: 'resync' };

/**
 * Which accounts have a socket on any node. Each node reports its own accounts (first socket in, last
 * socket out); {@link isOnline} answers from a local view, so a presence query costs no round trip.
 */
export interface PresenceDirectory {
  /** The account's first socket on this node opened. */
  join(accountId: AccountId): void;
  /** The account's last socket on this node closed. */
  leave(accountId: AccountId): void;
  /** True while the account has a socket on some node (this one included). */
  isOnline(accountId: AccountId): boolean;
  /**
   * Calls `listener` when an account went offline without a goodbye (its node died or lost the bus and
   * its entries expired), with the time (ms, wall clock) the account was last known online. Returns the
   * unsubscribe function.
   */
  onExpired(listener: (accountId: AccountId, lastOnlineAt: number) => void): () => void;
}

/** Publish/subscribe by device. */
export interface MessageBus {
  /** This node's name (unique in the cluster; `local` for the in-process bus). */
  readonly nodeId: string;
  /**
   * Cross-node presence, when the bus spans nodes; undefined for the in-process bus (the connection
   * registry knows every socket there).
   */
  readonly presence?: PresenceDirectory | undefined;
  /**
   * Delivers `event` to the subscribers of device `ref` (wherever they are). Never throws: when the bus
   * is unreachable the event is skipped (and the device is told to resync once the bus is back).
   */
  publishToDevice(ref: DeviceRef, event: DeviceEvent): void;
  /**
   * Subscribes to a device's events; returns the unsubscribe function. Events published after
   * {@link ready} resolves reach the handler.
   */
  subscribeDevice(ref: DeviceRef, handler: (event: DeviceEvent) => void): () => void;
  /**
   * Resolves once every subscription made so far is active (for NATS: the server has seen it). A queue
   * read after this cannot miss an envelope whose event the subscription would not see.
   */
  ready(): Promise<void>;
  /**
   * Calls `handler` after the bus came back from an outage: events of the outage may be lost, so every
   * locally connected device should read its queue from the store again. Returns the unsubscribe function.
   */
  onResync(handler: () => void): () => void;
  /** Leaves the cluster: presence entries removed, subscriptions dropped, pending publishes flushed. */
  close(): Promise<void>;
}
