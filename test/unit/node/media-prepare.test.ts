// Preparing files to send (src/node/media/prepare.ts) with the real sharp and Debian's ffmpeg. Fixtures are
// generated into a temporary folder: small, short videos so the file stays fast.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { MAX_THUMBNAIL_BYTES, type AttachmentInput } from '../../../src/client/media/types.ts';
import { prepareFile, videoTargetSize, looksLikeAudioOrVideo } from '../../../src/node/media/prepare.ts';
import { probeAv, probeMedia } from '../../../src/node/media/probe.ts';

let root: string;
let fixtures: string;

function ffmpeg(...args: string[]): void {
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** Checks a thumbnail: present, within the byte limit, a JPEG of at most 32 px. */
async function assertThumbnail(input: AttachmentInput): Promise<void> {
  assert.ok(input.thumbnail !== undefined, 'a thumbnail');
  assert.ok(input.thumbnail.bytes.length <= MAX_THUMBNAIL_BYTES);
  const meta = await sharp(input.thumbnail.bytes).metadata();
  assert.equal(meta.format, 'jpeg');
  assert.ok(Math.max(meta.width, meta.height) <= 32 && Math.min(meta.width, meta.height) >= 1);
}

const fixture = (name: string): string => path.join(fixtures, name);
const work = (name: string): string => path.join(root, `work-${name}`);

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'parley-media-prepare-'));
  fixtures = path.join(root, 'fixtures');
  execFileSync('mkdir', ['-p', fixtures]);
  // A 4000x3000 photo turned by EXIF orientation 6 (displayed 3000x4000), with camera and GPS tags.
  const noise = await sharp(randomBytes(400 * 300 * 3), { raw: { width: 400, height: 300, channels: 3 } })
    .resize(4000, 3000, { kernel: 'nearest' })
    .raw()
    .toBuffer();
  await sharp(noise, { raw: { width: 4000, height: 3000, channels: 3 } })
    .jpeg({ quality: 90 })
    .withExif({ IFD0: { Make: 'ParleyCam', Model: 'Test' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1' } })
    .withMetadata({ orientation: 6 })
    .toFile(fixture('photo.jpg'));
  await sharp({ create: { width: 300, height: 200, channels: 4, background: { r: 0, g: 128, b: 255, alpha: 0.5 } } })
    .png()
    .toFile(fixture('alpha.png'));
  await sharp({ create: { width: 2000, height: 500, channels: 3, background: 'green' } }).webp().toFile(fixture('wide.webp'));
  await sharp({ create: { width: 120, height: 80, channels: 3, background: 'blue' } }).jpeg().toFile(fixture('small.jpg'));
  // Video: 1920x1080 at 60 fps with sound, and 320x240 without.
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=60', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '2.5',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-metadata', 'location=+48.85+002.35/',
    fixture('clip.mp4'));
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    fixture('silent.mp4'));
  ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=300:sample_rate=48000', '-ac', '2', '-t', '2', fixture('voice.wav'));
  await writeFile(fixture('corrupt.mp4'), randomBytes(64 * 1024));
  await writeFile(fixture('notes.pdf'), '%PDF-1.4\n% a small document\n');
  await writeFile(fixture('data.bin'), randomBytes(5000));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('prepareFile: images', () => {
  it('applies the EXIF rotation, fits 1600 px, strips metadata, JPEG; with a thumbnail', async () => {
    const input = (await sharp(fixture('photo.jpg')).metadata());
    assert.ok(input.exif !== undefined && input.orientation === 6, 'the fixture has EXIF with orientation 6');
    const prepared = await prepareFile(fixture('photo.jpg'), { workDir: work('photo') });
    assert.equal(prepared.converted, true);
    assert.equal(prepared.input.type, 'image');
    assert.equal(prepared.input.contentType, 'image/jpeg');
    assert.equal(prepared.input.fileName, 'photo.jpg');
    assert.equal(prepared.input.width, 1200);
    assert.equal(prepared.input.height, 1600);
    const out = await sharp(prepared.path).metadata();
    assert.equal(out.format, 'jpeg');
    assert.equal(out.width, 1200);
    assert.equal(out.height, 1600);
    assert.equal(out.exif, undefined);
    assert.equal(out.orientation, undefined);
    assert.equal(out.icc, undefined);
    const sent = await collect(prepared.input.source.open());
    assert.equal(sent.length, prepared.input.source.size);
    assert.ok(!sent.includes('ParleyCam'));
    await assertThumbnail(prepared.input);
    // The thumbnail is upright too: portrait.
    const thumb = await sharp(prepared.input.thumbnail?.bytes).metadata();
    assert.ok(thumb.height > thumb.width);
    await prepared.cleanup();
    await assert.rejects(stat(prepared.path));
    await stat(fixture('photo.jpg'));
  });

  it('makes WebP of sources with transparency and of WebP sources; never enlarges', async () => {
    const alpha = await prepareFile(fixture('alpha.png'), { workDir: work('alpha') });
    assert.equal(alpha.input.contentType, 'image/webp');
    assert.equal(alpha.input.fileName, 'alpha.webp');
    assert.deepEqual([alpha.input.width, alpha.input.height], [300, 200]);
    const meta = await sharp(alpha.path).metadata();
    assert.equal(meta.format, 'webp');
    assert.equal(meta.hasAlpha, true);
    await assertThumbnail(alpha.input);

    const wide = await prepareFile(fixture('wide.webp'), { workDir: work('wide') });
    assert.equal(wide.input.contentType, 'image/webp');
    assert.deepEqual([wide.input.width, wide.input.height], [1600, 400]);

    const small = await prepareFile(fixture('small.jpg'), { workDir: work('small') });
    assert.deepEqual([small.input.width, small.input.height], [120, 80]);
  });

  it('sends the original bytes with original: true, still measured (rotation applied) and with a thumbnail', async () => {
    const prepared = await prepareFile(fixture('photo.jpg'), { workDir: work('original'), original: true });
    assert.equal(prepared.converted, false);
    assert.equal(prepared.path, fixture('photo.jpg'));
    assert.deepEqual(await collect(prepared.input.source.open()), await readFile(fixture('photo.jpg')));
    assert.deepEqual([prepared.input.width, prepared.input.height], [3000, 4000]);
    assert.equal(prepared.input.contentType, 'image/jpeg');
    await assertThumbnail(prepared.input);
    await prepared.cleanup();
    await stat(fixture('photo.jpg')); // never the user's file
    assert.deepEqual(await readdir(work('original')), []);
  });

  it('reuses a complete output instead of converting again', async () => {
    const first = await prepareFile(fixture('photo.jpg'), { workDir: work('reuse') });
    const before = await stat(first.path);
    const second = await prepareFile(fixture('photo.jpg'), { workDir: work('reuse') });
    assert.equal(second.path, first.path);
    assert.equal((await stat(second.path)).mtimeMs, before.mtimeMs);
    assert.equal((await stat(second.path)).ino, before.ino);
    assert.equal(second.input.source.resumeKey, first.input.source.resumeKey);
    // No leftovers of temporary names.
    assert.deepEqual(await readdir(work('reuse')), [path.basename(first.path)]);
  });
});

describe('prepareFile: video', () => {
  it('converts to H.264 + AAC in MP4, at most 1280x720 and 30 fps, metadata stripped; with a thumbnail', async () => {
    const prepared = await prepareFile(fixture('clip.mp4'), { workDir: work('video') });
    assert.equal(prepared.converted, true);
    assert.equal(prepared.input.type, 'video');
    assert.equal(prepared.input.contentType, 'video/mp4');
    assert.deepEqual([prepared.input.width, prepared.input.height], [1280, 720]);
    assert.ok(Math.abs((prepared.input.durationMs ?? 0) - 2500) < 150, `duration ${prepared.input.durationMs}`);
    const out = await probeAv(prepared.path);
    assert.ok(out !== undefined);
    assert.equal(out.videoCodec, 'h264');
    assert.equal(out.audioCodec, 'aac');
    assert.ok((out.height ?? 0) <= 720 && (out.height ?? 1) % 2 === 0 && (out.width ?? 1) % 2 === 0);
    assert.ok((out.frameRate ?? 99) <= 30.01, `fps ${out.frameRate}`);
    const json = execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', prepared.path], { encoding: 'utf8' });
    assert.ok(!json.includes('location'), 'the location tag is stripped');
    // +faststart: the moov box comes before mdat.
    const head = (await readFile(prepared.path)).subarray(0, 64 * 1024).toString('latin1');
    assert.ok(head.indexOf('moov') >= 0 && head.indexOf('moov') < head.indexOf('mdat'));
    await assertThumbnail(prepared.input);

    // Preparing it again reuses the output (ffmpeg does not run: the file is the same).
    const before = await stat(prepared.path);
    const again = await prepareFile(fixture('clip.mp4'), { workDir: work('video') });
    assert.equal(again.path, prepared.path);
    assert.equal((await stat(again.path)).mtimeMs, before.mtimeMs);
    await again.cleanup();
    assert.deepEqual(await readdir(work('video')), []);
  });

  it('converts a video without sound, never upscaling', async () => {
    const prepared = await prepareFile(fixture('silent.mp4'), { workDir: work('silent') });
    assert.deepEqual([prepared.input.width, prepared.input.height], [320, 240]);
    const out = await probeAv(prepared.path);
    assert.equal(out?.videoCodec, 'h264');
    assert.equal(out?.audioCodec, undefined);
    await assertThumbnail(prepared.input);
  });

  it('sends the original video as it is with original: true', async () => {
    const prepared = await prepareFile(fixture('silent.mp4'), { workDir: work('video-original'), original: true });
    assert.equal(prepared.converted, false);
    assert.equal(prepared.input.contentType, 'video/mp4');
    assert.deepEqual(await collect(prepared.input.source.open()), await readFile(fixture('silent.mp4')));
    assert.deepEqual([prepared.input.width, prepared.input.height], [320, 240]);
    assert.ok(Math.abs((prepared.input.durationMs ?? 0) - 1000) < 100);
    await assertThumbnail(prepared.input);
  });

  it('sends a corrupt .mp4 (random bytes) as an application/octet-stream document', async () => {
    const prepared = await prepareFile(fixture('corrupt.mp4'), { workDir: work('corrupt') });
    assert.equal(prepared.converted, false);
    assert.equal(prepared.input.type, 'document');
    assert.equal(prepared.input.contentType, 'application/octet-stream');
    assert.equal(prepared.input.thumbnail, undefined);
    assert.deepEqual(await collect(prepared.input.source.open()), await readFile(fixture('corrupt.mp4')));
  });

  it('kills ffmpeg and leaves no partial output when aborted', async () => {
    const controller = new AbortController();
    const reason = new ClientError(ClientErrorCode.Aborted, 'stop');
    const pending = prepareFile(fixture('clip.mp4'), { workDir: work('abort'), signal: controller.signal });
    // Abort once the conversion has started (its temporary output exists), or at the latest after it.
    const started = (async () => {
      for (let i = 0; i < 2000; i++) {
        const names = await readdir(work('abort')).catch(() => []);
        if (names.some((n) => n.endsWith('.part'))) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await started;
    controller.abort(reason);
    await assert.rejects(pending, (err: unknown) => err === reason);
    assert.deepEqual(await readdir(work('abort')), []);
  });
});

describe('prepareFile: audio and documents', () => {
  it('makes a voice note: Opus in Ogg, mono', async () => {
    const prepared = await prepareFile(fixture('voice.wav'), { workDir: work('voice'), voiceNote: true });
    assert.equal(prepared.input.type, 'audio');
    assert.equal(prepared.input.contentType, 'audio/ogg');
    assert.equal(prepared.input.voiceNote, true);
    assert.equal(prepared.input.fileName, 'voice.ogg');
    assert.ok(Math.abs((prepared.input.durationMs ?? 0) - 2000) < 100, `duration ${prepared.input.durationMs}`);
    const out = await probeAv(prepared.path);
    assert.equal(out?.audioCodec, 'opus');
    assert.equal(out?.audioChannels, 1);
    assert.ok(out?.formatName.split(',').includes('ogg'));
  });

  it('sends other audio as it is, with its duration', async () => {
    const prepared = await prepareFile(fixture('voice.wav'), { workDir: work('audio') });
    assert.equal(prepared.converted, false);
    assert.equal(prepared.input.type, 'audio');
    assert.equal(prepared.input.contentType, 'audio/wav');
    assert.ok(Math.abs((prepared.input.durationMs ?? 0) - 2000) < 50);
  });

  it('refuses a voice note from a file without sound', async () => {
    await assert.rejects(prepareFile(fixture('silent.mp4'), { workDir: work('no-voice'), voiceNote: true }), (err: unknown) =>
      ClientError.is(err, ClientErrorCode.BadMediaInput),
    );
    await assert.rejects(prepareFile(fixture('notes.pdf'), { workDir: work('no-voice'), voiceNote: true }), (err: unknown) =>
      ClientError.is(err, ClientErrorCode.BadMediaInput),
    );
  });

  it('sends documents as they are, typed by extension, else application/octet-stream', async () => {
    const pdf = await prepareFile(fixture('notes.pdf'), { workDir: work('docs') });
    assert.equal(pdf.input.type, 'document');
    assert.equal(pdf.input.contentType, 'application/pdf');
    assert.equal(pdf.input.fileName, 'notes.pdf');
    const bin = await prepareFile(fixture('data.bin'), { workDir: work('docs') });
    assert.equal(bin.input.contentType, 'application/octet-stream');
    const typed = await prepareFile(fixture('data.bin'), { workDir: work('docs'), contentType: 'application/x-custom', fileName: 'x.custom' });
    assert.equal(typed.input.contentType, 'application/x-custom');
    assert.equal(typed.input.fileName, 'x.custom');
    const asDocument = await prepareFile(fixture('photo.jpg'), { workDir: work('docs'), asDocument: true });
    assert.equal(asDocument.input.type, 'document');
    assert.equal(asDocument.input.contentType, 'image/jpeg');
    assert.equal(asDocument.path, fixture('photo.jpg'));
  });

  it('fails with CLIENT_BAD_MEDIA_INPUT for a missing file or a folder', async () => {
    for (const file of [fixture('missing.jpg'), fixtures]) {
      await assert.rejects(prepareFile(file, { workDir: work('missing') }), (err: unknown) => ClientError.is(err, ClientErrorCode.BadMediaInput));
    }
  });
});

describe('probing and sizing', () => {
  it('probes images with sharp and videos with ffprobe', async () => {
    assert.deepEqual(await probeMedia(fixture('photo.jpg')), { kind: 'image', format: 'jpeg', width: 3000, height: 4000, animated: false, hasAlpha: false });
    const video = await probeMedia(fixture('clip.mp4'));
    assert.equal(video.kind, 'video');
    assert.deepEqual([video.width, video.height, video.videoCodec, video.audioCodec], [1920, 1080, 'h264', 'aac']);
    assert.ok(video.formatName.includes('mp4'));
    await assert.rejects(probeMedia(fixture('data.bin')), (err: unknown) => ClientError.is(err, ClientErrorCode.BadMediaInput));
  });

  it('fits videos in 1280x720 either way round, with even sides, never larger', () => {
    assert.deepEqual(videoTargetSize(1920, 1080), { width: 1280, height: 720 });
    assert.deepEqual(videoTargetSize(1080, 1920), { width: 720, height: 1280 });
    assert.deepEqual(videoTargetSize(640, 480), { width: 640, height: 480 });
    assert.deepEqual(videoTargetSize(641, 481), { width: 640, height: 480 });
    assert.deepEqual(videoTargetSize(3000, 1000), { width: 1280, height: 426 });
    assert.deepEqual(videoTargetSize(1, 1), { width: 2, height: 2 });
  });

  it('sniffs audio and video containers by their first bytes', () => {
    const at = (offset: number, s: string): Uint8Array => {
      const b = new Uint8Array(200);
      b.set(Buffer.from(s, 'latin1'), offset);
      return b;
    };
    assert.ok(looksLikeAudioOrVideo(at(4, 'ftypisom')));
    assert.ok(looksLikeAudioOrVideo(at(0, 'OggS')));
    assert.ok(looksLikeAudioOrVideo(at(0, '\x1a\x45\xdf\xa3')));
    assert.ok(looksLikeAudioOrVideo(at(0, 'RIFF\0\0\0\0WAVE')));
    assert.ok(!looksLikeAudioOrVideo(at(0, '%PDF-1.4')));
    assert.ok(!looksLikeAudioOrVideo(at(0, 'RIFF\0\0\0\0WEBP')));
    assert.ok(!looksLikeAudioOrVideo(new Uint8Array(0)));
  });
});
