// An image sent from one browser appears decrypted in the other: compressed in the sender's browser (longest
// side 1,600 px, JPEG), encrypted there, uploaded as ciphertext, downloaded and decrypted by the receiver.
// The server's files never hold the image's bytes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { filesUnder } from '../support/cli.ts';
import { NUMBERS, openChatWith, registerInBrowser, screenshot, sendMessage, bubble, startWorld, type E2eWorld } from './support.ts';

const { alice: A, bob: B } = NUMBERS;

/** A 2400 x 1200 PNG with a gradient and noise (so the JPEG is not trivially small). */
async function testImage(file: string): Promise<void> {
  const width = 2400;
  const height = 1200;
  const raw = Buffer.alloc(width * height * 3);
  let seed = 7;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = seed & 0x3f;
    }
  }
  writeFileSync(file, await sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer());
}

describe('images between browsers', () => {
  let world: E2eWorld;
  let alice: Page;
  let bob: Page;

  before(async () => {
    world = await startWorld('media');
  });
  after(async () => {
    await world?.close();
  });

  it('sends a photo that the other browser decrypts and shows', async () => {
    alice = await registerInBrowser(await world.context(), A);
    bob = await registerInBrowser(await world.context(), B);
    await openChatWith(alice, B.number);
    await sendMessage(alice, 'A photo follows');
    await openChatWith(bob, A.number);
    await bubble(bob, 'A photo follows').waitFor();

    const file = path.join(world.tmp, 'landscape.png');
    await testImage(file);
    await alice.locator('input[type=file]').setInputFiles(file);

    const img = bob.locator('img[data-decrypted="true"]');
    await img.waitFor({ timeout: 60_000 });
    const size = await img.evaluate(async (el: HTMLImageElement) => {
      await el.decode();
      return [el.naturalWidth, el.naturalHeight];
    });
    assert.deepEqual(size, [1600, 800], 'compressed to 1,600 px on the longest side');
    // The sender sees it too, with its ticks.
    await alice.locator('img[data-decrypted="true"]').waitFor();
    await screenshot(bob, 'conversation-image');

    // The decrypted bytes are a JPEG, and they appear nowhere in the server's files.
    const bytes = await img.evaluate(async (el: HTMLImageElement) => Array.from(new Uint8Array(await (await fetch(el.src)).arrayBuffer())));
    const jpeg = Buffer.from(bytes);
    assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
    const serverFiles = filesUnder(world.server.dataDir);
    assert.equal(serverFiles.indexOf(jpeg.subarray(1000, 1064)), -1, 'the server holds no plaintext of the image');
  });
});
