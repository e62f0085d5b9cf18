// Two people in two browser profiles register and chat through a real server: ticks go from sent to
// delivered to read, replies, reactions, edits and deletes reach the other side, typing shows, and the
// offline banner appears while the network is gone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { bubble, NUMBERS, openChatWith, registerInBrowser, screenshot, sendMessage, startWorld, waitForTicks, watchErrors, type E2eWorld } from './support.ts';

const { alice: A, bob: B } = NUMBERS;

describe('two browsers chat', () => {
  let world: E2eWorld;
  let ctxA: BrowserContext;
  let ctxB: BrowserContext;
  let alice: Page;
  let bob: Page;
  const errors: string[] = [];

  before(async () => {
    world = await startWorld('chat');
    ctxA = await world.context();
    ctxB = await world.context({ colorScheme: 'dark' });
  });
  after(async () => {
    await world?.close();
  });

  it('registers both with their codes', async () => {
    alice = await registerInBrowser(ctxA, A);
    bob = await registerInBrowser(ctxB, B);
    errors.push(...watchErrors(alice), ...watchErrors(bob));
    await screenshot(alice, 'chats-empty');
  });

  it('shows sent, then delivered once the recipient is online, then read once the chat is opened', async () => {
    // Bob loses the network: the banner says so, and Alice's message can only be sent, not delivered.
    await ctxB.setOffline(true);
    await bob.getByRole('status').filter({ hasText: /offline|Reconnecting/ }).first().waitFor();
    await openChatWith(alice, B.number);
    await sendMessage(alice, 'Hello Bob, this is Alice');
    await waitForTicks(alice, 'Hello Bob, this is Alice', 'sent');
    await screenshot(bob, 'offline-banner');
    // Sent stays sent while Bob is away.
    await alice.waitForTimeout(1_000);
    assert.equal(await bubble(alice, 'Hello Bob, this is Alice').locator('[data-ticks="sent"]').count(), 1);

    await ctxB.setOffline(false);
    // Bob is back (the client reconnects by itself) and his device confirms delivery; he has not opened the chat.
    await waitForTicks(alice, 'Hello Bob, this is Alice', 'delivered', 60_000);
    const row = bob.getByRole('button', { name: new RegExp(`^${A.number.replace('+', '\\+')}, 1 unread`) });
    await row.waitFor();
    await screenshot(bob, 'chats-unread');

    await row.click();
    await bubble(bob, 'Hello Bob, this is Alice').waitFor();
    await waitForTicks(alice, 'Hello Bob, this is Alice', 'read');
    await screenshot(alice, 'conversation-read-ticks');
  });

  it('shows typing, and delivers a reply that quotes the message', async () => {
    await bob.getByRole('textbox', { name: 'Message' }).fill('typing something');
    await alice.locator('.subtitle', { hasText: 'typing…' }).waitFor();
    await bob.getByRole('textbox', { name: 'Message' }).fill('');
    const target = bob.locator('.row', { has: bubble(bob, 'Hello Bob, this is Alice') });
    await target.hover();
    await target.getByRole('button', { name: 'Reply' }).click();
    await sendMessage(bob, 'Hi Alice! Bob here');
    const reply = bubble(alice, 'Hi Alice! Bob here');
    await reply.waitFor();
    assert.match(await reply.locator('blockquote').innerText(), /Hello Bob, this is Alice/);
  });

  it('carries reactions, edits and deletes for everyone', async () => {
    const row = alice.locator('.row', { has: bubble(alice, 'Hi Alice! Bob here') });
    await row.hover();
    await row.getByRole('button', { name: 'React', exact: true }).click();
    await alice.getByRole('menuitem', { name: 'React 👍' }).click();
    await bubble(bob, 'Hi Alice! Bob here').getByRole('button', { name: '👍 1' }).waitFor();

    await sendMessage(alice, 'A message with a typo');
    await bubble(bob, 'A message with a typo').waitFor();
    const mine = alice.locator('.row', { has: bubble(alice, 'A message with a typo') });
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit' }).click();
    await sendMessage(alice, 'A message without the typo');
    const edited = bubble(bob, 'A message without the typo');
    await edited.waitFor();
    assert.equal(await edited.locator('.edited').count(), 1);

    await sendMessage(alice, 'Something to take back');
    await bubble(bob, 'Something to take back').waitFor();
    const gone = alice.locator('.row', { has: bubble(alice, 'Something to take back') });
    await gone.hover();
    alice.once('dialog', (d) => void d.accept());
    await gone.getByRole('button', { name: 'Delete for everyone' }).click();
    await bob.locator('article.bubble.deleted', { hasText: 'This message was deleted' }).waitFor();
    assert.equal(await bubble(bob, 'Something to take back').count(), 0);
    await screenshot(bob, 'conversation-dark');
  });

  it('sets a disappearing timer that both sides show', async () => {
    await alice.getByRole('button', { name: /^Disappearing messages/ }).click();
    await alice.getByRole('radio', { name: '1 day' }).click();
    await bob.getByText(/set disappearing messages to 1 day/).waitFor();
    await alice.getByText(/set disappearing messages to 1 day/).waitFor();
  });

  it('keeps all history across a reload (IndexedDB)', async () => {
    await alice.reload();
    // The URL still names the chat: it opens straight away, from what this browser stored.
    await alice.getByRole('heading', { level: 2, name: B.number }).waitFor();
    for (const text of ['Hello Bob, this is Alice', 'Hi Alice! Bob here', 'A message without the typo']) await bubble(alice, text).waitFor();
    await waitForTicks(alice, 'Hello Bob, this is Alice', 'read');
    assert.equal(await alice.locator('article.bubble.deleted').count(), 1);
    // And the session still works: a message after the reload goes through.
    await sendMessage(alice, 'Still here after the reload');
    await bubble(bob, 'Still here after the reload').waitFor();
    await screenshot(alice, 'conversation-after-reload');
  });

  it('sends what was written offline after the tab was closed and opened again (the outbox resumes)', async () => {
    await ctxA.setOffline(true);
    await alice.getByRole('status').filter({ hasText: /offline|Reconnecting/ }).first().waitFor();
    await sendMessage(alice, 'Written offline, tab closed');
    await waitForTicks(alice, 'Written offline, tab closed', 'pending');
    await alice.close();
    await ctxA.setOffline(false);
    alice = await ctxA.newPage();
    errors.push(...watchErrors(alice));
    await alice.goto('/');
    await bubble(bob, 'Written offline, tab closed').waitFor({ timeout: 60_000 });
    await openChatWith(alice, B.number);
    await waitForTicks(alice, 'Written offline, tab closed', 'read', 30_000);
  });

  it('logged no page errors', () => {
    assert.deepEqual(errors.filter((e) => !/Failed to load resource|WebSocket/.test(e)), []);
  });
});
