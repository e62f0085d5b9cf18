/**
 * One Web Push request: the `web-push` package builds it (the VAPID token of RFC 8292, signed ES256 with
 * the server's key for the endpoint's origin, and the payload encrypted with aes128gcm, RFC 8188/8291, to
 * the subscription's keys); this file sends it with `fetch`, with a timeout and without following
 * redirects, and reports the push service's status.
 */
import webpush from 'web-push';
import type { PushSubscriptionRecord, VapidKeyPair } from '../storage/push-store.js';
import { toBase64Url } from './config.js';

/**
 * The whole payload of every push: it says "something is queued for you" and nothing else. No message
 * content, sender, count or type ever leaves the server this way; the app wakes and fetches its queue.
 */
export const WAKE_PAYLOAD = JSON.stringify({ type: 'wake' });

/** The `Topic` header: a newer push replaces an undelivered older one at the push service. */
export const WAKE_TOPIC = 'parley-wake';

/** RFC 8030 urgency: `high` for messages and calls, `normal` for group administration. */
export type PushUrgency = 'high' | 'normal';

/** What one request needs besides the subscription. */
export interface PushRequestOptions {
  readonly vapid: VapidKeyPair;
  readonly subject: string;
  readonly ttlSeconds: number;
  readonly urgency: PushUrgency;
  readonly timeoutMs: number;
}

/** Sends one wake-up push; resolves with the push service's HTTP status, rejects on a network error or timeout. */
export async function sendWakePush(subscription: PushSubscriptionRecord, options: PushRequestOptions): Promise<number> {
  const details = webpush.generateRequestDetails(
    { endpoint: subscription.endpoint, keys: { p256dh: toBase64Url(subscription.p256dh), auth: toBase64Url(subscription.auth) } },
    WAKE_PAYLOAD,
    {
      vapidDetails: { subject: options.subject, publicKey: options.vapid.publicKey, privateKey: options.vapid.privateKey },
      TTL: options.ttlSeconds,
      urgency: options.urgency,
      topic: WAKE_TOPIC,
      contentEncoding: 'aes128gcm',
    },
  );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(details.headers)) headers[name] = String(value);
  const response = await fetch(details.endpoint, {
    method: 'POST',
    headers,
    body: details.body === null ? null : new Uint8Array(details.body),
    redirect: 'manual',
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  // The answer's body is not needed; release the connection.
  await response.body?.cancel().catch(() => undefined);
  return response.status;
}
