/**
 * Web Push in the web app (issue #7, docs/server.md "Web Push"): the Settings toggle turns it on and off.
 *
 * On: ask for notification permission, fetch the server's VAPID public key (`GET /v1/push/vapid`),
 * subscribe with the browser's PushManager on the app's service worker (public/sw.js), and hand the
 * subscription (endpoint and keys, `PushSubscription.toJSON()`) to the server (`PUT /v1/push/subscription`).
 * Off (and on logout): delete it on the server (`DELETE /v1/push/subscription`) and unsubscribe here.
 *
 * The server then wakes this device through the browser's push service while no Parley tab is connected;
 * the push carries no message content, so the worker can only say "New message". Headless browsers and
 * browsers without a reachable push service fail at `subscribe`: {@link PushError} says so in words.
 */
import { HttpTransport, type ApiResponse, type ClientStore } from '../../client/index.js';
import { browserFetch } from './profile.js';

/** A failure the Settings screen shows as it is. */
export class PushError extends Error {
  override readonly name = 'PushError';
}

/** The toggle's state. */
export type PushState =
  /** The browser cannot do Web Push here (the reason in words). */
  | { readonly kind: 'unavailable'; readonly reason: string }
  /** Notifications were refused for this site: only the browser's site settings can change that. */
  | { readonly kind: 'blocked' }
  | { readonly kind: 'off' }
  | { readonly kind: 'on' };

/** Why Web Push cannot work in this browser, or undefined when it can. */
export function pushUnsupported(): string | undefined {
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return 'This browser has no service workers (or the page is not on https).';
  if (!('PushManager' in window)) return 'This browser has no Web Push.';
  if (!('Notification' in window)) return 'This browser has no notifications.';
  return undefined;
}

/** Base64url (padding optional) to bytes. */
function fromBase64Url(value: string): Uint8Array<ArrayBuffer> {
  const b64 = value.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function sameBytes(a: ArrayBuffer | null | undefined, b: Uint8Array): boolean {
  if (a === null || a === undefined || a.byteLength !== b.length) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}

/** Resolves with the active service worker registration, or rejects after `ms`. */
async function readyWorker(ms = 10_000): Promise<ServiceWorkerRegistration> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      navigator.serviceWorker.ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new PushError('The app’s service worker did not start. Reload the page and try again.')), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const TURNED_ON_KEY = 'push.on';

/** Web Push for one signed-in device. */
export class WebPush {
  readonly #store: ClientStore;

  constructor(store: ClientStore) {
    this.#store = store;
  }

  /** What the toggle shows now. */
  async state(): Promise<PushState> {
    const reason = pushUnsupported();
    if (reason !== undefined) return { kind: 'unavailable', reason };
    if (Notification.permission === 'denied') return { kind: 'blocked' };
    const registration = await navigator.serviceWorker.getRegistration('/');
    const subscription = await registration?.pushManager.getSubscription();
    const on = (await this.#store.transaction((tx) => tx.settings.get(TURNED_ON_KEY))) === true;
    return on && subscription != null ? { kind: 'on' } : { kind: 'off' };
  }

  /** Subscribes and registers the subscription with the server. Rejects with a {@link PushError} in words. */
  async enable(): Promise<void> {
    const reason = pushUnsupported();
    if (reason !== undefined) throw new PushError(reason);
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') throw new PushError('Notifications are blocked for this site. Allow them in the browser’s site settings, then try again.');
    const api = await this.#api();
    const vapid = await api.request({ verb: 'GET', path: '/v1/push/vapid' });
    if (vapid.status !== 200) throw new PushError(`The server does not offer Web Push (${vapid.status} ${vapid.code}).`.replace(' )', ')'));
    const { publicKey } = JSON.parse(new TextDecoder().decode(vapid.body)) as { publicKey: string };
    const key = fromBase64Url(publicKey);
    const registration = await readyWorker();
    let subscription = await registration.pushManager.getSubscription();
    // A subscription made for another server key (another server, or a key that changed) cannot be used.
    if (subscription !== null && !sameBytes(subscription.options.applicationServerKey, key)) {
      await subscription.unsubscribe();
      subscription = null;
    }
    if (subscription === null) {
      try {
        subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      } catch (err) {
        const detail = err instanceof Error ? ` (${err.message})` : '';
        throw new PushError(`This browser could not subscribe with its push service${detail}. Notifications still arrive while Parley is open.`);
      }
    }
    const put = await api.request({ verb: 'PUT', path: '/v1/push/subscription', body: new TextEncoder().encode(JSON.stringify(subscription.toJSON())) });
    if (put.status !== 204) {
      await subscription.unsubscribe().catch(() => false);
      throw new PushError(`The server refused this browser’s push subscription: ${describe(put)}.`);
    }
    await this.#store.transaction((tx) => tx.settings.put(TURNED_ON_KEY, true));
  }

  /** Deletes the subscription on the server and here (the toggle off, and logout). */
  async disable(): Promise<void> {
    await this.#store.transaction((tx) => tx.settings.put(TURNED_ON_KEY, false));
    const api = await this.#api();
    const del = await api.request({ verb: 'DELETE', path: '/v1/push/subscription' });
    if (pushUnsupported() === undefined) {
      const registration = await navigator.serviceWorker.getRegistration('/');
      await (await registration?.pushManager.getSubscription())?.unsubscribe();
    }
    if (del.status !== 204) throw new PushError(`The server did not delete the push subscription: ${describe(del)}.`);
  }

  /** An HTTP transport with this device's credentials (the same the client uses). */
  async #api(): Promise<HttpTransport> {
    const account = await this.#store.transaction((tx) => tx.account.get());
    if (account === undefined) throw new PushError('This browser is not registered.');
    return new HttpTransport({
      url: account.serverUrl,
      credentials: { accountId: account.accountId, deviceId: account.deviceId, password: account.password },
      fetch: browserFetch,
    });
  }
}

function describe(res: ApiResponse): string {
  return res.message !== '' ? res.message : `${res.status} ${res.code}`.trim();
}
