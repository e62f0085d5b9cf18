// Web Push in the browser (issue #7). Headless Chromium cannot reach a real push service, so:
// - a push is delivered to the app's real service worker through the DevTools protocol
//   (ServiceWorker.deliverPushMessage), and the notification it shows is read back with
//   registration.getNotifications(): "New message" and nothing else, none while a Parley window is focused,
//   and the click handler closes it;
// - the Settings toggle is driven twice: with the browser's own PushManager (which fails here without a push
//   service: the screen must say so in words), and with PushManager.subscribe standing in for a push service
//   (a subscription with keys made by the test), where the toggle must hand the subscription to the server
//   (PUT /v1/push/subscription, 204) and take it back when turned off (DELETE, 204).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import type { BrowserContext, CDPSession, Page } from 'playwright-core';
import { NUMBERS, registerInBrowser, screenshot, startWorld, watchErrors, type E2eWorld } from './support.ts';

const { alice: A } = NUMBERS;

interface ShownNotification {
  title: string;
  body: string;
  tag: string;
  data: unknown;
}

/** The notifications the app's service worker is showing, read from the page. */
function notifications(page: Page): Promise<ShownNotification[]> {
  return page.evaluate(async () => {
    const registration = await navigator.serviceWorker.ready;
    return (await registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data as unknown }));
  });
}

