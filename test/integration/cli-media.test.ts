// Media end to end through the `parley` binary against the real server (`parley serve`, loopback, temporary
// folders): a photo (resized), a video (transcoded, checked with ffprobe), a voice note (Opus) and a 200 MB
// document go from one account to another and arrive verified in the receiver's media folder; a flipped byte
// in a stored blob is refused; a send killed half-way resumes its upload; the server's blob folder holds no
// plaintext; a 1 GB file goes through send and receive with each process under 300 MB of RSS.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { cliOk, NUMBERS, runCli, startCli, startServer, tempDir, type CliResult, type CliServer } from '../support/cli.ts';

const run = promisify(execFile);
const { alice: A, bob: B, carol: C } = NUMBERS;
const MB = 1024 * 1024;

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Writes `bytes` of incompressible data (a random MiB, each copy with a different first 8 bytes). */
async function writeBigFile(file: string, bytes: number): Promise<void> {
  const block = randomBytes(MB);
  const out = createWriteStream(file);
  for (let written = 0, i = 0; written < bytes; i += 1) {
    const n = Math.min(MB, bytes - written);
    block.writeBigUInt64BE(BigInt(i), 0);
    if (!out.write(block.subarray(0, n))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    written += n;
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

async function ffprobe(file: string): Promise<{ streams: Array<Record<string, unknown>>; format: Record<string, unknown> }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file]);
  return JSON.parse(stdout) as { streams: Array<Record<string, unknown>>; format: Record<string, unknown> };
}

/** The highest RSS (bytes) of a process, sampled from /proc until it exits. */
function watchRss(pid: number): { peak: () => number; stop: () => void } {
  let peak = 0;
  const sample = (): void => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // exited
    }
  };
  const timer = setInterval(sample, 25);
  return { peak: () => peak, stop: () => clearInterval(timer) };
}

