// The media folder (FileMediaFiles) and file sources of src/node/media/files.ts, on a real temporary folder.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { FileMediaFiles, fileSource, READ_CHUNK_BYTES, sanitizeFileName } from '../../../src/node/media/files.ts';

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) {
    assert.ok(chunk instanceof Uint8Array);
    parts.push(Buffer.from(chunk));
  }
  return Buffer.concat(parts);
}

let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'parley-media-files-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('fileSource', () => {
  it('streams the exact bytes in chunks of at most 64 KiB, as often as asked', async () => {
    const file = path.join(root, 'source.bin');
    const bytes = randomBytes(200_000 + 17);
    await writeFile(file, bytes);
    const source = await fileSource(file);
    assert.equal(source.size, bytes.length);
    let chunks = 0;
    for await (const chunk of source.open()) {
      assert.ok(chunk.length <= READ_CHUNK_BYTES);
      chunks++;
    }
    assert.ok(chunks >= 4);
    assert.deepEqual(await collect(source.open()), bytes);
    assert.deepEqual(await collect(source.open()), bytes);
  });

  it('has a resume key that is stable for the same file and changes when the file changes', async () => {
    const file = path.join(root, 'resume.bin');
    await writeFile(file, 'first');
    const a = await fileSource(file);
    const b = await fileSource(file);
    assert.match(a.resumeKey, /^[0-9a-f]{64}$/);
    assert.equal(a.resumeKey, b.resumeKey);
    await writeFile(file, 'second, longer');
    const c = await fileSource(file);
    assert.notEqual(c.resumeKey, a.resumeKey);
    // Same size, other modification time.
    await writeFile(file, 'second, LONGER');
    await utimes(file, new Date(2_000_000_000_000), new Date(2_000_000_000_000));
    const d = await fileSource(file);
    assert.notEqual(d.resumeKey, c.resumeKey);
    assert.equal((await fileSource(file, { resumeKey: 'mine' })).resumeKey, 'mine');
  });

  it('fails with CLIENT_BAD_MEDIA_INPUT for a missing file, a folder, or a file that shrank', async () => {
    const isBadInput = (err: unknown): boolean => ClientError.is(err, ClientErrorCode.BadMediaInput);
    await assert.rejects(fileSource(path.join(root, 'nope')), isBadInput);
    await assert.rejects(fileSource(root), isBadInput);
    const file = path.join(root, 'shrinks.bin');
    await writeFile(file, randomBytes(1000));
    const source = await fileSource(file);
    await writeFile(file, randomBytes(10));
    await assert.rejects(collect(source.open()), isBadInput);
  });

  it('reads an empty file as no chunks', async () => {
    const file = path.join(root, 'empty.bin');
    await writeFile(file, '');
    const source = await fileSource(file);
    assert.equal(source.size, 0);
    assert.equal((await collect(source.open())).length, 0);
  });
});

describe('sanitizeFileName', () => {
  it('keeps ordinary names and extensions', () => {
    assert.equal(sanitizeFileName('Holiday photo.jpg'), 'Holiday photo.jpg');
    assert.equal(sanitizeFileName('Grüße 🎉.pdf'), 'Grüße 🎉.pdf');
  });

  it('strips directories, control characters, reserved characters and leading dots', () => {
    assert.equal(sanitizeFileName('../../etc/passwd'), 'passwd');
    assert.equal(sanitizeFileName('..\\..\\windows\\system.ini'), 'system.ini');
    assert.equal(sanitizeFileName('.bashrc'), 'bashrc');
    assert.equal(sanitizeFileName('a\u0000b\nc\u202e.txt'), 'a_b_c_.txt');
    assert.equal(sanitizeFileName('what?<>.txt'), 'what___.txt');
    assert.equal(sanitizeFileName('CON.txt'), '_CON.txt');
  });

  it('names empty and dot-only names "file", with the extension of the content type', () => {
    assert.equal(sanitizeFileName('', 'image/jpeg'), 'file.jpg');
    assert.equal(sanitizeFileName('..', 'application/pdf'), 'file.pdf');
    assert.equal(sanitizeFileName('/', 'x/unknown'), 'file');
    assert.equal(sanitizeFileName('scan', 'application/pdf'), 'scan.pdf');
  });

  it('cuts long names to at most 200 bytes, keeping the extension and whole characters', () => {
    const name = sanitizeFileName(`${'é'.repeat(300)}.jpeg`);
    assert.ok(Buffer.byteLength(name) <= 200);
    assert.ok(name.endsWith('é.jpeg'));
  });
});

