/**
 * Web Push (issue #7, docs/server.md "Web Push"): each device's push subscription (the endpoint its
 * browser's push service gave it and the keys its payloads are encrypted to) and the server's VAPID key
 * pair, which every node of a cluster shares.
 *
 * `Storage.push`: `sqlite/push-store.ts` and `postgres/push-store.ts`. A subscription belongs to one device
 * registration (`DeviceRef`): removing the device, or re-registering its number, deletes it.
 */
import type { AccountId, DeviceRef } from '../ids.js';

/** A device's push subscription, as the browser's `PushSubscription` names it. */
export interface PushSubscriptionRecord {
  readonly ref: DeviceRef;
  /** The account the device belongs to (a push for the account's own sync copies is skipped). */
  readonly accountId: AccountId;
  /** The push service URL to POST to (https; checked by the caller). */
  readonly endpoint: string;
  /** The browser's 65-byte uncompressed P-256 public key (`keys.p256dh`). */
  readonly p256dh: Uint8Array;
  /** The 16-byte authentication secret (`keys.auth`). */
  readonly auth: Uint8Array;
  /** When it was first stored or last replaced (ms). */
  readonly updatedAt: number;
}

/** The server's VAPID key pair (RFC 8292), base64url as `web-push` takes it. */
export interface VapidKeyPair {
  /** 65-byte uncompressed P-256 point, base64url. */
  readonly publicKey: string;
  /** 32-byte P-256 scalar, base64url. */
  readonly privateKey: string;
}

/** Result of {@link PushStore.put}. */
export type PutPushSubscriptionResult = { readonly kind: 'stored' } | { readonly kind: 'device-gone' };

/** Push subscriptions and the VAPID key pair. */
export interface PushStore {
  /** Stores the device's subscription, replacing any it had; `device-gone` when the device does not exist (any more). */
  put(subscription: PushSubscriptionRecord): Promise<PutPushSubscriptionResult>;
  get(ref: DeviceRef): Promise<PushSubscriptionRecord | undefined>;
  /**
   * Deletes the device's subscription; with `endpoint`, only if it is still that one (a push service's 410
   * for an old endpoint must not delete the one the device registered meanwhile). True when a row went.
   */
  delete(ref: DeviceRef, endpoint?: string): Promise<boolean>;
  /**
   * The server's VAPID key pair: the stored one, or `candidate` stored now when there is none. Nodes that
   * start at once each propose a candidate; exactly one is stored, and every node gets that one.
   */
  vapidKeys(candidate: VapidKeyPair, now: number): Promise<VapidKeyPair>;
}

/** The `push_subscriptions` row, as both backends store it (the ref may come back as a string from PostgreSQL's BIGINT). */
export interface PushSubscriptionRow {
  device_ref: number | string;
  account_id: string;
  endpoint: string;
  p256dh: Uint8Array;
  auth: Uint8Array;
  updated_at: number | string;
}

/** A stored row as a {@link PushSubscriptionRecord} (bytes copied out of the driver's buffers). */
export function pushSubscriptionFromRow(row: PushSubscriptionRow): PushSubscriptionRecord {
  return {
    ref: Number(row.device_ref) as DeviceRef,
    accountId: row.account_id as AccountId,
    endpoint: row.endpoint,
    p256dh: new Uint8Array(row.p256dh),
    auth: new Uint8Array(row.auth),
    updatedAt: Number(row.updated_at),
  };
}