describe('web push in the browser', () => {
  let world: E2eWorld;
  let context: BrowserContext;
  let page: Page;
  let cdp: CDPSession;
  let registrationId = '';
  let errors: string[] = [];
  /** Responses of the app's page with an error status. */
  const failed: string[] = [];

  before(async () => {
    world = await startWorld('push');
    context = await world.context({ permissions: ['notifications'] });
    page = await registerInBrowser(context, A);
    errors = watchErrors(page);
    assert.equal(await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.state), 'activated');
    cdp = await context.newCDPSession(page);
    const registered = new Promise<string>((resolve) => {
      cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: Array<{ registrationId: string; scopeURL: string; isDeleted: boolean }> }) => {
        const mine = e.registrations.find((r) => r.scopeURL === `${world.server.url}/` && !r.isDeleted);
        if (mine !== undefined) resolve(mine.registrationId);
      });
    });
    await cdp.send('ServiceWorker.enable');
    registrationId = await registered;
  });
  after(async () => {
    await world?.close();
  });

  const deliverPush = async (): Promise<void> => {
    // What the server sends, decrypted: the wake-up and nothing else.
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: world.server.url, registrationId, data: '{"type":"wake"}' });
  };

  it('shows "New message" for a push, not while a Parley window is focused, and closes it on click', async () => {
    assert.ok(await page.evaluate(() => document.hasFocus()), 'the app window starts focused');
    await deliverPush();
    await page.waitForTimeout(1000);
    assert.deepEqual(await notifications(page), [], 'no notification over a focused window');

    // Headless Chromium counts every window as focused: close the app's window instead (the usual case for
    // a push anyway: Parley is closed). The worker, reached through another page's DevTools session, stays.
    const [worker] = context.serviceWorkers();
    assert.ok(worker !== undefined, 'the service worker runs');
    const other = await context.newPage();
    await other.goto('about:blank');
    const otherCdp = await context.newCDPSession(other);
    await otherCdp.send('ServiceWorker.enable');
    await page.close();
    await otherCdp.send('ServiceWorker.deliverPushMessage', { origin: world.server.url, registrationId, data: '{"type":"wake"}' });
    // Plain script text in the worker, as in the page below.
    const shownNow = (): Promise<ShownNotification[]> =>
      worker.evaluate('self.registration.getNotifications().then((ns) => ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })))');
    let shown: ShownNotification[] = [];
    for (let i = 0; i < 100 && shown.length === 0; i++) {
      await other.waitForTimeout(100);
      shown = await shownNow();
    }
    assert.deepEqual(shown, [{ title: 'Parley', body: 'New message', tag: 'parley-new-message', data: { url: '/' } }], 'a content-free notification');

    // The worker handles clicks: dispatch one on its notification (as the browser does) and watch it close.
    const clicked = await worker.evaluate(`(async () => {
      const [n] = await self.registration.getNotifications();
      if (n === undefined) return 'no notification';
      try {
        self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n }));
      } catch {
        // waitUntil refuses an event the browser did not dispatch; the handler ran up to there.
      }
      return 'dispatched';
    })()`);
    assert.equal(clicked, 'dispatched');
    let left: ShownNotification[] = shown;
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await other.waitForTimeout(100);
      left = await shownNow();
    }
    assert.deepEqual(left, [], 'the click handler closed the notification');
    // Back to the app for the next case.
    page = await context.newPage();
    await page.goto('/');
    await page.getByRole('heading', { name: 'Chats' }).waitFor();
    errors = watchErrors(page);
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
    });
    await other.close();
  });

  it('Settings: the toggle says so when the browser has no push service, and hands a subscription to the server when there is one', async () => {
    await page.getByRole('button', { name: 'Settings' }).click();
    const toggle = page.getByRole('switch', { name: 'Notify me while Parley is closed' });
    await toggle.waitFor();
    assert.equal(await toggle.isChecked(), false);

    // 1. The browser's own PushManager: headless Chromium has no push service to subscribe with.
    const vapid = page.waitForResponse((r) => r.url().endsWith('/v1/push/vapid'));
    await toggle.click();
    const vapidResponse = await vapid;
    assert.equal(vapidResponse.status(), 200);
    const { publicKey } = (await vapidResponse.json()) as { publicKey: string };
    assert.equal(Buffer.from(publicKey, 'base64url').length, 65);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /could not subscribe with its push service/);
    await screenshot(page, 'push-settings-no-push-service');
    assert.equal(await toggle.isChecked(), false);

    // 2. A push service stands in for the browser's: PushManager.subscribe returns a subscription whose keys
    //    the test made (an ECDH P-256 key and a 16-byte auth secret, as a browser's are).
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const fake = { endpoint: 'https://push.example.test/e2e/alice', p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
    // Plain script text: functions compiled by tsx would call its helpers, which the page does not have.
    await page.evaluate(`(() => {
      const f = ${JSON.stringify(fake)};
      let current = null;
      PushManager.prototype.getSubscription = async function () { return current; };
      PushManager.prototype.subscribe = async function (options) {
        const key = new Uint8Array(options.applicationServerKey);
        current = {
          endpoint: f.endpoint,
          expirationTime: null,
          options: { applicationServerKey: key.buffer.slice(0), userVisibleOnly: true },
          toJSON() { return { endpoint: f.endpoint, expirationTime: null, keys: { p256dh: f.p256dh, auth: f.auth } }; },
          async unsubscribe() { current = null; return true; },
        };
        return current;
      };
    })()`);
    const put = page.waitForResponse((r) => r.url().endsWith('/v1/push/subscription') && r.request().method() === 'PUT');
    await toggle.click();
    const putResponse = await put;
    assert.equal(putResponse.status(), 204, 'the server took the subscription');
    assert.deepEqual(JSON.parse(putResponse.request().postData() ?? '{}'), { endpoint: fake.endpoint, expirationTime: null, keys: { p256dh: fake.p256dh, auth: fake.auth } });
    await page.waitForFunction(() => document.querySelector<HTMLInputElement>('[role="switch"]')?.checked === true);
    assert.equal(await page.getByRole('alert').count(), 0, 'no error shown');
    await screenshot(page, 'push-settings-on');

    const del = page.waitForResponse((r) => r.url().endsWith('/v1/push/subscription') && r.request().method() === 'DELETE');
    await toggle.click();
    assert.equal((await del).status(), 204, 'turned off: deleted on the server');
    await page.waitForFunction(() => document.querySelector<HTMLInputElement>('[role="switch"]')?.checked === false);
    // Chromium logs that it has no Push API here (headless profiles count as incognito); the Backups section
    // asks for a backup there is none of (404). No push request failed.
    assert.deepEqual(errors.filter((e) => !/Push API in incognito mode|status of 404/.test(e)), []);
    assert.deepEqual(failed.filter((f) => f.includes('/v1/push/')), []);
    assert.deepEqual(failed.filter((f) => !f.includes('/v1/backups/current')), []);
  });
});
