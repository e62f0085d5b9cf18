// The fast path of media transfers in Node: SHA-256 on a worker thread (src/node/media/hash-worker.ts), and a
// verified download decrypted over its staged bytes (FileMediaFiles' in-place files, src/client/media/download.ts).
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BlobHttp } from '../../../src/client/media/blob-http.ts';
import { encryptMedia, type EncryptedMediaInfo } from '../../../src/client/media/crypto.ts';
import { downloadAttachment } from '../../../src/client/media/download.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import type { MediaHashing } from '../../../src/client/media/types.ts';
import type { AttachmentRecord } from '../../../src/client/store/types.ts';
import type { FetchLike } from '../../../src/client/transport/http.ts';
import { NodeCryptoProvider } from '../../../src/node/crypto-provider.ts';
import { FileMediaFiles } from '../../../src/node/media/files.ts';
import { workerHashing } from '../../../src/node/media/hash-worker.ts';

const crypto = new NodeCryptoProvider();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** SHA-256s on this thread, through the same interface (to compare with the worker's). */
const inlineHashing: MediaHashing = {
  sha256: () => {
    const h = createHash('sha256');
    return { update: (b) => void h.update(b), digest: async () => h.digest(), discard: () => undefined };
  },
};

async function* pieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function encrypt(data: Uint8Array, mediaKey: Uint8Array, hashing: MediaHashing | undefined = workerHashing): Promise<{ file: Uint8Array; info: EncryptedMediaInfo }> {
  const e = encryptMedia(crypto, 'document', pieces(data, 50_000), { mediaKey, hashing });
  const parts: Uint8Array[] = [];
  for await (const c of e.chunks) parts.push(c.slice());
  return { file: Buffer.concat(parts), info: await e.result };
}

let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'parley-media-fast-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('workerHashing', () => {
  it('gives the SHA-256 of everything fed, whatever the pieces, with several hashes at once', async () => {
    const sizes = [0, 1, 1024 * 1024, 1024 * 1024 + 7, 9_000_123];
    const data = sizes.map((n) => randomBytes(n));
    const hashes = data.map(() => workerHashing.sha256());
    // Interleaved: every hash gets a piece in turn (each waits when its blocks are all at the worker).
    for (let at = 0; at < 9_000_123; at += 65_537) {
      for (const [i, d] of data.entries()) {
        const waiting = hashes[i]?.update(d.subarray(at, at + 65_537));
        if (waiting) await waiting;
      }
    }
    const digests = await Promise.all(hashes.map((h) => h.digest()));
    for (const [i, d] of data.entries()) assert.equal(hex(digests[i] as Uint8Array), createHash('sha256').update(d).digest('hex'), `${sizes[i]} bytes`);
  });

  it('copies what it is given (the caller may reuse its buffer at once) and refuses use after digest or discard', async () => {
    const buffer = Buffer.alloc(100_000, 1);
    const h = workerHashing.sha256();
    await h.update(buffer);
    buffer.fill(2);
    await h.update(buffer);
    assert.equal(hex(await h.digest()), createHash('sha256').update(Buffer.alloc(100_000, 1)).update(Buffer.alloc(100_000, 2)).digest('hex'));
    assert.throws(() => h.update(buffer));
    const dropped = workerHashing.sha256();
    await dropped.update(buffer);
    dropped.discard();
    await assert.rejects(dropped.digest());
  });

  it('gives the SHA-256 of every byte and, in the same pass, the HMAC of a prefix and of the first bytes given', async () => {
    const data = randomBytes(6_000_001);
    const key = randomBytes(32);
    const prefix = randomBytes(16);
    // Two jobs at once: one MACs all but the last 10 bytes, one only the first 5 (inside its first piece).
    assert.ok(workerHashing.sha256AndHmac !== undefined);
    const jobs = [workerHashing.sha256AndHmac(key, prefix, data.length - 10), workerHashing.sha256AndHmac(key, prefix, 5)];
    for (let at = 0; at < data.length; at += 99_991) {
      for (const job of jobs) {
        const waiting = job.update(data.subarray(at, at + 99_991));
        if (waiting) await waiting;
      }
    }
    const [most, few] = await Promise.all(jobs.map((j) => j.digest()));
    const sha = createHash('sha256').update(data).digest('hex');
    assert.equal(hex(most?.sha256 as Uint8Array), sha);
    assert.equal(hex(few?.sha256 as Uint8Array), sha);
    assert.equal(hex(most?.mac as Uint8Array), createHmac('sha256', key).update(prefix).update(data.subarray(0, data.length - 10)).digest('hex'));
    assert.equal(hex(few?.mac as Uint8Array), createHmac('sha256', key).update(prefix).update(data.subarray(0, 5)).digest('hex'));
  });

  it('makes encryptMedia give the same bytes and hashes as inline hashing', async () => {
    const data = randomBytes(3_000_123);
    const mediaKey = randomBytes(32);
    const viaWorker = await encrypt(data, mediaKey);
    const inline = await encrypt(data, mediaKey, inlineHashing);
    assert.deepEqual(viaWorker.file, inline.file);
    assert.equal(hex(viaWorker.info.encryptedSha256), createHash('sha256').update(viaWorker.file).digest('hex'));
    assert.equal(hex(viaWorker.info.plaintextSha256), createHash('sha256').update(data).digest('hex'));
    assert.equal(hex(viaWorker.info.encryptedSha256), hex(inline.info.encryptedSha256));
    assert.equal(hex(viaWorker.info.plaintextSha256), hex(inline.info.plaintextSha256));
    assert.equal(viaWorker.info.encryptedSize, viaWorker.file.length);
  });
});

