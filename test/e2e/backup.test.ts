// Encrypted backups in the browser (issue #10): Alice chats with Bob (texts and a photo each way), sets up
// backups with a recovery key in Settings (shown once, copied, confirmed), backs up to the server and exports
// a file. On a new browser she registers her number again: a wrong recovery key and a tampered file are
// refused with an error and nothing is imported; then the right key (with the exported file) brings back the
// conversation and both photos, she keeps chatting with Bob, and Bob sees that her safety number changed. Then
// she protects backups with a password (Argon2id in the page) and restores the server's copy with it on yet
// another browser, after a wrong password is refused with the attempts left.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { BrowserContext, Page } from 'playwright-core';
import { bubble, NUMBERS, openChatWith, registerInBrowser, screenshot, sendMessage, startWorld, watchErrors, type E2eWorld } from './support.ts';

const { alice: A, bob: B } = NUMBERS;

/** A PNG of `width` x `height` with a gradient (its JPEG after the app's compression has these sizes). */
async function image(file: string, width: number, height: number, tint: number): Promise<void> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = tint;
    }
  }
  writeFileSync(file, await sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer());
}

/** Natural sizes of the decrypted images of the open chat, sorted. */
async function decryptedSizes(page: Page): Promise<string[]> {
  const sizes = await page.locator('img[data-decrypted="true"]').evaluateAll(async (els) =>
    Promise.all(
      (els as HTMLImageElement[]).map(async (el) => {
        await el.decode();
        return `${el.naturalWidth}x${el.naturalHeight}`;
      }),
    ),
  );
  return sizes.sort();
}

/** Registers `who` in a new page of `context` up to the restore offer. */
async function registerAgain(context: BrowserContext, who: { number: string; code: string }): Promise<Page> {
  const page = await context.newPage();
  await page.goto('/');
  await page.getByLabel('Phone number (with country code)').fill(who.number);
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByLabel('Verification code').fill(who.code);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByRole('heading', { name: 'Restore from backup' }).waitFor({ timeout: 60_000 });
  return page;
}

