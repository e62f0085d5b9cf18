/* global self */
// Parley's service worker. It makes the app installable and, once the server sends Web Push, shows a
// notification when a message waits while no Parley tab is open. A push carries no message content: the
// server cannot read messages, so the notification only says that something arrived.
self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('push', (event) => {
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      // An open tab shows its own notifications (it can decrypt the message).
      if (windows.some((w) => w.visibilityState === 'visible')) return undefined;
      return self.registration.showNotification('Parley', { body: 'New message', tag: 'parley-new-message', icon: '/icon.svg' });
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows[0];
      if (open) return open.focus();
      return self.clients.openWindow('/');
    }),
  );
});
