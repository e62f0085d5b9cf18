// Safety-number interoperability with libsignal-client 0.90.0: for random identity keys and identifiers,
// both compute the same displayable and scannable fingerprints, and each one's scannable compare accepts
// the other's code. Node only.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as ls from '@signalapp/libsignal-client';
import { NodeCryptoProvider } from '../../src/node/crypto-provider.ts';
import { toHex } from '../../src/protocol/bytes.ts';
import { FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION, Fingerprint, FingerprintVersionMismatchError } from '../../src/protocol/fingerprint.ts';
import { PublicKey } from '../../src/protocol/keys.ts';

const crypto = new NodeCryptoProvider();
const u8 = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

interface Side {
  id: Uint8Array<ArrayBuffer>;
  lsKey: ls.PublicKey;
  key: PublicKey;
}

function randomSide(idLength: number): Side {
  const lsKey = ls.PrivateKey.generate().getPublicKey();
  return { id: u8(randomBytes(idLength)), lsKey, key: PublicKey.deserialize(lsKey.serialize()) };
}

describe('Fingerprint interop with libsignal 0.90', () => {
  it('same displayable and scannable fingerprints for random keys and identifiers, compared across', async () => {
    for (let i = 0; i < 8; i++) {
      const a = randomSide(i % 2 === 0 ? 16 : 1 + i);
      const b = randomSide(16);
      const iterations = i < 4 ? FINGERPRINT_ITERATIONS : 2 + i * 100;
      const version = i % 3 === 2 ? 1 : FINGERPRINT_VERSION;
      const lsA = ls.Fingerprint.new(iterations, version, a.id, a.lsKey, b.id, b.lsKey);
      const lsB = ls.Fingerprint.new(iterations, version, b.id, b.lsKey, a.id, a.lsKey);
      const ourA = await Fingerprint.create(crypto, iterations, version, a.id, a.key, b.id, b.key);
      const ourB = await Fingerprint.create(crypto, iterations, version, b.id, b.key, a.id, a.key);
      assert.equal(ourA.displayable.toString(), lsA.displayableFingerprint().toString());
      assert.equal(ourB.displayable.toString(), lsA.displayableFingerprint().toString());
      assert.equal(toHex(ourA.scannable.serialize()), toHex(lsA.scannableFingerprint().toBuffer()));
      assert.equal(toHex(ourB.scannable.serialize()), toHex(lsB.scannableFingerprint().toBuffer()));
      // Our compare on libsignal's code, libsignal's compare on ours.
      assert.equal(ourA.scannable.compare(lsB.scannableFingerprint().toBuffer()), true);
      assert.equal(lsA.scannableFingerprint().compare(ls.ScannableFingerprint._fromBuffer(u8(ourB.scannable.serialize()))), true);
      assert.equal(ourA.scannable.compare(lsA.scannableFingerprint().toBuffer()), false);
      assert.equal(lsA.scannableFingerprint().compare(ls.ScannableFingerprint._fromBuffer(u8(ourA.scannable.serialize()))), false);
    }
  });

  it('a changed key gives a different number on both sides, and versions do not compare', async () => {
    const a = randomSide(16);
    const b = randomSide(16);
    const m = randomSide(16);
    const ours = await Fingerprint.create(crypto, FINGERPRINT_ITERATIONS, 2, a.id, a.key, b.id, b.key);
    const lsFooled = ls.Fingerprint.new(FINGERPRINT_ITERATIONS, 2, b.id, b.lsKey, a.id, m.lsKey);
    assert.notEqual(ours.displayable.toString(), lsFooled.displayableFingerprint().toString());
    assert.equal(ours.scannable.compare(lsFooled.scannableFingerprint().toBuffer()), false);

    const lsV1 = ls.Fingerprint.new(FINGERPRINT_ITERATIONS, 1, b.id, b.lsKey, a.id, a.lsKey);
    assert.throws(() => ours.scannable.compare(lsV1.scannableFingerprint().toBuffer()), FingerprintVersionMismatchError);
    assert.throws(() => lsV1.scannableFingerprint().compare(ls.ScannableFingerprint._fromBuffer(u8(ours.scannable.serialize()))));
  });
});
