// Streaming media encryption (src/client/media/crypto.ts): round trips at odd chunkings, the exact format
// against a one-shot node:crypto reference, tamper/truncation/wrong-key rejection, and byte equality of the
// node:crypto and WebCrypto providers' streaming paths.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { NodeCryptoProvider } from '../../../src/node/crypto-provider.ts';
import { WebCryptoProvider } from '../../../src/protocol/webcrypto-provider.ts';
import type { CryptoProvider } from '../../../src/protocol/crypto.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import {
  createMediaVerifier,
  decryptMedia,
  decryptMediaToSink,
  encryptedMediaSize,
  encryptMedia,
  MEDIA_INFO,
  type EncryptedMediaInfo,
  type MediaType,
} from '../../../src/client/media/crypto.ts';

const node = new NodeCryptoProvider();
const web = new WebCryptoProvider();

/** A provider with only the required one-shot methods (the fallback path). */
const oneShotOnly: CryptoProvider = {
  randomBytes: (n) => node.randomBytes(n),
  sha512: (...p) => node.sha512(...p),
  hmacSha256: (k, ...p) => node.hmacSha256(k, ...p),
  hkdfSha256: (...a) => node.hkdfSha256(...a),
  aes256CbcEncrypt: (...a) => node.aes256CbcEncrypt(...a),
  aes256CbcDecrypt: (...a) => node.aes256CbcDecrypt(...a),
  x25519GenerateKeyPair: () => node.x25519GenerateKeyPair(),
  x25519PublicKey: (k) => node.x25519PublicKey(k),
  x25519: (...a) => node.x25519(...a),
  ed25519Verify: (...a) => node.ed25519Verify(...a),
};

const KiB = 1024;

/** Yields `data` cut at pseudo-random places (some chunks empty, some tiny, some large). */
async function* chunked(data: Uint8Array, seed = 1, max = 70_001): AsyncGenerator<Uint8Array> {
  let s = seed;
  let offset = 0;
  while (offset < data.length) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const n = s % 7 === 0 ? s % 11 : s % max;
    yield data.subarray(offset, offset + n);
    offset += n;
  }
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

async function encrypt(crypto: CryptoProvider, type: MediaType, data: Uint8Array, seed = 1, mediaKey?: Uint8Array): Promise<{ file: Buffer; info: EncryptedMediaInfo }> {
  const e = encryptMedia(crypto, type, chunked(data, seed), mediaKey ? { mediaKey } : {});
  const file = await collect(e.chunks);
  return { file, info: await e.result };
}

async function decrypt(crypto: CryptoProvider, type: MediaType, info: EncryptedMediaInfo, file: Uint8Array, seed = 2): Promise<Buffer> {
  const d = decryptMedia(crypto, type, info.mediaKey, { encryptedSha256: info.encryptedSha256, size: info.size, plaintextSha256: info.plaintextSha256 }, chunked(file, seed));
  const out = await collect(d.chunks);
  const result = await d.result;
  assert.equal(result.size, out.length);
  return out;
}

/** The format, built in one shot with node:crypto only. */
function reference(type: MediaType, mediaKey: Uint8Array, plaintext: Uint8Array): Buffer {
  const okm = Buffer.from(hkdfSync('sha256', mediaKey, Buffer.alloc(32), MEDIA_INFO[type], 112));
  const iv = okm.subarray(0, 16);
  const c = createCipheriv('aes-256-cbc', okm.subarray(16, 48), iv);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  const mac = createHmac('sha256', okm.subarray(48, 80)).update(iv).update(ct).digest().subarray(0, 10);
  return Buffer.concat([ct, mac]);
}

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

async function assertBadMedia(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => ClientError.is(err, ClientErrorCode.BadMedia));
}