describe('a verified download decrypted in place (FileMediaFiles)', () => {
  // The whole blob is staged already, so the download fetches nothing: any request is a failure.
  const noServer = new BlobHttp({
    url: 'http://127.0.0.1:9',
    credentials: { accountId: 'x', deviceId: 1, password: 'x' },
    fetch: () => Promise.reject(new Error('no request expected')),
  });

  async function staged(
    dir: string,
    data: Uint8Array,
    tamper?: (file: Uint8Array) => void,
    options: { pointerHashesTampered?: boolean } = {},
  ): Promise<{ files: FileMediaFiles; record: AttachmentRecord }> {
    const { file, info } = await encrypt(data, randomBytes(32));
    const files = new FileMediaFiles(dir);
    tamper?.(file);
    const encryptedSha256 = options.pointerHashesTampered === true ? new Uint8Array(createHash('sha256').update(file).digest()) : info.encryptedSha256;
    const blobId = hex(encryptedSha256);
    const staging = await files.staging(blobId);
    await staging.append(file);
    // Reading closes the staged file's handle (the download opens its own).
    for await (const chunk of staging.read()) assert.ok(chunk.length > 0);
    const record: AttachmentRecord = {
      type: 'document',
      blobId,
      mediaKey: info.mediaKey,
      plaintextSha256: info.plaintextSha256,
      encryptedSha256,
      size: info.size,
      contentType: 'application/pdf',
      fileName: 'report.pdf',
      width: undefined,
      height: undefined,
      durationMs: undefined,
      voiceNote: false,
      thumbnail: undefined,
      uploadedAt: 0,
      state: 'pending',
      path: undefined,
      error: undefined,
    };
    return { files, record };
  }

  for (const size of [0, 15, 16, 1024 * 1024 - 3, 3 * 1024 * 1024 + 16, 2_500_001]) {
    it(`saves the exact ${size} bytes under the file name, with nothing left in staging or .tmp`, async () => {
      const dir = path.join(root, `ok-${size}`);
      const data = randomBytes(size);
      const { files, record } = await staged(dir, data);
      const saved = await downloadAttachment({ crypto, http: noServer, files, hashing: workerHashing }, record);
      assert.equal(saved.path, path.join(dir, 'report.pdf'));
      assert.deepEqual(await readFile(saved.path), data);
      assert.deepEqual(await readdir(path.join(dir, '.staging')), []);
      assert.deepEqual(await readdir(path.join(dir, '.tmp')), []);
    });
  }

  it('refuses a staged file with a flipped byte before decrypting: CLIENT_BAD_MEDIA, nothing saved or staged', async () => {
    const dir = path.join(root, 'tampered');
    const { files, record } = await staged(dir, randomBytes(200_000), (file) => {
      file[1000] = (file[1000] as number) ^ 1;
    });
    await assert.rejects(downloadAttachment({ crypto, http: noServer, files, hashing: workerHashing }, record), (err: unknown) =>
      ClientError.is(err, ClientErrorCode.BadMedia),
    );
    assert.deepEqual((await readdir(dir)).sort(), ['.staging', '.tmp']);
    assert.deepEqual(await readdir(path.join(dir, '.staging')), []);
    assert.deepEqual(await readdir(path.join(dir, '.tmp')), []);
  });

  it('refuses a file whose MAC does not match (checked on the worker) even when its SHA-256 is the announced one', async () => {
    const dir = path.join(root, 'bad-mac');
    // The last byte (of the MAC) flipped, and the pointer naming the tampered file's own hash: only the MAC can tell.
    const { files, record } = await staged(dir, randomBytes(200_000), (file) => {
      file[file.length - 1] = (file[file.length - 1] as number) ^ 1;
    }, { pointerHashesTampered: true });
    await assert.rejects(downloadAttachment({ crypto, http: noServer, files, hashing: workerHashing }, record), (err: unknown) =>
      ClientError.is(err, ClientErrorCode.BadMedia) && /MAC/.test((err as Error).message),
    );
    assert.deepEqual(await readdir(path.join(dir, '.staging')), []);
    assert.deepEqual(await readdir(path.join(dir, '.tmp')), []);
  });

  it('refuses a plaintext whose SHA-256 is not the announced one (checked while decrypting in place) and deletes it', async () => {
    const dir = path.join(root, 'wrong-plaintext-hash');
    const { files, record } = await staged(dir, randomBytes(300_000));
    const wrong = { ...record, plaintextSha256: new Uint8Array(32) };
    await assert.rejects(downloadAttachment({ crypto, http: noServer, files, hashing: workerHashing }, wrong), (err: unknown) =>
      ClientError.is(err, ClientErrorCode.BadMedia),
    );
    assert.deepEqual((await readdir(dir)).sort(), ['.staging', '.tmp']);
    assert.deepEqual(await readdir(path.join(dir, '.tmp')), []);
  });
});

