// A browser linked as a companion by its QR code: the primary (another browser) pastes the code shown, the
// companion gets the recent history, receives new messages next to the primary, and what it sends reaches
// the contact (a terminal client) and shows on the primary as sent.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { cliOk } from '../support/cli.ts';
import { bubble, NUMBERS, openChat, registerInBrowser, screenshot, sendMessage, startWorld, type E2eWorld } from './support.ts';

const { alice: A, bob: B } = NUMBERS;

describe('linking a browser as a companion', () => {
  let world: E2eWorld;
  let primary: Page;
  let companion: Page;
  let bob: string;
  const asBob = (...args: string[]): string[] => [...args, '--profile', bob, '--json'];

  before(async () => {
    world = await startWorld('link');
    bob = path.join(world.tmp, 'bob');
  });
  after(async () => {
    await world?.close();
  });

  it('has a primary in one browser with a conversation', async () => {
    primary = await registerInBrowser(await world.context(), A);
    await cliOk(['register', B.number, '--server', world.server.url, '--code', B.code, '--profile', bob, '--json']);
    await cliOk(asBob('send', A.number, 'Before the link'));
    await openChat(primary, B.number);
    await bubble(primary, 'Before the link').waitFor();
  });

  it('links a second browser by the code it shows', async () => {
    companion = await (await world.context()).newPage();
    await companion.goto('/');
    await companion.getByRole('tab', { name: 'Link to my phone' }).click();
    await companion.getByRole('img', { name: 'Linking QR code' }).waitFor();
    const uri = await companion.getByRole('textbox', { name: 'Linking code' }).inputValue();
    assert.match(uri, /^parley:\/\/link\//);
    await screenshot(companion, 'link-qr');

    await primary.getByRole('button', { name: 'Settings' }).click();
    const settings = primary.getByRole('dialog', { name: 'Settings' });
    await settings.getByLabel(/^Link a device/).fill(uri);
    await settings.getByRole('button', { name: 'Link device' }).click();
    await settings.getByText(/Linked as device \d+/).waitFor({ timeout: 60_000 });
    await screenshot(primary, 'settings-linked-devices');
    await settings.getByRole('button', { name: 'Close' }).click();

    await companion.getByRole('heading', { name: 'Chats' }).waitFor({ timeout: 60_000 });
  });

  it('shows the history the primary sent, and new messages on both devices', async () => {
    await openChat(companion, B.number);
    await bubble(companion, 'Before the link').waitFor({ timeout: 30_000 });
    await cliOk(asBob('send', A.number, 'After the link'));
    await bubble(companion, 'After the link').waitFor();
    await bubble(primary, 'After the link').waitFor();
  });

  it('sends from the companion: the contact gets it and the primary shows it as sent', async () => {
    await sendMessage(companion, 'Hello from the linked browser');
    await bubble(primary, 'Hello from the linked browser').waitFor();
    assert.equal(await primary.locator('.row.out', { has: bubble(primary, 'Hello from the linked browser') }).count(), 1);
    const r = await cliOk(asBob('receive', '--until-empty'));
    assert.ok(r.lines.some((l) => l.type === 'text' && l.body === 'Hello from the linked browser' && l.from === A.number));
    await screenshot(companion, 'companion-conversation');
  });
});
