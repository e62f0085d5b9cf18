/* global self */
// Parley's service worker. It makes the app installable and shows a notification for a Web Push (turned on
// in Settings; docs/server.md "Web Push"). A push carries no message content: the server cannot read
// messages, and sends only a wake-up ({"type":"wake"}), so the notification only says that something
// arrived. Opening the app fetches and decrypts what waits.
self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/** The one notification a push shows (a newer one replaces it: same tag). */
const NOTIFICATION = { title: 'Parley', body: 'New message', tag: 'parley-new-message' };

self.addEventListener('push', (event) => {
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      // A focused Parley window is in front of the user (and shows its own notifications): nothing to add.
      if (windows.some((w) => w.focused)) return undefined;
      return self.registration.showNotification(NOTIFICATION.title, { body: NOTIFICATION.body, tag: NOTIFICATION.tag, renotify: true, icon: '/icon.svg', data: { url: '/' } });
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => w.url.startsWith(self.location.origin));
      if (open) return open.focus();
      return self.clients.openWindow('/');
    }),
  );
});
