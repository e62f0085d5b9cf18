// Losing the connection in the browser: while the server is down the banner says it is reconnecting and a
// message written meanwhile waits in the outbox (pending), then goes out once the server is back; a message
// written while the browser is offline survives the tab being closed and is sent, once, after reopening.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { startServer, type CliServer } from '../support/cli.ts';
import { bubble, NUMBERS, openChatWith, registerInBrowser, screenshot, sendMessage, startWorld, waitForTicks, type E2eWorld } from './support.ts';

const { alice: A, bob: B } = NUMBERS;

describe('offline and reconnecting', () => {
  let world: E2eWorld;
  let restarted: CliServer | undefined;
  let ctxA: BrowserContext;
  let alice: Page;
  let bob: Page;

  before(async () => {
    world = await startWorld('offline');
    ctxA = await world.context();
    alice = await registerInBrowser(ctxA, A);
    bob = await registerInBrowser(await world.context(), B);
    await openChatWith(alice, B.number);
    await sendMessage(alice, 'Before the outage');
    await openChatWith(bob, A.number);
    await bubble(bob, 'Before the outage').waitFor();
  });
  after(async () => {
    await restarted?.stop();
    await world?.close();
  });

  it('shows "reconnecting" while the server is down, and sends what was written once it is back', async () => {
    await world.server.stop();
    const banner = alice.getByRole('status').filter({ hasText: /^Cannot reach the server\. Reconnecting/ });
    await banner.waitFor({ timeout: 30_000 });
    await sendMessage(alice, 'Written while the server was down');
    await waitForTicks(alice, 'Written while the server was down', 'pending');
    await screenshot(alice, 'offline-reconnecting');
    // Still pending a moment later: nothing can take it.
    await alice.waitForTimeout(1_000);
    assert.equal(await bubble(alice, 'Written while the server was down').locator('[data-ticks="pending"]').count(), 1);

    // The same server (its data folder and port) comes back: the clients reconnect by themselves.
    restarted = await startServer(world.server.dataDir, [], world.server.port);
    await banner.waitFor({ state: 'detached', timeout: 60_000 });
    await bubble(bob, 'Written while the server was down').waitFor({ timeout: 60_000 });
    await waitForTicks(alice, 'Written while the server was down', 'read', 60_000);
  });

  it('keeps a message written offline when the tab closes, and sends it once after reopening', async () => {
    await ctxA.setOffline(true);
    await alice.getByRole('status').filter({ hasText: 'You are offline' }).waitFor();
    await sendMessage(alice, 'Written offline, tab closed');
    await waitForTicks(alice, 'Written offline, tab closed', 'pending');
    await screenshot(alice, 'offline-banner-pending');
    await alice.close();

    await ctxA.setOffline(false);
    alice = await ctxA.newPage();
    await alice.goto('/');
    await alice.getByRole('heading', { name: 'Chats' }).waitFor();
    await bubble(bob, 'Written offline, tab closed').waitFor({ timeout: 60_000 });
    await openChatWith(alice, B.number);
    await waitForTicks(alice, 'Written offline, tab closed', 'read', 60_000);
    // Exactly once on both sides.
    assert.equal(await bubble(bob, 'Written offline, tab closed').count(), 1);
    assert.equal(await bubble(alice, 'Written offline, tab closed').count(), 1);
    assert.equal(await bubble(bob, 'Written while the server was down').count(), 1);
  });
});
