// Three people in three browser profiles share a group: it is created with two members, everyone's
// messages reach everyone, per-member read receipts count up, an admin promotes and removes members, and
// everyone sees the system messages.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { bubble, createGroup, NUMBERS, openChat, openChatWith, registerInBrowser, screenshot, sendMessage, startWorld, waitForTicks, type E2eWorld } from './support.ts';

const { alice: A, bob: B, carol: C } = NUMBERS;
const GROUP = 'Weekend plans';

describe('a three-person group in the browser', () => {
  let world: E2eWorld;
  let alice: Page;
  let bob: Page;
  let carol: Page;

  before(async () => {
    world = await startWorld('group');
  });
  after(async () => {
    await world?.close();
  });

  it('registers three people', async () => {
    alice = await registerInBrowser(await world.context(), A);
    bob = await registerInBrowser(await world.context(), B);
    carol = await registerInBrowser(await world.context({ width: 420, height: 800 }), C);
  });

  it('creates a group that both members see with its system message', async () => {
    await createGroup(alice, GROUP, [B.number, C.number]);
    await alice.locator('.system', { hasText: 'You created the group' }).waitFor();
    for (const page of [bob, carol]) {
      await openChat(page, GROUP);
      await page.locator('.system', { hasText: /created the group/ }).waitFor();
    }
    await screenshot(carol, 'group-phone-width');
  });

  it('delivers every member’s messages to everyone', async () => {
    await sendMessage(alice, 'Saturday at ten?');
    await bubble(bob, 'Saturday at ten?').waitFor();
    await bubble(carol, 'Saturday at ten?').waitFor();
    await sendMessage(bob, 'Works for me');
    await bubble(alice, 'Works for me').waitFor();
    await bubble(carol, 'Works for me').waitFor();
    // Group bubbles of others carry the author.
    assert.match(await bubble(carol, 'Works for me').locator('.author').innerText(), new RegExp(B.number.replace('+', '\\+')));
  });

  it('counts per-member read receipts', async () => {
    // Bob and Carol have the group open, so both read Alice's message: it turns read for the group only then.
    await waitForTicks(alice, 'Saturday at ten?', 'read', 30_000);
    const row = alice.locator('.row', { has: bubble(alice, 'Saturday at ten?') });
    await row.hover();
    await row.getByRole('button', { name: 'Message info' }).click();
    await alice.getByText('Read by 2 of 2').waitFor();
    await screenshot(alice, 'group-message-info');
    await alice.getByRole('dialog', { name: 'Message info' }).getByRole('button', { name: 'Close' }).click();
  });

  it('promotes and removes members, with system messages for everyone', async () => {
    await alice.getByRole('button', { name: 'Group info' }).click();
    const info = alice.getByRole('dialog', { name: 'Group info' });
    await info.getByRole('button', { name: `Make ${B.number} admin` }).click();
    await bob.locator('.system', { hasText: /made .* admin/ }).waitFor();
    await info.getByRole('button', { name: `Remove ${C.number}` }).click();
    await info.getByRole('listitem').filter({ hasText: C.number }).waitFor({ state: 'detached' });
    await info.getByRole('button', { name: 'Close' }).click();
    await bob.locator('.system', { hasText: new RegExp(`removed ${C.number.replace('+', '\\+')}`) }).waitFor();
    await carol.locator('.system', { hasText: /removed You/ }).waitFor();
    await carol.getByText('You are no longer a member of this group.').waitFor();
    await screenshot(alice, 'group-after-changes');

    // What follows is for the two who remain only.
    await sendMessage(bob, 'Just us two now');
    await bubble(alice, 'Just us two now').waitFor();
    await carol.waitForTimeout(1_500);
    assert.equal(await bubble(carol, 'Just us two now').count(), 0);
  });

  it('keeps 1:1 chats apart from the group', async () => {
    await openChatWith(bob, A.number);
    await sendMessage(bob, 'Private word');
    await alice.getByRole('button', { name: new RegExp(`^${B.number.replace('+', '\\+')}, 1 unread`) }).waitFor();
    assert.equal(await bubble(carol, 'Private word').count(), 0);
  });
});
