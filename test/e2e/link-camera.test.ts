// Linking a companion by scanning its QR code with the camera: the companion browser shows its code, the test
// draws that code with the `qrcode` package, turns it into a Y4M video with ffmpeg and starts the primary's
// Chromium with the video as its (fake) camera. The primary scans it from Settings, the companion is linked
// and gets the chats and history, as in link.test.ts where the code is pasted. Also: without a camera the
// scanner says so in words and the paste field stays.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import QRCode from 'qrcode';
import type { Page } from 'playwright-core';
import { cliOk } from '../support/cli.ts';
import { bubble, FAKE_MEDIA_FLAGS, NUMBERS, openChat, registerInBrowser, screenshot, startWorld, type E2eWorld } from './support.ts';

const { alice: A, bob: B, carol: C } = NUMBERS;
const FFMPEG = process.env.PARLEY_FFMPEG ?? '/usr/bin/ffmpeg';

/** A short 640 x 480 Y4M video of `text` as a QR code on white (Chromium loops it as the camera's picture). */
async function qrVideo(text: string, dir: string): Promise<string> {
  const png = path.join(dir, 'link-qr.png');
  const y4m = path.join(dir, 'link-qr.y4m');
  await QRCode.toFile(png, text, { width: 400, margin: 4, errorCorrectionLevel: 'M' });
  execFileSync(
    FFMPEG,
    ['-hide_banner', '-loglevel', 'error', '-y', '-loop', '1', '-i', png, '-vf', 'scale=400:400,pad=640:480:120:40:white,format=yuv420p', '-r', '5', '-t', '1', '-f', 'yuv4mpegpipe', y4m],
    { timeout: 30_000 },
  );
  return y4m;
}

describe('linking a browser by scanning its QR code with the camera', () => {
  let world: E2eWorld;
  let primary: Page;
  let companion: Page;
  let bob: string;
  let uri: string;
  const asBob = (...args: string[]): string[] => [...args, '--profile', bob, '--json'];

  before(async () => {
    world = await startWorld('link-camera');
    bob = path.join(world.tmp, 'bob');
  });
  after(async () => {
    await world?.close();
  });

  it('shows the linking code on the companion', async () => {
    companion = await (await world.context()).newPage();
    await companion.goto('/');
    await companion.getByRole('tab', { name: 'Link to my phone' }).click();
    await companion.getByRole('img', { name: 'Linking QR code' }).waitFor();
    uri = await companion.getByRole('textbox', { name: 'Linking code' }).inputValue();
    assert.match(uri, /^parley:\/\/link\//);
  });

  it('has a primary whose camera sees that code, with a conversation', async () => {
    const video = await qrVideo(uri, world.tmp);
    assert.ok(statSync(video).size > 640 * 480, 'ffmpeg wrote the video');
    const cameraBrowser = await world.launch([...FAKE_MEDIA_FLAGS, `--use-file-for-fake-video-capture=${video}`]);
    const ctx = await world.context({ browser: cameraBrowser, permissions: ['camera'] });
    // Keeps every stream the page opens (the real getUserMedia, only observed) to check the camera is released.
    await ctx.addInitScript(() => {
      const md = navigator.mediaDevices;
      const real = md.getUserMedia.bind(md);
      const opened: MediaStream[] = [];
      Object.assign(window, { parleyTestStreams: opened });
      md.getUserMedia = async (c) => {
        const s = await real(c);
        opened.push(s);
        return s;
      };
    });
    primary = await registerInBrowser(ctx, A);
    await cliOk(['register', B.number, '--server', world.server.url, '--code', B.code, '--profile', bob, '--json']);
    await cliOk(asBob('send', A.number, 'Before the scan'));
    await openChat(primary, B.number);
    await bubble(primary, 'Before the scan').waitFor();
  });

  it('scans the code from Settings and links the companion', async () => {
    await primary.getByRole('button', { name: 'Settings' }).click();
    const settings = primary.getByRole('dialog', { name: 'Settings' });
    await settings.getByRole('button', { name: 'Scan QR code' }).click();
    const scanner = settings.getByRole('group', { name: 'Scan the linking QR code' });
    await scanner.waitFor();
    // The scan starts the link by itself: the pasted-code field is filled with what was read.
    await settings.getByText(/Linked as device \d+/).waitFor({ timeout: 60_000 });
    assert.equal(await settings.getByLabel(/^Link a device/).inputValue(), '', 'the field is cleared once linked');
    assert.equal(await scanner.count(), 0, 'the scanner is closed after a code is read');
    // The camera was opened once and is released.
    const tracks = await primary.evaluate(() => (window as unknown as { parleyTestStreams: MediaStream[] }).parleyTestStreams.flatMap((s) => s.getTracks().map((t) => `${t.kind}:${t.readyState}`)));
    assert.deepEqual(tracks, ['video:ended']);
    await screenshot(primary, 'link-camera-linked');
    await settings.getByRole('button', { name: 'Close' }).click();

    await companion.getByRole('heading', { name: 'Chats' }).waitFor({ timeout: 60_000 });
  });

  it('gives the companion the history and new messages', async () => {
    await openChat(companion, B.number);
    await bubble(companion, 'Before the scan').waitFor({ timeout: 30_000 });
    await cliOk(asBob('send', A.number, 'After the scan'));
    await bubble(companion, 'After the scan').waitFor();
    await bubble(primary, 'After the scan').waitFor();
    await screenshot(companion, 'link-camera-companion');
  });

  it('says why when there is no camera, and keeps the paste field', async () => {
    // The world's own Chromium has no fake devices: getUserMedia finds no camera (or is refused).
    const page = await registerInBrowser(await world.context(), C);
    await page.getByRole('button', { name: 'Settings' }).click();
    const settings = page.getByRole('dialog', { name: 'Settings' });
    await settings.getByRole('button', { name: 'Scan QR code' }).click();
    const alert = settings.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /^(No camera was found on this device|Camera permission was denied|The camera could not be started)\b.*Paste the code instead\.$/s);
    await screenshot(page, 'link-camera-no-camera');
    await settings.getByRole('button', { name: 'Close scanner' }).click();
    assert.equal(await settings.getByRole('alert').count(), 0);
    await settings.getByLabel(/^Link a device/).waitFor();
    await settings.getByRole('button', { name: 'Scan QR code' }).waitFor();
  });
});