describe('parley media end to end', () => {
  const tmp = tempDir('parley-cli-media-');
  const files = path.join(tmp.dir, 'files');
  const profiles = { a: path.join(tmp.dir, 'alice'), b: path.join(tmp.dir, 'bob'), c: path.join(tmp.dir, 'carol') };
  let server: CliServer;
  const as = (profile: string, ...args: string[]): string[] => [...args, '--profile', profile, '--json'];
  /** The text lines with attachments `receive --until-empty` prints for `profile`. */
  const receiveFiles = async (profile: string): Promise<Array<Record<string, unknown>>> => {
    const r = await cliOk(as(profile, 'receive', '--until-empty'), { timeoutMs: 180_000 });
    return r.lines.filter((l) => l.type === 'text' && l.attachment !== undefined);
  };
  const attachmentOf = (line: Record<string, unknown> | undefined): Record<string, unknown> => {
    assert.ok(line, 'a message with an attachment arrived');
    return line.attachment as Record<string, unknown>;
  };
  /** The blob files the server keeps (its data folder's blob store). */
  const blobFiles = (): string[] =>
    readdirSync(path.join(server.dataDir, 'blobs'), { recursive: true })
      .map((name) => path.join(server.dataDir, 'blobs', String(name)))
      .filter((f) => statSync(f).isFile());

  before(async () => {
    mkdirSync(files, { recursive: true });
    server = await startServer(path.join(tmp.dir, 'server'));
    await cliOk(['register', A.number, '--server', server.url, '--code', A.code, '--profile', profiles.a, '--json']);
    await cliOk(['register', B.number, '--server', server.url, '--code', B.code, '--profile', profiles.b, '--json']);
    await cliOk(['register', C.number, '--server', server.url, '--code', C.code, '--profile', profiles.c, '--json']);
  });

  after(async () => {
    await server?.stop();
    tmp.remove();
  });

  it('sends a photo resized to 1,600 px with a thumbnail and caption; the receiver saves the verified file', async () => {
    const photo = path.join(files, 'holiday.jpg');
    await sharp({ create: { width: 4000, height: 3000, channels: 3, background: { r: 200, g: 120, b: 40 } } })
      .composite([{ input: Buffer.from('<svg width="4000" height="3000"><circle cx="2000" cy="1500" r="900" fill="blue"/></svg>') }])
      .jpeg({ quality: 95 })
      .withMetadata({ exif: { IFD0: { Copyright: 'secret-exif-marker' } } })
      .toFile(photo);
    const sent = await cliOk(as(profiles.a, 'send-file', B.number, photo, '--caption', 'the beach'));
    const out = attachmentOf(sent.lines.at(-1));
    assert.equal(out.contentType, 'image/jpeg');
    assert.equal(sent.lines.at(-1)?.status, 'sent');

    const [line] = await receiveFiles(profiles.b);
    assert.equal(line?.body, 'the beach');
    assert.equal(line?.from, A.number);
    const got = attachmentOf(line);
    assert.equal(got.state, 'saved');
    assert.equal(got.contentType, 'image/jpeg');
    assert.equal(got.thumbnail, true);
    const saved = got.path as string;
    assert.ok(saved.startsWith(path.join(profiles.b, 'media')), `saved in the profile's media folder: ${saved}`);
    assert.equal(await sha256File(saved), got.sha256);
    assert.equal(statSync(saved).size, got.size);
    const meta = await sharp(saved).metadata();
    assert.equal(Math.max(meta.width, meta.height), 1600);
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.exif, undefined, 'metadata stripped');
    assert.equal(got.width, meta.width);
    assert.equal(got.height, meta.height);
  });

  it('sends a video transcoded to H.264/AAC at 720p; ffprobe plays the received file', async () => {
    const video = path.join(files, 'clip.mp4');
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-shortest', '-y', video]);
    await cliOk(as(profiles.a, 'send-file', B.number, video));
    const got = attachmentOf((await receiveFiles(profiles.b))[0]);
    assert.equal(got.contentType, 'video/mp4');
    assert.equal(got.thumbnail, true);
    const probe = await ffprobe(got.path as string);
    const v = probe.streams.find((s) => s.codec_type === 'video');
    const a = probe.streams.find((s) => s.codec_type === 'audio');
    assert.equal(v?.codec_name, 'h264');
    assert.equal(a?.codec_name, 'aac');
    assert.equal(v?.height, 720);
    assert.equal(v?.width, 1280);
    assert.ok(Math.abs(Number(probe.format.duration) - 2) < 0.3, `duration ${String(probe.format.duration)}`);
    assert.ok(Math.abs((got.durationMs as number) - 2000) < 300);
    assert.equal(await sha256File(got.path as string), got.sha256);
  });

  it('sends a voice note as Opus', async () => {
    const wav = path.join(files, 'memo.wav');
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=300:sample_rate=48000', '-t', '3', '-ac', '2', '-y', wav]);
    await cliOk(as(profiles.a, 'send-file', B.number, wav, '--voice-note'));
    const got = attachmentOf((await receiveFiles(profiles.b))[0]);
    assert.equal(got.voiceNote, true);
    assert.equal(got.contentType, 'audio/ogg');
    const probe = await ffprobe(got.path as string);
    const a = probe.streams.find((s) => s.codec_type === 'audio');
    assert.equal(a?.codec_name, 'opus');
    assert.equal(a?.channels, 1);
    assert.ok(Math.abs(Number(probe.format.duration) - 3) < 0.3);
  });

  it('sends a 200 MB document byte for byte, and to a group', async () => {
    const doc = path.join(files, 'archive.bin');
    await writeBigFile(doc, 200 * MB);
    const want = await sha256File(doc);
    const sent = await cliOk(as(profiles.a, 'send-file', B.number, doc), { timeoutMs: 180_000 });
    assert.equal(attachmentOf(sent.lines.at(-1)).contentType, 'application/octet-stream');
    const got = attachmentOf((await receiveFiles(profiles.b))[0]);
    assert.equal(got.fileName, 'archive.bin');
    assert.equal(got.size, 200 * MB);
    assert.equal(got.sha256, want);
    assert.equal(await sha256File(got.path as string), want);

    // The same file to a group: the pointer goes out once, encrypted with the sender key.
    const created = await cliOk(as(profiles.a, 'group', 'create', 'files', B.number, C.number));
    const groupId = created.lines.at(-1)?.groupId as string;
    const small = path.join(files, 'notes.txt');
    writeFileSync(small, 'group notes\n'.repeat(1000));
    await cliOk(as(profiles.a, 'send-file', '--group', groupId, small, '--caption', 'for all'));
    for (const p of [profiles.b, profiles.c]) {
      const line = (await receiveFiles(p)).find((l) => l.groupId === groupId);
      const a = attachmentOf(line);
      assert.equal(line?.body, 'for all');
      assert.equal(readFileSync(a.path as string, 'utf8'), 'group notes\n'.repeat(1000));
    }
  });

  it('refuses a blob with a flipped byte, saves nothing, and says so again on parley download', async () => {
    const doc = path.join(files, 'contract.txt');
    writeFileSync(doc, 'PARLEY-PLAINTEXT-MARKER '.repeat(4096));
    const sent = await cliOk(as(profiles.a, 'send-file', B.number, doc));
    const blobId = attachmentOf(sent.lines.at(-1)).blobId as string;
    const blob = blobFiles().find((f) => path.basename(f).startsWith(blobId));
    assert.ok(blob, 'the blob is stored under its id');
    const fh = await open(blob, 'r+');
    try {
      const one = Buffer.alloc(1);
      await fh.read(one, 0, 1, 5000);
      one[0] = (one[0] as number) ^ 0x01;
      await fh.write(one, 0, 1, 5000);
    } finally {
      await fh.close();
    }
    const before = readdirSync(path.join(profiles.b, 'media'));
    const line = (await receiveFiles(profiles.b))[0];
    const got = attachmentOf(line);
    assert.equal(got.state, 'failed');
    assert.equal(got.error, 'CLIENT_BAD_MEDIA');
    assert.equal(got.path, null);
    assert.deepEqual(readdirSync(path.join(profiles.b, 'media')).filter((n) => !n.startsWith('.')), before.filter((n) => !n.startsWith('.')));
    const again = await runCli(as(profiles.b, 'download', line?.id as string));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /CLIENT_BAD_MEDIA/);
  });

  it('leaves a view-once file on the server until parley view writes it out, then erases it and tells the sender', async () => {
    const doc = path.join(files, 'once.bin');
    const bytes = randomBytes(300_000);
    writeFileSync(doc, bytes);
    await cliOk(as(profiles.a, 'send-file', B.number, doc, '--view-once'));
    const mediaOfB = (): string[] => (existsSync(path.join(profiles.b, 'media')) ? readdirSync(path.join(profiles.b, 'media')).filter((n) => !n.startsWith('.')) : []);
    const before = mediaOfB();
    const line = (await receiveFiles(profiles.b))[0];
    assert.equal(line?.viewOnce, true);
    const got = attachmentOf(line);
    assert.equal(got.path, null, 'not downloaded by receive');
    assert.deepEqual(mediaOfB(), before);
    const id = line?.id as string;

    // A PATH that exists is refused, and the message stays unviewed.
    const taken = path.join(tmp.dir, 'taken.bin');
    writeFileSync(taken, 'mine');
    const refused = await runCli(as(profiles.b, 'view', id, '--out', taken));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /EEXIST|exists/);
    assert.equal(readFileSync(taken, 'utf8'), 'mine');

    const target = path.join(tmp.dir, 'seen.bin');
    const viewed = await cliOk(as(profiles.b, 'view', id, '--out', target));
    assert.equal(viewed.lines.at(-1)?.viewed, true);
    assert.deepEqual(readFileSync(target), bytes);
    assert.deepEqual(mediaOfB(), before, 'nothing of it kept in the profile');

    const again = await runCli(as(profiles.b, 'view', id, '--out', path.join(tmp.dir, 'again.bin')));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /viewed already/);
    assert.equal(existsSync(path.join(tmp.dir, 'again.bin')), false);

    const receipts = (await cliOk(as(profiles.a, 'receive', '--until-empty'), { timeoutMs: 180_000 })).lines.filter((l) => l.type === 'receipt' && l.receipt === 'viewed');
    assert.equal(receipts.length, 1, 'the sender learns it was viewed');
  });

  it('keeps no plaintext in the server\'s blob folder', async () => {
    const blobs = blobFiles();
    assert.ok(blobs.length >= 5);
    for (const f of blobs) {
      const bytes = readFileSync(f);
      assert.notDeepEqual([...bytes.subarray(0, 3)], [0xff, 0xd8, 0xff], `${f} starts like a JPEG`);
      assert.notEqual(bytes.subarray(4, 8).toString('latin1'), 'ftyp', `${f} is an MP4`);
      assert.notEqual(bytes.subarray(0, 4).toString('latin1'), 'OggS', `${f} is an Ogg file`);
      for (const text of ['PARLEY-PLAINTEXT-MARKER', 'group notes', 'the beach', 'archive.bin', 'image/jpeg']) {
        assert.equal(bytes.includes(text), false, `${f} contains "${text}"`);
      }
    }
  });

  it('resumes an upload killed half-way where it stopped', async () => {
    const doc = path.join(files, 'interrupted.bin');
    await writeBigFile(doc, 150 * MB);
    const uploads = path.join(server.dataDir, 'blobs');
    const partials = (): Array<{ file: string; size: number }> =>
      readdirSync(uploads, { recursive: true })
        .map(String)
        .filter((n) => n.includes('upload'))
        .map((n) => path.join(uploads, n))
        .filter((f) => existsSync(f) && statSync(f).isFile())
        .map((file) => ({ file, size: statSync(file).size }));
    const first = startCli(as(profiles.a, 'send-file', B.number, doc));
    // Kill the sender once the server holds part of the file (but not all of it).
    const deadline = Date.now() + 60_000;
    let partial: { file: string; size: number } | undefined;
    while (Date.now() < deadline) {
      partial = partials().find((p) => p.size >= 20 * MB);
      if (partial || first.child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    first.child.kill('SIGKILL');
    await first.done();
    assert.ok(partial, `a partial upload appeared on the server (sender said: ${first.stderr()})`);
    assert.ok(partial.size < 150 * MB);

    const second: CliResult = await cliOk(as(profiles.a, 'send-file', B.number, doc), { timeoutMs: 120_000 });
    assert.equal(second.lines.at(-1)?.status, 'sent');
    // The upload the first run started was continued and completed (a fresh one would have left it behind).
    assert.equal(existsSync(partial.file), false, 'the interrupted upload was continued, not abandoned');
    assert.deepEqual(partials(), []);
    const got = attachmentOf((await receiveFiles(profiles.b))[0]);
    assert.equal(got.sha256, await sha256File(doc));
    assert.equal(await sha256File(got.path as string), got.sha256);
  });

  it('sends and receives a 1 GB file with each process under 300 MB of RSS', async () => {
    const doc = path.join(files, 'big.bin');
    await writeBigFile(doc, 1024 * MB);
    const want = await sha256File(doc);
    const send = startCli(as(profiles.a, 'send-file', B.number, doc));
    const sendRss = watchRss(send.child.pid as number);
    const sent = await send.done(300_000);
    sendRss.stop();
    assert.equal(sent.code, 0, sent.stderr);
    const recv = startCli(as(profiles.b, 'receive', '--until-empty'));
    const recvRss = watchRss(recv.child.pid as number);
    const received = await recv.done(300_000);
    recvRss.stop();
    assert.equal(received.code, 0, received.stderr);
    const got = attachmentOf(received.lines.find((l) => l.attachment !== undefined));
    assert.equal(got.sha256, want);
    assert.equal(await sha256File(got.path as string), want);
    assert.ok(sendRss.peak() > 0 && recvRss.peak() > 0);
    assert.ok(sendRss.peak() < 300 * MB, `send-file peaked at ${(sendRss.peak() / MB).toFixed(0)} MB`);
    assert.ok(recvRss.peak() < 300 * MB, `receive peaked at ${(recvRss.peak() / MB).toFixed(0)} MB`);
    process.stderr.write(`# 1 GB: send-file peak RSS ${(sendRss.peak() / MB).toFixed(0)} MB, receive peak RSS ${(recvRss.peak() / MB).toFixed(0)} MB\n`);
  });
});