describe('media encryption', () => {
  const sizes = [0, 1, 15, 16, 17, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 3 * 1024 * KiB + 5];

  it('round-trips files of various sizes at odd chunk boundaries, in the exact format of the one-shot reference', async () => {
    for (const size of sizes) {
      const plaintext = randomBytes(size);
      for (const type of ['image', 'document'] as const) {
        const { file, info } = await encrypt(node, type, plaintext, size + 1);
        assert.equal(file.length, encryptedMediaSize(size));
        assert.equal(info.encryptedSize, file.length);
        assert.equal(info.size, size);
        assert.deepEqual(Buffer.from(info.plaintextSha256), sha256(plaintext));
        assert.deepEqual(Buffer.from(info.encryptedSha256), sha256(file));
        assert.ok(file.equals(reference(type, info.mediaKey, plaintext)), `format, size ${size}`);
        assert.ok((await decrypt(node, type, info, file, size + 7)).equals(plaintext), `round trip, size ${size}`);
      }
    }
  });

  it('uses distinct keys per media type and a fresh media key per file', async () => {
    const data = randomBytes(100);
    const mediaKey = randomBytes(32);
    const files = await Promise.all((Object.keys(MEDIA_INFO) as MediaType[]).map(async (t) => (await encrypt(node, t, data, 1, mediaKey)).file.toString('hex')));
    assert.equal(new Set(files).size, 4);
    const a = await encrypt(node, 'image', data);
    const b = await encrypt(node, 'image', data);
    assert.notDeepEqual(a.info.mediaKey, b.info.mediaKey);
    await assertBadMedia(decrypt(node, 'video', a.info, a.file));
  });

  it('the WebCrypto provider and the one-shot fallback produce the same bytes as node:crypto, and decrypt them', async () => {
    for (const size of [0, 15, 16, 17, 64 * KiB + 1, 1024 * KiB + 3]) {
      const plaintext = randomBytes(size);
      const mediaKey = randomBytes(32);
      const n = await encrypt(node, 'video', plaintext, 3, mediaKey);
      for (const crypto of [web, oneShotOnly]) {
        const w = await encrypt(crypto, 'video', plaintext, 5, mediaKey);
        assert.ok(w.file.equals(n.file), `size ${size}`);
        assert.deepEqual(w.info, n.info);
        assert.ok((await decrypt(crypto, 'video', n.info, n.file, 9)).equals(plaintext));
      }
    }
  });

  it('rejects a flipped byte anywhere (first block, middle, last block, MAC) with CLIENT_BAD_MEDIA', async () => {
    const plaintext = randomBytes(5000);
    const { file, info } = await encrypt(node, 'audio', plaintext);
    for (const at of [0, 15, 16, 2500, file.length - 11, file.length - 10, file.length - 1]) {
      const tampered = Buffer.from(file);
      tampered[at]! ^= 0x01;
      await assertBadMedia(decrypt(node, 'audio', info, tampered));
      await assertBadMedia(decrypt(web, 'audio', info, tampered));
      // Even with the tampered file's own SHA-256 (a server that also rewrote the message can't, but the MAC
      // must hold on its own), the MAC rejects it.
      await assertBadMedia(decrypt(node, 'audio', { ...info, encryptedSha256: sha256(tampered), size: undefined as unknown as number }, tampered));
    }
  });

  it('rejects truncated and extended files, a wrong key and a wrong announced size', async () => {
    const plaintext = randomBytes(4096);
    const { file, info } = await encrypt(node, 'image', plaintext);
    for (const length of [0, 1, 10, 25, 26, file.length - 16, file.length - 1]) {
      await assertBadMedia(decrypt(node, 'image', info, file.subarray(0, length)));
    }
    await assertBadMedia(decrypt(node, 'image', info, Buffer.concat([file, Buffer.from([0])])));
    await assertBadMedia(decrypt(node, 'image', { ...info, mediaKey: randomBytes(32) }, file));
    await assertBadMedia(decrypt(node, 'image', { ...info, size: info.size - 1 }, file));
    await assertBadMedia(decrypt(node, 'image', { ...info, size: info.size + 1 }, file));
    await assertBadMedia(decrypt(node, 'image', { ...info, plaintextSha256: sha256(Buffer.from('x')) }, file));
  });

  it('holds back the last part of the plaintext until the file is verified', async () => {
    const plaintext = randomBytes(64 * KiB);
    const { file, info } = await encrypt(node, 'document', plaintext);
    const tampered = Buffer.from(file);
    tampered[tampered.length - 1]! ^= 0x80;
    const released: Uint8Array[] = [];
    await assertBadMedia(
      decryptMediaToSink(node, 'document', info.mediaKey, { encryptedSha256: info.encryptedSha256 }, chunked(tampered, 4, 4096), (c) => {
        released.push(c);
      }),
    );
    const releasedBytes = released.reduce((n, c) => n + c.length, 0);
    assert.ok(releasedBytes < plaintext.length, 'the tail was not released');
    const ok: Uint8Array[] = [];
    const result = await decryptMediaToSink(node, 'document', info.mediaKey, { encryptedSha256: info.encryptedSha256 }, chunked(file, 4, 4096), (c) => {
      ok.push(c);
    });
    assert.ok(Buffer.concat(ok).equals(plaintext));
    assert.deepEqual(Buffer.from(result.plaintextSha256), sha256(plaintext));
  });

  it('rejects bad arguments, and reports an abandoned stream through result', async () => {
    assert.throws(() => decryptMedia(node, 'image', new Uint8Array(31), { encryptedSha256: new Uint8Array(32) }, chunked(new Uint8Array(0))), (err: unknown) =>
      ClientError.is(err, ClientErrorCode.InvalidArgument),
    );
    const e = encryptMedia(node, 'image', chunked(randomBytes(200_000)));
    for await (const _ of e.chunks) break;
    await assert.rejects(e.result, (err: unknown) => ClientError.is(err, ClientErrorCode.Aborted));
  });

  it('encrypts and decrypts 64 MiB in bounded memory', async () => {
    const total = 64 * 1024 * KiB;
    const block = randomBytes(256 * KiB);
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let sent = 0; sent < total; sent += block.length) yield block;
    }
    const mediaKey = randomBytes(32);
    // First pass: learn the encrypted hash the message would carry.
    const first = encryptMedia(node, 'video', source(), { mediaKey });
    for await (const c of first.chunks) void c;
    const { encryptedSha256, size } = await first.result;
    // Second pass: the encrypted stream goes straight into the decryptor, nothing buffered in between.
    const before = process.memoryUsage().rss;
    let peak = 0;
    let out = 0;
    const second = encryptMedia(node, 'video', source(), { mediaKey });
    for await (const c of decryptMedia(node, 'video', mediaKey, { encryptedSha256, size }, second.chunks).chunks) {
      out += c.length;
      peak = Math.max(peak, process.memoryUsage().rss - before);
    }
    assert.equal(out, total);
    assert.ok(peak < 32 * 1024 * KiB, `rss grew by ${peak} bytes`);
  });
});

