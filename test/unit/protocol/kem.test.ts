// KEM keys (src/protocol/kem.ts): round-3 Kyber1024 (type 0x08, what libsignal 0.90 uses) checked against
// the NIST round-3 known-answer tests (test/vectors/kyber1024-kat.json, extracted from the KAT file that
// crystals-kyber ships), and ML-KEM-1024 (type 0x0A) round trips; typed errors for wrong types and lengths;
// implicit rejection. Isomorphic: only src/protocol and test/support.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  bytesEqual,
  concatBytes,
  fromHex,
  KEM_CIPHERTEXT_BYTES,
  KemKeyPair,
  KemPublicKey,
  KemSecretKey,
  KemType,
  ProtocolErrorCode,
  toHex,
} from '../../../src/protocol/index.ts';
import kat from '../../vectors/kyber1024-kat.json' with { type: 'json' };
import { expectCodeSync } from '../../support/expect.ts';
import { withRandomBytes } from '../../support/fixed-random.ts';
import { provider } from '../../support/provider.ts';
import { flip } from '../../support/tamper.ts';

const Code = ProtocolErrorCode;
const typed = (type: number, hex: string): Uint8Array => concatBytes(new Uint8Array([type]), fromHex(hex));


describe('round-3 Kyber1024 known-answer tests (NIST PQCkemKAT_3168.rsp)', () => {
  assert.ok(kat.entries.length >= 5);
  for (const e of kat.entries) {
    it(`KAT ${e.count}: decapsulating ct with sk gives ss`, () => {
      const sk = KemSecretKey.deserialize(typed(KemType.Kyber1024, e.sk));
      assert.equal(sk.type, KemType.Kyber1024);
      assert.equal(toHex(sk.decapsulate(typed(KemType.Kyber1024, e.ct))), e.ss);
      // The round-3 secret key embeds the public key: sk = s || pk || H(pk) || z.
      assert.equal(e.sk.slice(1536 * 2, (1536 + 1568) * 2), e.pk);
    });

    it(`KAT ${e.count}: encapsulating with the KAT's randomness gives ct and ss`, () => {
      const pk = KemPublicKey.deserialize(typed(KemType.Kyber1024, e.pk));
      const { ciphertext, sharedSecret } = pk.encapsulate(withRandomBytes(provider, fromHex(e.encapsulationRandomness)));
      assert.equal(toHex(ciphertext), `08${e.ct}`);
      assert.equal(toHex(sharedSecret), e.ss);
    });

    it(`KAT ${e.count}: a tampered ciphertext gives round 3's implicit-rejection secret SHAKE-256(z || H(c'))`, () => {
      const sk = KemSecretKey.deserialize(typed(KemType.Kyber1024, e.sk));
      const ct = typed(KemType.Kyber1024, e.ct);
      for (const r of e.rejection) {
        const tampered = flip(ct, r.flip + 1);
        const secret = sk.decapsulate(tampered);
        assert.equal(toHex(secret), r.ss, `flip of byte ${r.flip}`);
        assert.notEqual(toHex(secret), e.ss);
        assert.ok(bytesEqual(sk.decapsulate(tampered), secret), 'deterministic');
      }
    });
  }
});

