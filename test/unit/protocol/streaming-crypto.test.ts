// The CryptoProvider's optional streaming primitives (incremental AES-256-CBC, HMAC-SHA256, SHA-256) and the
// generic chunked AES-CBC over one-shot calls. Isomorphic: node:crypto in Node, WebCrypto in Chromium.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { provider, providerName } from '../../support/provider.ts';
import { concatBytes, fromHex, toHex, utf8 } from '../../../src/protocol/bytes.ts';
import { chunkedAes256CbcDecryptor, chunkedAes256CbcEncryptor, type StreamingCipher } from '../../../src/protocol/crypto.ts';

const key = fromHex('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
const iv = fromHex('000102030405060708090a0b0c0d0e0f');

function pattern(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

/** Splits `data` at pseudo-random odd places (including empty chunks). */
function split(data: Uint8Array, seed: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let offset = 0;
  let s = seed;
  while (offset < data.length) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const n = s % 5 === 0 ? 0 : s % 97;
    out.push(data.subarray(offset, offset + n));
    offset += n;
  }
  return out;
}

async function run(cipher: StreamingCipher, chunks: Uint8Array[]): Promise<Uint8Array> {
  const out: Uint8Array[] = [];
  for (const c of chunks) out.push(await cipher.update(c));
  out.push(await cipher.final());
  return concatBytes(...out);
}

const oneShot = {
  encrypt: (i: Uint8Array, d: Uint8Array) => provider.aes256CbcEncrypt(key, i, d),
  decrypt: (i: Uint8Array, d: Uint8Array) => provider.aes256CbcDecrypt(key, i, d),
};

describe(`streaming crypto (${providerName})`, () => {
  const sizes = [0, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4096, 4097];

  for (const [name, enc, dec] of [
    ['provider', (i: Uint8Array) => provider.createAes256CbcEncryptor!(key, i), (i: Uint8Array) => provider.createAes256CbcDecryptor!(key, i)],
    ['chunked over one-shot', (i: Uint8Array) => chunkedAes256CbcEncryptor(oneShot, i), (i: Uint8Array) => chunkedAes256CbcDecryptor(oneShot, i)],
  ] as const) {
    it(`${name}: AES-256-CBC streams equal the one-shot calls at any chunking`, async () => {
      for (const size of sizes) {
        const plaintext = pattern(size);
        const expected = await provider.aes256CbcEncrypt(key, iv, plaintext);
        for (const seed of [1, 2, 3]) {
          const ct = await run(enc(iv), split(plaintext, seed));
          assert.equal(toHex(ct), toHex(expected), `encrypt size ${size} seed ${seed}`);
          const pt = await run(dec(iv), split(ct, seed + 10));
          assert.equal(toHex(pt), toHex(plaintext), `decrypt size ${size} seed ${seed}`);
        }
        assert.equal(toHex(await run(enc(iv), [plaintext])), toHex(expected));
        assert.equal(toHex(await run(dec(iv), [expected])), toHex(plaintext));
      }
    });

    it(`${name}: AES-256-CBC decryption rejects bad padding and bad lengths`, async () => {
      const ct = await provider.aes256CbcEncrypt(key, iv, pattern(40));
      const tampered = ct.slice();
      tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
      await assert.rejects(run(dec(iv), [tampered]));
      await assert.rejects(run(dec(iv), [ct.subarray(0, ct.length - 1)]));
      await assert.rejects(run(dec(iv), []));
    });
  }

  it('matches the NIST SP 800-38A CBC-AES256 vector (first block)', async () => {
    const enc = provider.createAes256CbcEncryptor!(key, iv);
    const out = await enc.update(fromHex('6bc1bee22e409f96e93d7e117393172a'));
    assert.equal(toHex(out), 'f58c4c04d6e5f1ba779eabfb5f7bfbd6');
  });

  it('incremental SHA-256 and HMAC-SHA256 match the known answers', () => {
    const h = provider.createSha256!();
    h.update(utf8('a'));
    h.update(utf8(''));
    h.update(utf8('bc'));
    assert.equal(toHex(h.digest()), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const m = provider.createHmacSha256!(utf8('Jefe'));
    m.update(utf8('what do ya '));
    m.update(utf8('want for nothing?'));
    assert.equal(toHex(m.digest()), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
});