describe('createMediaVerifier: the whole encrypted file checked before any decryption', () => {
  for (const [name, crypto] of [['node', node], ['webcrypto', web]] as const) {
    it(`accepts the file in any chunking and refuses a flipped byte, a cut or an extra byte (${name})`, async () => {
      const data = randomBytes(100 * KiB + 5);
      const { file, info } = await encrypt(crypto, 'document', data);
      const expected = { encryptedSha256: info.encryptedSha256, size: data.length };
      const feed = async (bytes: Uint8Array, seed: number): Promise<void> => {
        const v = await createMediaVerifier(crypto, 'document', info.mediaKey, expected);
        for await (const chunk of chunked(bytes, seed, 9_001)) await v.update(chunk);
        await v.verify();
      };
      for (const seed of [1, 2, 3]) await feed(file, seed);
      const one = await createMediaVerifier(crypto, 'document', info.mediaKey, expected);
      for (const b of file.subarray(0, 100)) await one.update(new Uint8Array([b]));
      await one.update(file.subarray(100));
      await one.verify();
      for (const at of [0, 5_000, file.length - 11, file.length - 1]) {
        const bad = Buffer.from(file);
        bad[at] = (bad[at] as number) ^ 1;
        await assertBadMedia(feed(bad, 4));
      }
      await assertBadMedia(feed(file.subarray(0, file.length - 16), 5));
      await assertBadMedia(feed(Buffer.concat([file, Buffer.from([0])]), 6));
      // The MAC alone is checked too: the right hash of a file under another key is still refused.
      const other = await createMediaVerifier(crypto, 'image', info.mediaKey, expected);
      await other.update(file);
      await assert.rejects(other.verify(), (err: unknown) => ClientError.is(err, ClientErrorCode.BadMedia));
    });
  }
});
