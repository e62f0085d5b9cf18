// The safety number between two browsers: the same 60 digits on both sides and a QR code that decodes to the
// scannable form; after one side registers again (a new identity key) the other sees an identity-change notice
// in the chat, and both sides agree on the new number.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import jsqr from 'jsqr';
import sharp from 'sharp';
import type { BrowserContext, Page } from 'playwright-core';
import { bubble, NUMBERS, openChatWith, registerInBrowser, screenshot, sendMessage, startWorld, type E2eWorld } from './support.ts';

const { alice: A, bob: B } = NUMBERS;
type Decode = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
/** jsqr is CommonJS: its function is the default export, or that export's own default. */
const jsQR = ((m: Decode | { default: Decode }): Decode => (typeof m === 'function' ? m : m.default))(jsqr);

/** Opens the safety number of the open chat; returns its digits and the text its QR code holds, and closes it. */
async function safetyNumber(page: Page, shot?: string): Promise<{ digits: string; qr: string }> {
  await page.getByRole('button', { name: 'Safety number', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Safety number' });
  const digits = (await dialog.getByLabel('Safety number digits').getAttribute('data-digits')) ?? '';
  const img = dialog.getByRole('img', { name: 'Safety number QR code' });
  await img.waitFor();
  const src = (await img.getAttribute('src')) ?? '';
  const png = Buffer.from(src.replace(/^data:image\/png;base64,/, ''), 'base64');
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const code = jsQR(new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), info.width, info.height);
  if (shot) await screenshot(page, shot);
  await dialog.getByRole('button', { name: 'Close' }).click();
  return { digits, qr: code?.data ?? '' };
}

describe('safety numbers and identity changes', () => {
  let world: E2eWorld;
  let alice: Page;
  let bob: Page;
  let bobContext: BrowserContext;
  let before1: { digits: string; qr: string };

  before(async () => {
    world = await startWorld('safety');
    alice = await registerInBrowser(await world.context(), A);
    bobContext = await world.context();
    bob = await registerInBrowser(bobContext, B);
    await openChatWith(alice, B.number);
    await sendMessage(alice, 'Shall we compare numbers?');
    await openChatWith(bob, A.number);
    await bubble(bob, 'Shall we compare numbers?').waitFor();
  });
  after(async () => {
    await world?.close();
  });

  it('shows the same 60 digits on both sides, and a QR code of them', async () => {
    before1 = await safetyNumber(alice, 'safety-number');
    const fromBob = await safetyNumber(bob);
    assert.match(before1.digits, /^\d{60}$/);
    assert.equal(fromBob.digits, before1.digits);
    assert.match(before1.qr, /^parley-safety:[A-Za-z0-9+/]+=*$/);
    assert.match(fromBob.qr, /^parley-safety:/);
  });

  it('warns in the chat when the other side registers again with a new identity', async () => {
    // Bob logs out (deleting this browser's keys) and registers the same number again: a new identity key.
    bob.once('dialog', (d) => void d.accept());
    await bob.getByRole('button', { name: 'Settings' }).click();
    await bob.getByRole('button', { name: 'Log out and delete data' }).click();
    await bob.getByLabel('Phone number (with country code)').waitFor({ timeout: 30_000 });
    await bob.close();
    bob = await registerInBrowser(bobContext, B);
    await openChatWith(bob, A.number);
    await sendMessage(bob, 'New phone, same me');

    await bubble(alice, 'New phone, same me').waitFor({ timeout: 60_000 });
    const notice = alice.getByRole('note').filter({ hasText: `${B.number}’s safety number changed` });
    await notice.waitFor();
    await notice.getByRole('button', { name: 'View safety number' }).waitFor();
    await screenshot(alice, 'safety-identity-changed');

    const after1 = await safetyNumber(alice);
    const fromBob = await safetyNumber(bob);
    assert.match(after1.digits, /^\d{60}$/);
    assert.notEqual(after1.digits, before1.digits, 'a new identity gives a new safety number');
    assert.equal(fromBob.digits, after1.digits);
    assert.notEqual(after1.qr, before1.qr);
  });
});
