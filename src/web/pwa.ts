/**
 * The installable-app side: the service worker (public/sw.js) and, where the browser and the server support
 * it, Web Push. The worker shows a notification for a push while no tab is open; the push carries no
 * message content (the server cannot read any), only a wake-up.
 */

/** Registers the service worker, when the browser has them (secure contexts only). */
export function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err: unknown) => console.warn('parley: service worker not registered', err));
}

/** Why Web Push is not available, or undefined when it is. */
export function webPushUnavailable(): string | undefined {
  if (!('serviceWorker' in navigator)) return 'This browser has no service workers.';
  if (!('PushManager' in window)) return 'This browser has no Web Push.';
  // The server side (VAPID keys and the push subscription endpoint) is not part of this server yet.
  return 'This server does not send Web Push yet: notifications arrive while Parley is open.';
}