describe('KEM key pairs of both types', () => {
  for (const type of [KemType.Kyber1024, KemType.MlKem1024]) {
    const name = `0x${type.toString(16).padStart(2, '0')}`;
    it(`${name}: generate, serialize (type byte + key), encapsulate, decapsulate`, () => {
      const pair = KemKeyPair.generate(provider, type);
      const pub = pair.publicKey.serialize();
      const sec = pair.secretKey.serialize();
      assert.equal(pub.length, 1569);
      assert.equal(sec.length, 3169);
      assert.equal(pub[0], type);
      assert.equal(sec[0], type);
      const pk = KemPublicKey.deserialize(pub);
      const sk = KemSecretKey.deserialize(sec);
      assert.ok(pk.equals(pair.publicKey));
      for (let i = 0; i < 3; i++) {
        const { ciphertext, sharedSecret } = pk.encapsulate(provider);
        assert.equal(ciphertext.length, 1 + KEM_CIPHERTEXT_BYTES);
        assert.equal(ciphertext[0], type);
        assert.equal(sharedSecret.length, 32);
        assert.ok(bytesEqual(sk.decapsulate(ciphertext), sharedSecret));
      }
    });

    it(`${name}: implicit rejection: a flipped ciphertext byte gives a different, deterministic secret`, () => {
      const pair = KemKeyPair.generate(provider, type);
      const { ciphertext, sharedSecret } = pair.publicKey.encapsulate(provider);
      const seen = new Set([toHex(sharedSecret)]);
      for (const index of [1, 2, 700, KEM_CIPHERTEXT_BYTES]) {
        const tampered = flip(ciphertext, index);
        const secret = pair.secretKey.decapsulate(tampered);
        assert.equal(secret.length, 32);
        assert.ok(!seen.has(toHex(secret)), `byte ${index}: a secret seen before`);
        seen.add(toHex(secret));
        assert.ok(bytesEqual(pair.secretKey.decapsulate(tampered), secret), `byte ${index}: not deterministic`);
      }
    });
  }

  it('the two types are different KEMs: same key bytes and randomness, different ciphertext and secret', () => {
    const e = kat.entries[0];
    assert.ok(e);
    const m0 = fromHex(e.encapsulationRandomness);
    const kyber = KemPublicKey.deserialize(typed(KemType.Kyber1024, e.pk)).encapsulate(withRandomBytes(provider, m0));
    const mlkem = KemPublicKey.deserialize(typed(KemType.MlKem1024, e.pk)).encapsulate(withRandomBytes(provider, m0));
    assert.notEqual(toHex(kyber.ciphertext.subarray(1)), toHex(mlkem.ciphertext.subarray(1)));
    assert.notEqual(toHex(kyber.sharedSecret), toHex(mlkem.sharedSecret));
    // Each decapsulates under its own type only.
    assert.equal(toHex(KemSecretKey.deserialize(typed(KemType.MlKem1024, e.sk)).decapsulate(mlkem.ciphertext)), toHex(mlkem.sharedSecret));
  });

  it('type mismatches and wrong lengths are typed errors', () => {
    const pair = KemKeyPair.generate(provider, KemType.Kyber1024);
    const { ciphertext } = pair.publicKey.encapsulate(provider);
    const pub = pair.publicKey.serialize();
    const sec = pair.secretKey.serialize();
    const retyped = (bytes: Uint8Array, type: number): Uint8Array => concatBytes(new Uint8Array([type]), bytes.subarray(1));

    // Ciphertexts: wrong type byte or length.
    expectCodeSync(() => pair.secretKey.decapsulate(retyped(ciphertext, KemType.MlKem1024)), Code.InvalidMessage, 'ML-KEM ciphertext for a Kyber key');
    expectCodeSync(() => pair.secretKey.decapsulate(ciphertext.subarray(1)), Code.InvalidMessage, 'ciphertext without its type byte');
    expectCodeSync(() => pair.secretKey.decapsulate(concatBytes(ciphertext, new Uint8Array(1))), Code.InvalidMessage, 'ciphertext one byte long');
    expectCodeSync(() => pair.secretKey.decapsulate(ciphertext.subarray(0, 1000)), Code.InvalidMessage, 'truncated ciphertext');
    expectCodeSync(() => pair.secretKey.decapsulate(new Uint8Array(0)), Code.InvalidMessage, 'empty ciphertext');
    const mlkem = KemKeyPair.generate(provider, KemType.MlKem1024);
    expectCodeSync(() => mlkem.secretKey.decapsulate(ciphertext), Code.InvalidMessage, 'Kyber ciphertext for an ML-KEM key');

    // Keys: unknown type byte or wrong length.
    for (const type of [0x00, 0x05, 0x07, 0x09, 0x0b, 0xff]) {
      expectCodeSync(() => KemPublicKey.deserialize(retyped(pub, type)), Code.InvalidKey, `public key of type ${type}`);
      expectCodeSync(() => KemSecretKey.deserialize(retyped(sec, type)), Code.InvalidKey, `secret key of type ${type}`);
    }
    for (const bytes of [new Uint8Array(0), pub.subarray(0, 1568), concatBytes(pub, new Uint8Array(1)), pub.subarray(1)]) {
      expectCodeSync(() => KemPublicKey.deserialize(bytes), Code.InvalidKey, `public key of ${bytes.length} bytes`);
    }
    for (const bytes of [new Uint8Array(0), sec.subarray(0, 3168), concatBytes(sec, new Uint8Array(1)), pub]) {
      expectCodeSync(() => KemSecretKey.deserialize(bytes), Code.InvalidKey, `secret key of ${bytes.length} bytes`);
    }
  });
});