describe('FileMediaFiles', () => {
  it('stages appended chunks, counts them, reads them back and removes them', async () => {
    const dir = path.join(root, 'staging-media');
    const files = new FileMediaFiles(dir);
    const staged = await files.staging('blob_1-A');
    assert.equal(await staged.size(), 0);
    const chunks = [randomBytes(100), randomBytes(5 * 1024 * 1024), randomBytes(1)];
    for (const chunk of chunks) await staged.append(chunk);
    assert.equal(await staged.size(), 100 + 5 * 1024 * 1024 + 1);
    assert.deepEqual(await collect(staged.read()), Buffer.concat(chunks));
    // Appending after a read reopens the file; a second handle on the same blob sees the same bytes.
    await staged.append(Buffer.from('tail'));
    const again = await files.staging('blob_1-A');
    assert.equal(await again.size(), 100 + 5 * 1024 * 1024 + 1 + 4);
    assert.deepEqual(await readdir(path.join(dir, '.staging')), ['blob_1-A.enc']);
    assert.equal((await stat(path.join(dir, '.staging', 'blob_1-A.enc'))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await staged.remove();
    await again.remove();
    assert.deepEqual(await readdir(path.join(dir, '.staging')), []);
    assert.equal(await staged.size(), 0);
  });

  it('refuses blob ids that are not a safe name', async () => {
    const files = new FileMediaFiles(path.join(root, 'bad-ids'));
    for (const id of ['', '../x', 'a/b', 'a.b', 'x'.repeat(129)]) {
      await assert.rejects(files.staging(id), (err: unknown) => ClientError.is(err, ClientErrorCode.InvalidArgument));
    }
  });

  it('commits outputs under sanitised unique names inside the folder, leaving nothing in .tmp', async () => {
    const dir = path.join(root, 'outputs');
    const files = new FileMediaFiles(dir);
    const save = async (name: string, contentType: string, bytes: Uint8Array): Promise<string> => {
      const writer = await files.output(name, contentType);
      await writer.write(bytes.subarray(0, 3));
      await writer.write(bytes.subarray(3));
      return writer.commit();
    };
    const one = randomBytes(1000);
    const first = await save('photo.jpg', 'image/jpeg', one);
    const second = await save('photo.jpg', 'image/jpeg', randomBytes(10));
    const third = await save('photo.jpg', 'image/jpeg', randomBytes(10));
    assert.equal(first, path.join(dir, 'photo.jpg'));
    assert.equal(second, path.join(dir, 'photo (2).jpg'));
    assert.equal(third, path.join(dir, 'photo (3).jpg'));
    assert.deepEqual(await readFile(first), one);
    assert.deepEqual(await collect(files.read(first)), one);
    assert.equal((await stat(first)).mode & 0o777, 0o600);

    const evil = await save('../../etc/passwd', 'text/plain', Buffer.from('x'));
    assert.equal(evil, path.join(dir, 'passwd.txt')); // no extension: the content type's
    const hidden = await save('.hidden', 'text/plain', Buffer.from('x'));
    assert.equal(path.dirname(hidden), dir);
    assert.ok(!path.basename(hidden).startsWith('.'));
    assert.deepEqual(await readdir(path.join(dir, '.tmp')), []);

    await files.remove(second);
    await files.remove(second); // gone already: no error
    await assert.rejects(stat(second));
  });

  it('discards aborted outputs and refuses to use a writer twice', async () => {
    const dir = path.join(root, 'aborts');
    const files = new FileMediaFiles(dir);
    const writer = await files.output('video.mp4', 'video/mp4');
    await writer.write(randomBytes(100));
    assert.equal((await readdir(path.join(dir, '.tmp'))).length, 1);
    await writer.abort();
    await writer.abort();
    assert.deepEqual(await readdir(path.join(dir, '.tmp')), []);
    assert.deepEqual((await readdir(dir)).sort(), ['.staging', '.tmp']);
    await assert.rejects(writer.write(randomBytes(1)), (err: unknown) => ClientError.is(err, ClientErrorCode.InvalidArgument));
    await assert.rejects(writer.commit(), (err: unknown) => ClientError.is(err, ClientErrorCode.InvalidArgument));

    const done = await files.output('a.txt', 'text/plain');
    await done.commit();
    await assert.rejects(done.commit(), (err: unknown) => ClientError.is(err, ClientErrorCode.InvalidArgument));
  });

  it('sweeps what interrupted writes left in .tmp', async () => {
    const dir = path.join(root, 'sweep');
    const files = new FileMediaFiles(dir);
    const writer = await files.output('x.bin', '');
    await writer.write(randomBytes(10));
    await new FileMediaFiles(dir).sweepTemporary();
    assert.deepEqual(await readdir(path.join(dir, '.tmp')), []);
    await new FileMediaFiles(path.join(root, 'never-created')).sweepTemporary();
  });

  it('reads and removes only files directly in its folder', async () => {
    const files = new FileMediaFiles(path.join(root, 'confined'));
    const outside = path.join(root, 'outside.txt');
    await writeFile(outside, 'secret');
    const isInvalid = (err: unknown): boolean => ClientError.is(err, ClientErrorCode.InvalidArgument);
    await assert.rejects(collect(files.read(outside)), isInvalid);
    await assert.rejects(files.remove(outside), isInvalid);
    await assert.rejects(files.remove(path.join(root, 'confined', '.staging', 'x.enc')), isInvalid);
    await assert.rejects(files.remove(path.join(root, 'confined', 'sub', '..', '..', 'outside.txt')), isInvalid);
    assert.equal(await readFile(outside, 'utf8'), 'secret');
  });
});