describe('backups in the browser', () => {
  let world: E2eWorld;
  let bob: Page;
  let recoveryKey = '';
  let exported = '';
  let restoredPage: Page;
  const errors: string[] = [];

  before(async () => {
    world = await startWorld('backup');
  });
  after(async () => {
    await world?.close();
  });

  it('backs up a conversation with photos under a recovery key, and exports it to a file', async () => {
    const ctxA = await world.context();
    await ctxA.grantPermissions(['clipboard-read', 'clipboard-write']);
    const alice = await registerInBrowser(ctxA, A);
    bob = await registerInBrowser(await world.context(), B);
    errors.push(...watchErrors(bob));

    await openChatWith(alice, B.number);
    await sendMessage(alice, 'Hi Bob, before the backup');
    await openChatWith(bob, A.number);
    await bubble(bob, 'Hi Bob, before the backup').waitFor();
    await sendMessage(bob, 'Hello Alice, here is a photo');
    const fromBob = path.join(world.tmp, 'from-bob.png');
    await image(fromBob, 640, 480, 40);
    await bob.locator('input[type=file]').setInputFiles(fromBob);
    const fromAlice = path.join(world.tmp, 'from-alice.png');
    await image(fromAlice, 320, 200, 200);
    await alice.locator('input[type=file]').setInputFiles(fromAlice);
    await bubble(alice, 'Hello Alice, here is a photo').waitFor();
    // Alice's browser downloads and decrypts Bob's photo as it is shown; hers shows from her own copy.
    await alice.locator('img[data-decrypted="true"]').nth(1).waitFor({ timeout: 60_000 });
    assert.deepEqual(await decryptedSizes(alice), ['320x200', '640x480']);
    await bob.locator('img[data-decrypted="true"]').nth(1).waitFor({ timeout: 60_000 });

    await alice.getByRole('button', { name: 'Settings' }).click();
    const section = alice.getByRole('region', { name: 'Backups' });
    await section.getByText('none on the server').waitFor();
    // The recovery key is the default protection; photos are included by default.
    assert.equal(await section.getByRole('radio', { name: 'A recovery key' }).getAttribute('aria-checked'), 'true');
    assert.equal(await section.getByLabel('Include photos, videos and files').isChecked(), true);
    const keyText = (await section.getByLabel('Recovery key').textContent()) ?? '';
    assert.match(keyText, /^(\d{4} ){15}\d{4}$/, 'shown in 16 groups of 4 digits');
    recoveryKey = keyText;
    await section.getByRole('button', { name: 'Copy' }).click();
    await section.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await alice.evaluate(() => navigator.clipboard.readText()), recoveryKey);
    await screenshot(alice, 'backup-recovery-key');
    await section.getByRole('button', { name: 'I saved it' }).click();
    // The confirmation step refuses digits that are not the key's last four.
    const check = section.getByLabel('To check that you saved it: the last four digits of the recovery key');
    await check.fill(recoveryKey.slice(-4) === '0000' ? '1111' : '0000');
    await section.getByRole('button', { name: 'Confirm' }).click();
    await section.getByRole('alert').filter({ hasText: 'not the last four digits' }).waitFor();
    await check.fill(recoveryKey.slice(-4));
    await section.getByRole('button', { name: 'Confirm' }).click();
    // Confirming makes the first backup (with a progress bar while it runs).
    const done = section.getByRole('status').filter({ hasText: /^Backed up \d+ messages/ });
    // A failure would show as an alert: report it rather than time out.
    await done.or(section.getByRole('alert')).first().waitFor({ timeout: 60_000 });
    assert.equal(await section.getByRole('alert').count(), 0, await section.getByRole('alert').allTextContents().then((t) => t.join(' ')));
    // Two texts and two photos; Bob's photo (downloaded here) travels inside, and Alice's too when the SDK kept
    // the sender's copy.
    assert.match((await done.textContent()) ?? '', /^Backed up 4 messages and [12] files? \(/);
    await section.getByText('recovery key', { exact: true }).waitFor();
    assert.notEqual(await section.getByTestId('last-backup').textContent(), 'none on the server');
    await section.getByRole('heading', { name: 'Backups' }).scrollIntoViewIfNeeded();
    await screenshot(alice, 'backup-settings-done');

    // Automatic backups: the choice is kept in the profile's store.
    await section.getByRole('radio', { name: 'Daily' }).click();
    await section.getByText('Next automatic backup').waitFor();
    assert.equal(await section.getByRole('radio', { name: 'Daily' }).getAttribute('aria-checked'), 'true');

    // Export to a file: the download is the encrypted backup.
    const [download] = await Promise.all([alice.waitForEvent('download'), section.getByRole('button', { name: 'Export to a file' }).click()]);
    assert.match(download.suggestedFilename(), /^parley-backup-\d{4}-\d{2}-\d{2}\.parleybackup$/);
    exported = path.join(world.tmp, download.suggestedFilename());
    await download.saveAs(exported);
    const bytes = readFileSync(exported);
    assert.equal(bytes.subarray(0, 8).toString('latin1'), 'PARLEYBK');
    assert.equal(bytes.indexOf(Buffer.from('Hi Bob, before the backup')), -1, 'no plaintext in the file');
    await section.getByRole('status').filter({ hasText: /^Saved parley-backup-/ }).waitFor();
    await ctxA.close();
  });

  it('refuses a wrong recovery key and a tampered file, importing nothing', async () => {
    const ctx = await world.context();
    const page = await registerAgain(ctx, A);
    const pageErrors = watchErrors(page);
    const offer = page.getByRole('form', { name: 'Restore from backup' });
    await offer.getByLabel('Recovery key (64 digits)').fill('1234 '.repeat(16).trim());
    await offer.getByRole('button', { name: 'Restore', exact: true }).click();
    await offer.getByRole('alert').filter({ hasText: 'The recovery key does not open this backup. Nothing was restored.' }).waitFor({ timeout: 60_000 });
    await screenshot(page, 'backup-restore-wrong-key');

    // The right key with a file changed in one byte of its last frame.
    const tampered = path.join(world.tmp, 'tampered.parleybackup');
    const bytes = readFileSync(exported);
    bytes[bytes.length - 40] = (bytes[bytes.length - 40] as number) ^ 0x01;
    writeFileSync(tampered, bytes);
    await offer.getByLabel('Or restore from an exported file (optional)').setInputFiles(tampered);
    await offer.getByLabel('Recovery key (64 digits)').fill(recoveryKey);
    await offer.getByRole('button', { name: 'Restore', exact: true }).click();
    await offer.getByRole('alert').filter({ hasText: /^This is not a Parley backup, or it was cut short or changed/ }).waitFor({ timeout: 60_000 });
    await screenshot(page, 'backup-restore-tampered');

    // Skipping shows an empty chats list: nothing was imported by the failed attempts.
    await offer.getByRole('button', { name: 'Skip' }).click();
    await page.getByRole('heading', { name: 'Chats' }).waitFor();
    await page.waitForTimeout(1_000);
    assert.equal(await page.getByRole('button', { name: new RegExp(`^\\${B.number}`) }).count(), 0, 'no chat with Bob');
    assert.deepEqual(pageErrors, []);
    await ctx.close();
  });

  it('restores on a new browser from the exported file with the recovery key: the chat and both photos are back, and the chat goes on', async () => {
    const ctx = await world.context();
    const page = await registerAgain(ctx, A);
    const pageErrors = watchErrors(page);
    const offer = page.getByRole('form', { name: 'Restore from backup' });
    // From the exported file this time (the password restore below downloads the server's copy).
    await offer.getByLabel('Or restore from an exported file (optional)').setInputFiles(exported);
    await offer.getByLabel('Recovery key (64 digits)').fill(recoveryKey);
    await offer.getByRole('button', { name: 'Restore', exact: true }).click();
    await page.getByRole('heading', { name: 'Chats' }).waitFor({ timeout: 60_000 });
    const toast = page.getByRole('status').filter({ hasText: /^Restored \d+ messages/ });
    await toast.waitFor();
    assert.match((await toast.textContent()) ?? '', /^Restored 4 messages and [12] files? from your backup\. Set up backups for this browser in Settings\./);

    await openChatWith(page, B.number);
    await bubble(page, 'Hi Bob, before the backup').waitFor();
    await bubble(page, 'Hello Alice, here is a photo').waitFor();
    // Bob's photo comes from the backup; Alice's own is fetched again from the server (the backup has its pointer).
    await page.locator('img[data-decrypted="true"]').nth(1).waitFor({ timeout: 60_000 });
    assert.deepEqual(await decryptedSizes(page), ['320x200', '640x480']);
    await screenshot(page, 'backup-restored-chat');

    await sendMessage(page, 'Back after restoring');
    await bubble(bob, 'Back after restoring').waitFor({ timeout: 60_000 });
    await bob.getByRole('note').filter({ hasText: 'safety number changed' }).first().waitFor();
    await screenshot(bob, 'backup-peer-sees-new-identity');
    await sendMessage(bob, 'Welcome back');
    await bubble(page, 'Welcome back').waitFor({ timeout: 60_000 });
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(errors, []);
    restoredPage = page;
  });

  it('switches to a password (Argon2id in the browser), refuses a wrong one with the attempts left, restores with the right one', async () => {
    const page = restoredPage;
    await page.getByRole('button', { name: 'Settings' }).click();
    const section = page.getByRole('region', { name: 'Backups' });
    // A backup never carries its own set-up: the restored browser sets up backups anew.
    await section.getByText('not set up').waitFor();
    await section.getByRole('radio', { name: 'A password' }).click();
    const field = section.getByLabel('Backup password', { exact: true });
    await field.fill('password');
    assert.equal(await section.locator('[data-score]').getAttribute('data-score'), '1', 'a weak password gets a warning');
    const password = 'tangerine orbit cellar 42 quietly';
    await field.fill(password);
    assert.equal(await section.locator('[data-score]').getAttribute('data-score'), '3');
    await section.getByLabel('The password again').fill(password);
    await screenshot(page, 'backup-password');
    await section.getByRole('button', { name: 'Use this password' }).click();
    // The first backup follows the set-up; it replaces the recovery-key backup on the server.
    await section.getByRole('status').filter({ hasText: /^Backed up 6 messages/ }).waitFor({ timeout: 60_000 });
    await section.getByText('password', { exact: true }).waitFor();
    await page.context().close();

    const ctx = await world.context();
    const next = await registerAgain(ctx, A);
    const pageErrors = watchErrors(next);
    const offer = next.getByRole('form', { name: 'Restore from backup' });
    await offer.getByRole('radio', { name: 'Password' }).click();
    await offer.getByText('10 tries left').waitFor();
    await offer.getByLabel('Backup password').fill('tangerine orbit cellar 42 loudly');
    await offer.getByRole('button', { name: 'Restore', exact: true }).click();
    await offer.getByRole('alert').filter({ hasText: 'Wrong backup password (9 attempts left). Nothing was restored.' }).waitFor({ timeout: 60_000 });
    await screenshot(next, 'backup-restore-wrong-password');
    await offer.getByLabel('Backup password').fill(password);
    await offer.getByRole('button', { name: 'Restore', exact: true }).click();
    await next.getByRole('heading', { name: 'Chats' }).waitFor({ timeout: 60_000 });
    await openChatWith(next, B.number);
    await bubble(next, 'Hi Bob, before the backup').waitFor();
    await bubble(next, 'Welcome back').waitFor();
    await next.locator('img[data-decrypted="true"]').nth(1).waitFor({ timeout: 60_000 });
    // Chromium logs the wrong password's 403 from the unlock route; nothing else.
    assert.deepEqual(pageErrors.filter((e) => !e.includes('status of 403')), []);
  });
});
