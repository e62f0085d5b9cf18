/**
 * The installable-app side: the service worker (public/sw.js), which also receives Web Push (turned on in
 * Settings, model/push.ts). The worker shows a notification for a push while no Parley window is focused;
 * the push carries no message content (the server cannot read any), only a wake-up.
 */

/** Registers the service worker, when the browser has them (secure contexts only). */
export function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err: unknown) => console.warn('parley: service worker not registered', err));
}
