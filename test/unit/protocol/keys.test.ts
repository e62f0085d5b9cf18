// Curve25519 keys (src/protocol/keys.ts): XEdDSA signatures, X25519 agreement (RFC 7748 vectors, low-order
// inputs), key parsing, and libsignal-made fixtures from test/vectors/session-libsignal.json (signatures,
// agreements, and libsignal's verdicts on edge cases). Isomorphic: only src/protocol and test/support.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  calculateAgreement,
  concatBytes,
  fromHex,
  generateRegistrationId,
  KeyPair,
  PrivateKey,
  ProtocolErrorCode,
  PublicKey,
  toHex,
  utf8,
} from '../../../src/protocol/index.ts';
import fixtures from '../../vectors/session-libsignal.json' with { type: 'json' };
import { expectCode, expectCodeSync } from '../../support/expect.ts';
import { provider } from '../../support/provider.ts';
import { bigIntToLe, flip, leToBigInt, P, torsionTweaked } from '../../support/tamper.ts';

const Code = ProtocolErrorCode;
describe('XEdDSA', () => {
  it('signs and verifies messages of many lengths', async () => {
    const pair = await KeyPair.generate(provider);
    for (const length of [0, 1, 32, 33, 64, 100, 1569]) {
      const message = new Uint8Array(length).map((_, i) => (i * 7 + length) & 0xff);
      const signature = pair.sign(provider, message);
      assert.equal(signature.length, 64);
      assert.equal(await pair.publicKey.verifySignature(provider, message, signature), true, `${length}-byte message`);
    }
  });

  it('is deterministic in its 64 random bytes, and any randomness gives a valid signature', async () => {
    const pair = await KeyPair.generate(provider);
    const message = utf8('the same message');
    const r1 = new Uint8Array(64).fill(1);
    const r2 = new Uint8Array(64).fill(2);
    const s1 = pair.privateKey.sign(message, r1);
    assert.equal(toHex(pair.privateKey.sign(message, r1)), toHex(s1));
    const s2 = pair.privateKey.sign(message, r2);
    assert.notEqual(toHex(s2), toHex(s1));
    assert.equal(await pair.publicKey.verifySignature(provider, message, s1), true);
    assert.equal(await pair.publicKey.verifySignature(provider, message, s2), true);
    expectCodeSync(() => pair.privateKey.sign(message, new Uint8Array(32)), Code.InvalidArgument, '32 random bytes');
  });

  it('rejects a tampered signature, a tampered message, another key and wrong signature lengths', async () => {
    const pair = await KeyPair.generate(provider);
    const other = await KeyPair.generate(provider);
    const message = utf8('signed prekey bytes');
    const signature = pair.sign(provider, message);
    const verify = (m: Uint8Array, s: Uint8Array, key = pair.publicKey): Promise<boolean> => key.verifySignature(provider, m, s);
    for (const [index, mask] of [
      [0, 0x01], // R
      [31, 0x80],
      [32, 0x01], // s
      [62, 0x10],
      [63, 0x80], // the sign bit of the Edwards key
      [63, 0x40], // the top bits of s, which libsignal refuses outright
      [63, 0x20],
    ] as const) {
      assert.equal(await verify(message, flip(signature, index, mask)), false, `byte ${index} ^ ${mask}`);
    }
    assert.equal(await verify(flip(message, 0), signature), false, 'tampered message');
    assert.equal(await verify(concatBytes(message, new Uint8Array(1)), signature), false, 'longer message');
    assert.equal(await verify(message, signature, other.publicKey), false, 'another key');
    for (const length of [0, 32, 63, 65, 128]) {
      const s = new Uint8Array(length);
      s.set(signature.subarray(0, Math.min(64, length)));
      assert.equal(await verify(message, s), false, `${length}-byte signature`);
    }
    assert.equal(await verify(message, signature), true);
  });
});

