// The composer between two browsers: a voice note recorded with MediaRecorder from Chromium's fake microphone
// plays on the other side (a decodable Opus recording); files attached with the file picker, dropped on the
// conversation (a DataTransfer in drag events) and pasted (a ClipboardEvent) arrive decrypted with their name
// and bytes; a view-once photo opens once and then shows as opened.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Locator, Page } from 'playwright-core';
import { bubble, FAKE_MEDIA_FLAGS, NUMBERS, openChatWith, registerInBrowser, screenshot, sendMessage, startWorld, type E2eWorld } from './support.ts';

const { alice: A, bob: B } = NUMBERS;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A small but valid one-page PDF (with a body large enough to span more than one encrypted chunk of the codec). */
function pdf(): Buffer {
  const text = 'Parley test document. '.repeat(400);
  const stream = `BT /F1 12 Tf 72 720 Td (${text.slice(0, 80)}) Tj ET\n% ${text}`;
  const objects = ['<< /Type /Catalog /Pages 2 0 R >>', '<< /Type /Pages /Kids [3 0 R] /Count 1 >>', '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>', `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`, '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/** A PNG of `width` x `height` with a gradient. */
async function png(width: number, height: number, tint: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = tint;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** The file bubble named `name`. */
function fileBubble(page: Page, name: string): Locator {
  return page.locator('article.bubble', { has: page.locator('.media.file .file-name', { hasText: name }) });
}

/** Downloads (when needed) the file of a bubble and returns its decrypted bytes. */
async function fileBytes(b: Locator): Promise<Buffer> {
  const download = b.getByRole('button', { name: 'Download' });
  if ((await download.count()) > 0) await download.click();
  const save = b.getByRole('link', { name: 'Save' });
  await save.waitFor({ timeout: 60_000 });
  const bytes = await save.evaluate(async (a: HTMLAnchorElement) => Array.from(new Uint8Array(await (await fetch(a.href)).arrayBuffer())));
  return Buffer.from(bytes);
}

describe('the composer: voice notes, files, drops, pastes, view once', () => {
  let world: E2eWorld;
  let alice: Page;
  let bob: Page;

  before(async () => {
    // A fake microphone (a beeping tone) that needs no permission prompt; audio may play without a click.
    world = await startWorld('composer', [], { chromiumArgs: [...FAKE_MEDIA_FLAGS, '--autoplay-policy=no-user-gesture-required'] });
    alice = await registerInBrowser(await world.context({ permissions: ['microphone'] }), A);
    bob = await registerInBrowser(await world.context(), B);
    await openChatWith(alice, B.number);
    await sendMessage(alice, 'Files follow');
    await openChatWith(bob, A.number);
    await bubble(bob, 'Files follow').waitFor();
  });
  after(async () => {
    await world?.close();
  });

  it('records a voice note that plays on the other side', async () => {
    await alice.getByRole('button', { name: 'Record a voice message' }).click();
    await alice.getByRole('button', { name: 'Stop and send voice message' }).waitFor();
    await alice.waitForTimeout(2_000);
    await alice.getByRole('button', { name: 'Stop and send voice message' }).click();

    const audio = bob.locator('audio[aria-label="Voice message"]');
    await audio.waitFor({ timeout: 60_000 });
    const heard = await audio.evaluate(async (el: HTMLAudioElement) => {
      // The player knows the length before it is played (MediaRecorder's WebM has none in its header).
      const known = Date.now() + 10_000;
      while (!(Number.isFinite(el.duration) && el.duration > 0 && el.currentTime === 0) && Date.now() < known) await new Promise((r) => setTimeout(r, 50));
      const shown = el.duration;
      const bytes = new Uint8Array(await (await fetch(el.src)).arrayBuffer());
      const head = Array.from(bytes.subarray(0, 4));
      const text = new TextDecoder('latin1').decode(bytes.subarray(0, 4096));
      const decoded = await new OfflineAudioContext(1, 48_000, 48_000).decodeAudioData(bytes.slice().buffer);
      // Play it (muted) and wait, at most 10 s, until it has advanced.
      el.muted = true;
      await el.play();
      const until = Date.now() + 10_000;
      while (el.currentTime < 0.3 && !el.ended && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      el.pause();
      let peak = 0;
      for (const s of decoded.getChannelData(0)) peak = Math.max(peak, Math.abs(s));
      return { head, opus: text.includes('A_OPUS') || text.includes('OpusHead'), seconds: decoded.duration, shown, played: el.currentTime, peak, error: el.error?.code ?? 0 };
    });
    assert.ok(heard.opus, 'an Opus recording');
    assert.ok(
      (heard.head[0] === 0x1a && heard.head[1] === 0x45) || String.fromCharCode(...heard.head) === 'OggS',
      'in WebM or Ogg',
    );
    assert.ok(heard.seconds > 1 && heard.seconds < 10, `decodes to about 2 s of audio (got ${heard.seconds})`);
    assert.ok(Math.abs(heard.shown - heard.seconds) < 0.5, `the player shows the length before playing (${heard.shown} s)`);
    assert.ok(heard.peak > 0.01, 'not silence (the fake microphone beeps)');
    assert.equal(heard.error, 0);
    assert.ok(heard.played > 0, 'the player advanced');
    await screenshot(bob, 'composer-voice-note');
  });

  it('sends a file picked with the file input', async () => {
    const doc = pdf();
    const file = path.join(world.tmp, 'minutes.pdf');
    writeFileSync(file, doc);
    await alice.locator('input[type=file][aria-label="Choose files"]').setInputFiles(file);
    const received = fileBubble(bob, 'minutes.pdf');
    await received.waitFor({ timeout: 60_000 });
    assert.equal(await received.locator('.file-size').innerText(), `${Math.round(doc.length / 1024)} KB`);
    assert.equal(sha256(await fileBytes(received)), sha256(doc));
  });

  it('sends a file dropped on the conversation', async () => {
    const text = Buffer.from('Dropped notes\n'.repeat(50), 'utf8');
    const dropping = await alice.evaluate((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'dropped-notes.txt', { type: 'text/plain' }));
      const target = document.querySelector('section.conversation');
      if (!target) throw new Error('no conversation');
      target.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
      const accepted = !target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      return accepted;
    }, Array.from(text));
    assert.ok(dropping, 'the conversation accepts the drag (dragover default prevented)');
    const received = fileBubble(bob, 'dropped-notes.txt');
    await received.waitFor({ timeout: 60_000 });
    assert.equal(await received.locator('.file-size').innerText(), `${text.length} B`);
    assert.equal((await fileBytes(received)).toString('utf8'), text.toString('utf8'));
  });

  it('sends an image pasted into the message box', async () => {
    const image = await png(640, 360, 200);
    await alice.evaluate((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }));
      const box = document.querySelector('textarea[aria-label="Message"]');
      if (!box) throw new Error('no message box');
      box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, Array.from(image));
    const img = bob.locator('img[data-decrypted="true"][alt="pasted.jpg"]');
    await img.waitFor({ timeout: 60_000 });
    const size = await img.evaluate(async (el: HTMLImageElement) => {
      await el.decode();
      return [el.naturalWidth, el.naturalHeight];
    });
    assert.deepEqual(size, [640, 360]);
    // Nothing was typed into the box by the paste.
    assert.equal(await alice.getByRole('textbox', { name: 'Message' }).inputValue(), '');
    await screenshot(bob, 'composer-files');
  });

  it('sends a view-once photo that opens once', async () => {
    const file = path.join(world.tmp, 'secret.png');
    writeFileSync(file, await png(300, 200, 30));
    await alice.getByRole('checkbox', { name: 'Send as view once' }).check();
    await alice.locator('input[type=file][aria-label="Choose files"]').setInputFiles(file);
    await alice.getByText('① View-once message').waitFor({ timeout: 60_000 });
    assert.equal(await alice.getByRole('checkbox', { name: 'Send as view once' }).isChecked(), false, 'the toggle resets after sending');

    const open = bob.getByRole('button', { name: '① View once: tap to open' });
    await open.waitFor({ timeout: 60_000 });
    assert.equal(await bob.locator('img[alt="secret.jpg"]').count(), 0, 'not shown before it is opened');
    await open.click();
    const dialog = bob.getByRole('dialog', { name: 'View-once message' });
    const img = dialog.locator('img[data-decrypted="true"]');
    await img.waitFor({ timeout: 60_000 });
    assert.deepEqual(
      await img.evaluate(async (el: HTMLImageElement) => {
        await el.decode();
        return [el.naturalWidth, el.naturalHeight];
      }),
      [300, 200],
    );
    await screenshot(bob, 'composer-view-once-open');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await bob.getByText('① Opened').waitFor();
    assert.equal(await open.count(), 0, 'it cannot be opened again');

    // Still opened after a reload.
    await bob.reload();
    await bob.getByRole('heading', { name: 'Chats' }).waitFor();
    await openChatWith(bob, A.number);
    await bob.getByText('① Opened').waitFor();
    assert.equal(await bob.getByRole('button', { name: '① View once: tap to open' }).count(), 0);
  });
});