describe('BlobHttp.download over a fetch that offers chunks() (no web stream)', () => {
  /** A FetchLike over node:http whose responses hand out the IncomingMessage as `chunks()`, and no `body`. */
  const chunkedFetch: FetchLike = (input, init) =>
    new Promise((resolve, reject) => {
      const req = http.request(input, { method: init.method, headers: init.headers });
      init.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')), { once: true });
      req.on('error', reject);
      req.on('response', (res) =>
        resolve(
          Object.assign(
            {
              status: res.statusCode ?? 0,
              headers: { get: (name: string) => (res.headers[name.toLowerCase()] as string | undefined) ?? null },
              arrayBuffer: async () => {
                const parts: Buffer[] = [];
                for await (const c of res as AsyncIterable<Buffer>) parts.push(c);
                return new Uint8Array(Buffer.concat(parts)).buffer;
              },
            },
            { chunks: () => res as AsyncIterable<Uint8Array> },
          ),
        ),
      );
      req.end();
    });

  it('streams the body from chunks(), and a body cut short is CLIENT_CONNECTION_CLOSED', async () => {
    const blob = randomBytes(3_000_000);
    const server = http.createServer((req, res) => {
      const cut = req.headers['x-cut'] === '1';
      res.writeHead(200, { 'content-length': String(blob.length), 'content-type': 'application/octet-stream' });
      if (cut) res.write(blob.subarray(0, 100_000), () => res.destroy());
      else res.end(blob);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const credentials = { accountId: 'a', deviceId: 1, password: 'p' };
      const whole = new BlobHttp({ url, credentials, fetch: chunkedFetch });
      const d = await whole.download('ab'.repeat(32), 0);
      assert.equal(d.size, blob.length);
      const parts: Uint8Array[] = [];
      for await (const c of d.chunks) parts.push(c);
      assert.deepEqual(Buffer.concat(parts), blob);
      assert.ok(parts.length > 1, 'streamed from chunks() piece by piece (the response has no body to read whole)');

      const cutFetch: FetchLike = (input, init) => chunkedFetch(input, { ...init, headers: { ...init.headers, 'x-cut': '1' } });
      const cut = await new BlobHttp({ url, credentials, fetch: cutFetch }).download('ab'.repeat(32), 0);
      await assert.rejects(
        (async () => {
          for await (const c of cut.chunks) assert.ok(c.length > 0);
        })(),
        (err: unknown) => ClientError.is(err, ClientErrorCode.ConnectionClosed),
      );
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
