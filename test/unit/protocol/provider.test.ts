// Known-answer tests of the CryptoProvider the protocol tests run with. In Node that is the node:crypto
// provider; `npm run test:browser` runs this same file in Chromium against the WebCrypto provider.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { provider, providerName } from '../../support/provider.ts';
import { fromHex, toHex, utf8 } from '../../../src/protocol/bytes.ts';

const hex = fromHex;

describe(`CryptoProvider (${providerName})`, () => {
  describe('sha512', () => {
    it('hashes "abc" (FIPS 180-2 example)', async () => {
      const expected =
        'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';
      assert.equal(toHex(await provider.sha512(utf8('abc'))), expected);
      assert.equal(toHex(await provider.sha512(utf8('a'), utf8(''), utf8('bc'))), expected, 'parts are concatenated');
    });
  });

  describe('hmacSha256', () => {
    it('matches RFC 4231 test case 2', async () => {
      const key = utf8('Jefe');
      const expected = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
      assert.equal(toHex(await provider.hmacSha256(key, utf8('what do ya want for nothing?'))), expected);
      assert.equal(toHex(await provider.hmacSha256(key, utf8('what do ya '), utf8('want for nothing?'))), expected, 'parts are concatenated');
    });
  });

  describe('hkdfSha256', () => {
    const ikm = new Uint8Array(22).fill(0x0b);

    it('matches RFC 5869 test case 1', async () => {
      const okm = await provider.hkdfSha256(ikm, hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42);
      assert.equal(toHex(okm), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
    });

    it('treats an absent salt as zeros (RFC 5869 test case 3)', async () => {
      const okm = await provider.hkdfSha256(ikm, undefined, new Uint8Array(0), 42);
      assert.equal(toHex(okm), '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
    });
  });

  describe('aes256Cbc', () => {
    // NIST SP 800-38A, F.2.5 CBC-AES256.Encrypt.
    const key = hex('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
    const iv = hex('000102030405060708090a0b0c0d0e0f');
    const plaintext = hex(
      '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
    );
    const ciphertext =
      'f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b';

    it('matches NIST SP 800-38A F.2.5, followed by one PKCS#7 padding block', async () => {
      const out = await provider.aes256CbcEncrypt(key, iv, plaintext);
      assert.equal(out.length, plaintext.length + 16);
      assert.equal(toHex(out.subarray(0, plaintext.length)), ciphertext);
      assert.deepEqual(await provider.aes256CbcDecrypt(key, iv, out), plaintext);
    });

    it('round-trips every length around the block size', async () => {
      for (const length of [0, 1, 15, 16, 17, 31, 32, 33, 1000]) {
        const data = provider.randomBytes(length);
        const out = await provider.aes256CbcEncrypt(key, iv, data);
        assert.equal(out.length, (Math.floor(length / 16) + 1) * 16, `ciphertext length for ${length}`);
        assert.deepEqual(await provider.aes256CbcDecrypt(key, iv, out), data, `round trip of ${length} bytes`);
      }
    });

    it('rejects bad padding and a length that is not a whole number of blocks', async () => {
      // The raw NIST ciphertext decrypts to a last block that is not valid PKCS#7 padding.
      await assert.rejects(provider.aes256CbcDecrypt(key, iv, hex(ciphertext)));
      await assert.rejects(provider.aes256CbcDecrypt(key, iv, hex(ciphertext).subarray(0, 40)));
    });
  });

  describe('x25519', () => {
    // RFC 7748, section 6.1.
    const alicePrivate = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const alicePublic = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
    const bobPrivate = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const bobPublic = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

    it('derives the RFC 7748 public keys', async () => {
      assert.equal(toHex(await provider.x25519PublicKey(alicePrivate)), alicePublic);
      assert.equal(toHex(await provider.x25519PublicKey(bobPrivate)), bobPublic);
    });

    it('agrees on the RFC 7748 shared secret from both sides', async () => {
      assert.equal(toHex(await provider.x25519(alicePrivate, hex(bobPublic))), shared);
      assert.equal(toHex(await provider.x25519(bobPrivate, hex(alicePublic))), shared);
    });

    it('generates clamped key pairs that agree', async () => {
      const a = await provider.x25519GenerateKeyPair();
      const b = await provider.x25519GenerateKeyPair();
      assert.equal(a.privateKey.length, 32);
      assert.equal(a.publicKey.length, 32);
      assert.equal((a.privateKey[0] as number) & 7, 0);
      assert.equal((a.privateKey[31] as number) & 0xc0, 0x40);
      assert.deepEqual(await provider.x25519PublicKey(a.privateKey), a.publicKey);
      assert.deepEqual(await provider.x25519(a.privateKey, b.publicKey), await provider.x25519(b.privateKey, a.publicKey));
    });
  });

  describe('ed25519Verify', () => {
    // RFC 8032, section 7.1, TEST 1 (empty message).
    const publicKey = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const signature = hex(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    const message = new Uint8Array(0);

    it('accepts the RFC 8032 test 1 signature', async () => {
      assert.equal(await provider.ed25519Verify(publicKey, message, signature), true);
    });

    it('rejects a tampered signature, a different message and a different key', async () => {
      const tampered = signature.slice();
      tampered[0] = (tampered[0] as number) ^ 0x01;
      assert.equal(await provider.ed25519Verify(publicKey, message, tampered), false);
      assert.equal(await provider.ed25519Verify(publicKey, new Uint8Array([0x72]), signature), false);
      const otherKey = hex('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'); // RFC 8032 test 2
      assert.equal(await provider.ed25519Verify(otherKey, message, signature), false);
    });
  });

  describe('randomBytes', () => {
    it('returns the requested length, beyond the 65,536-byte getRandomValues limit', () => {
      const a = provider.randomBytes(70_000);
      assert.equal(a.length, 70_000);
      assert.ok(a.subarray(65_536).some((b) => b !== 0), 'the tail is filled');
      assert.notDeepEqual(provider.randomBytes(32), provider.randomBytes(32));
    });
  });
});