describe('key parsing', () => {
  it('rejects public keys of the wrong length or type byte with InvalidKey', async () => {
    const good = (await KeyPair.generate(provider)).publicKey.serialized;
    assert.ok(PublicKey.deserialize(good).equals(PublicKey.fromRaw(good.subarray(1))));
    for (const length of [0, 1, 32, 34, 65]) {
      const bytes = new Uint8Array(length).fill(0x05);
      expectCodeSync(() => PublicKey.deserialize(bytes), Code.InvalidKey, `${length}-byte public key`);
    }
    for (const type of [0x00, 0x04, 0x06, 0x08, 0x85]) {
      expectCodeSync(() => PublicKey.deserialize(concatBytes(new Uint8Array([type]), good.subarray(1))), Code.InvalidKey, `type byte ${type}`);
    }
    for (const length of [0, 31, 33]) expectCodeSync(() => PublicKey.fromRaw(new Uint8Array(length)), Code.InvalidKey, `${length}-byte raw key`);
  });

  it('rejects private keys of the wrong length with InvalidKey and clamps the rest', () => {
    for (const length of [0, 1, 31, 33, 64]) expectCodeSync(() => PrivateKey.deserialize(new Uint8Array(length)), Code.InvalidKey, `${length}-byte private key`);
    assert.equal(toHex(PrivateKey.deserialize(new Uint8Array(32).fill(0xff)).serialize()), `f8${'ff'.repeat(30)}7f`);
    assert.equal(toHex(PrivateKey.deserialize(new Uint8Array(32)).serialize()), `${'00'.repeat(31)}40`);
  });

  it('isCanonical: u below 2^255 - 19 with the top bit clear', async () => {
    const honest = (await KeyPair.generate(provider)).publicKey;
    assert.equal(honest.isCanonical(), true);
    assert.equal(PublicKey.fromRaw(bigIntToLe(P)).isCanonical(), false, 'u = p');
    assert.equal(PublicKey.fromRaw(bigIntToLe(P + 18n)).isCanonical(), false, 'u = p + 18');
    assert.equal(PublicKey.fromRaw(bigIntToLe(leToBigInt(honest.raw) + 2n ** 255n)).isCanonical(), false, 'top bit set');
  });

  it(
    'isCanonical: a key moved by a low-order point is not canonical (libsignal: not torsion-free)',
    async () => {
      const honest = (await KeyPair.generate(provider)).publicKey;
      assert.equal(torsionTweaked(honest).isCanonical(), false);
    },
  );

  it('generateRegistrationId stays in 1..16380', () => {
    for (let i = 0; i < 2000; i++) {
      const id = generateRegistrationId(provider);
      assert.ok(Number.isInteger(id) && id >= 1 && id <= 16380, `registration id ${id}`);
    }
  });
});

describe('X25519 agreement', () => {
  it('RFC 7748 section 6.1: key pairs and the shared secret, both ways', async () => {
    const a = PrivateKey.deserialize(fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    const b = PrivateKey.deserialize(fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
    const alice = await KeyPair.fromPrivateKey(provider, a);
    const bob = await KeyPair.fromPrivateKey(provider, b);
    assert.equal(toHex(alice.publicKey.raw), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    assert.equal(toHex(bob.publicKey.raw), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const k = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    assert.equal(toHex(await calculateAgreement(provider, alice, bob.publicKey)), k);
    assert.equal(toHex(await calculateAgreement(provider, bob, alice.publicKey)), k);
  });

  it('RFC 7748 section 5.2: scalars are clamped and the top bit of u is ignored', async () => {
    const vectors = [
      ['a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4', 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552'],
      ['4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d', 'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493', '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957'],
    ] as const;
    for (const [scalar, u, out] of vectors) {
      const ours = await KeyPair.fromPrivateKey(provider, PrivateKey.deserialize(fromHex(scalar)));
      assert.equal(toHex(await calculateAgreement(provider, ours, PublicKey.fromRaw(fromHex(u)))), out);
    }
  });

  it('an all-zero result (low-order or non-canonical low-order u) is InvalidKey, where libsignal refuses too', async () => {
    const ours = await KeyPair.generate(provider);
    assert.ok(fixtures.agreementLowOrder.length >= 7);
    for (const v of fixtures.agreementLowOrder) {
      assert.equal(v.libsignalRejects, true);
      await expectCode(calculateAgreement(provider, ours, PublicKey.deserialize(fromHex(v.publicKey))), Code.InvalidKey, `u = ${v.publicKey.slice(2)}`);
    }
  });
});

describe('libsignal-made fixtures (test/vectors/session-libsignal.json)', () => {
  it('XEdDSA signatures by libsignal verify; tampered ones do not; the key pairs match', async () => {
    assert.ok(fixtures.xeddsa.length >= 4);
    for (const v of fixtures.xeddsa) {
      const pair = await KeyPair.fromPrivateKey(provider, PrivateKey.deserialize(fromHex(v.privateKey)));
      assert.equal(toHex(pair.publicKey.serialized), v.publicKey);
      const key = PublicKey.deserialize(fromHex(v.publicKey));
      const message = fromHex(v.message);
      const signature = fromHex(v.signature);
      assert.equal(await key.verifySignature(provider, message, signature), true, `libsignal signature over ${message.length} bytes`);
      assert.equal(await key.verifySignature(provider, message, flip(signature, 10)), false);
      if (message.length > 0) assert.equal(await key.verifySignature(provider, flip(message, message.length - 1), signature), false);
      // Our signature with libsignal's private key verifies under the same public key.
      assert.equal(await key.verifySignature(provider, message, pair.sign(provider, message)), true);
    }
  });

  it('X25519 agreements computed by libsignal', async () => {
    for (const v of fixtures.agreement) {
      const ours = await KeyPair.fromPrivateKey(provider, PrivateKey.deserialize(fromHex(v.privateKey)));
      const shared = await calculateAgreement(provider, ours, PublicKey.deserialize(fromHex(v.publicKey)));
      assert.equal(toHex(shared), v.shared);
    }
  });

  it(
    'a signature with s replaced by s + L verifies as in libsignal (which reduces s mod L)',
    async () => {
      for (const v of fixtures.xeddsaMalleated) {
        const verdict = await PublicKey.deserialize(fromHex(v.publicKey)).verifySignature(provider, fromHex(v.message), fromHex(v.signature));
        assert.equal(verdict, v.libsignalVerifies);
      }
    },
  );
});
