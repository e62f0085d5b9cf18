// Tests of safety numbers (src/protocol/fingerprint.ts) against fingerprints computed by libsignal 0.90
// (test/vectors/sender-keys.json) and libsignal's own fingerprint tests. Pure: no libsignal import, so
// `npm run test:browser` runs this same file in Chromium against the WebCrypto provider.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { provider, providerName } from '../../support/provider.ts';
import vectors from '../../vectors/sender-keys.json' with { type: 'json' };
import { concatBytes, fromHex, toHex, utf8 } from '../../../src/protocol/bytes.ts';
import { ProtocolError, ProtocolErrorCode } from '../../../src/protocol/errors.ts';
import {
  FINGERPRINT_ITERATIONS,
  FINGERPRINT_VERSION,
  Fingerprint,
  FingerprintVersionMismatchError,
  ScannableFingerprint,
} from '../../../src/protocol/fingerprint.ts';
import { KeyPair, PublicKey } from '../../../src/protocol/keys.ts';

const crypto = provider;
// libsignal's fingerprint test keys (rust/protocol/src/fingerprint.rs).
const ALICE_KEY = PublicKey.deserialize(fromHex('0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868'));
const BOB_KEY = PublicKey.deserialize(fromHex('05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b'));
const ALICE_ID = utf8('+14152222222');
const BOB_ID = utf8('+14153333333');

function expectCode(code: ProtocolErrorCode): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe(`Fingerprint (${providerName})`, () => {
  it('matches libsignal on every fixture, from both sides', async () => {
    for (const v of vectors.fingerprints) {
      const localKey = PublicKey.deserialize(fromHex(v.localKey));
      const remoteKey = PublicKey.deserialize(fromHex(v.remoteKey));
      const ours = await Fingerprint.create(crypto, v.iterations, v.version, fromHex(v.localIdentifier), localKey, fromHex(v.remoteIdentifier), remoteKey);
      const theirs = await Fingerprint.create(crypto, v.iterations, v.version, fromHex(v.remoteIdentifier), remoteKey, fromHex(v.localIdentifier), localKey);
      assert.equal(ours.displayable.toString(), v.displayable);
      assert.equal(theirs.displayable.toString(), v.displayable);
      assert.equal(toHex(ours.scannable.serialize()), v.localScannable);
      assert.equal(toHex(theirs.scannable.serialize()), v.remoteScannable);
      assert.equal(ours.scannable.compare(fromHex(v.remoteScannable)), true);
      assert.equal(theirs.scannable.compare(ScannableFingerprint.deserialize(fromHex(v.localScannable))), true);
      assert.equal(ours.scannable.compare(fromHex(v.localScannable)), false, 'our own code is not the mirror of ours');
    }
  });

  it("reproduces libsignal's published version 1 and 2 test vectors", async () => {
    const a1 = await Fingerprint.create(crypto, 5200, 1, ALICE_ID, ALICE_KEY, BOB_ID, BOB_KEY);
    const a2 = await Fingerprint.create(crypto, 5200, 2, ALICE_ID, ALICE_KEY, BOB_ID, BOB_KEY);
    const b2 = await Fingerprint.create(crypto, 5200, 2, BOB_ID, BOB_KEY, ALICE_ID, ALICE_KEY);
    assert.equal(a1.displayable.toString(), '300354477692869396892869876765458257569162576843440918079131');
    assert.equal(a2.displayable.toString(), a1.displayable.toString());
    assert.equal(
      toHex(a1.scannable.serialize()),
      '080112220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d',
    );
    assert.equal(
      toHex(a2.scannable.serialize()),
      '080212220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d',
    );
    assert.equal(
      toHex(b2.scannable.serialize()),
      '080212220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d1a220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df',
    );
  });

  it('encodes the scannable protobuf as libsignal (fingerprint_encodings)', () => {
    const f = ScannableFingerprint.fromHashes(2, new Uint8Array(32).fill(0x12), new Uint8Array(32).fill(0xba));
    assert.equal(toHex(f.serialize()), `080212220a20${'12'.repeat(32)}1a220a20${'ba'.repeat(32)}`);
    const parsed = ScannableFingerprint.deserialize(f.serialize());
    assert.equal(parsed.version, 2);
    assert.equal(toHex(parsed.localFingerprint), '12'.repeat(32));
    assert.equal(toHex(parsed.remoteFingerprint), 'ba'.repeat(32));
  });

  it('differs, and compares unequal, for another key (a man in the middle) or another identifier', async () => {
    const [a, b, m] = await Promise.all([KeyPair.generate(crypto), KeyPair.generate(crypto), KeyPair.generate(crypto)]);
    const aliceView = await Fingerprint.create(crypto, 1024, FINGERPRINT_VERSION, ALICE_ID, a.publicKey, BOB_ID, b.publicKey);
    const bobView = await Fingerprint.create(crypto, 1024, FINGERPRINT_VERSION, BOB_ID, b.publicKey, ALICE_ID, a.publicKey);
    const bobFooled = await Fingerprint.create(crypto, 1024, FINGERPRINT_VERSION, BOB_ID, b.publicKey, ALICE_ID, m.publicKey);
    const otherId = await Fingerprint.create(crypto, 1024, FINGERPRINT_VERSION, utf8('+14150000000'), b.publicKey, ALICE_ID, a.publicKey);
    assert.equal(aliceView.displayable.toString(), bobView.displayable.toString());
    assert.match(aliceView.displayable.toString(), /^\d{60}$/);
    assert.equal(aliceView.scannable.compare(bobView.scannable), true);
    assert.equal(bobView.scannable.compare(aliceView.scannable.serialize()), true);
    assert.notEqual(bobFooled.displayable.toString(), aliceView.displayable.toString());
    assert.equal(aliceView.scannable.compare(bobFooled.scannable), false);
    assert.equal(bobFooled.scannable.compare(aliceView.scannable), false);
    assert.notEqual(otherId.displayable.toString(), aliceView.displayable.toString());
    assert.equal(aliceView.scannable.compare(otherId.scannable), false);
  });

  it('refuses to compare across versions with FingerprintVersionMismatchError', async () => {
    const v1 = await Fingerprint.create(crypto, FINGERPRINT_ITERATIONS, 1, ALICE_ID, ALICE_KEY, BOB_ID, BOB_KEY);
    const v2 = await Fingerprint.create(crypto, FINGERPRINT_ITERATIONS, 2, BOB_ID, BOB_KEY, ALICE_ID, ALICE_KEY);
    assert.throws(
      () => v2.scannable.compare(v1.scannable),
      (err: unknown) => err instanceof FingerprintVersionMismatchError && err.theirs === 1 && err.ours === 2 && err.is(ProtocolErrorCode.LegacyVersion),
    );
    assert.throws(
      () => v1.scannable.compare(v2.scannable.serialize()),
      (err: unknown) => err instanceof FingerprintVersionMismatchError && err.theirs === 2 && err.ours === 1 && err.is(ProtocolErrorCode.UnrecognizedVersion),
    );
    // An absent version reads as 0, as in libsignal.
    const noVersion = v2.scannable.serialize().subarray(2);
    assert.throws(() => v1.scannable.compare(noVersion), (err: unknown) => err instanceof FingerprintVersionMismatchError && err.theirs === 0);
    assert.throws(() => ScannableFingerprint.deserialize(noVersion), expectCode(ProtocolErrorCode.InvalidMessage));
  });

  it('refuses scannable bytes that do not decode or lack a side with InvalidMessage', async () => {
    const f = await Fingerprint.create(crypto, 1024, 2, ALICE_ID, ALICE_KEY, BOB_ID, BOB_KEY);
    const good = f.scannable.serialize();
    const bad: Uint8Array[] = [
      Uint8Array.of(0xff, 0xff, 0xff),
      good.subarray(0, good.length - 1),
      Uint8Array.of(0x08, 0x02),
      good.subarray(0, 2 + 36), // version and local side only
      concatBytes(good, new Uint8Array(1024)),
    ];
    for (const bytes of bad) {
      assert.throws(() => ScannableFingerprint.deserialize(bytes), expectCode(ProtocolErrorCode.InvalidMessage), toHex(bytes));
      assert.throws(() => f.scannable.compare(bytes), expectCode(ProtocolErrorCode.InvalidMessage), toHex(bytes));
    }
    // Sides of another length: refused by deserialize, unequal in compare (as libsignal).
    const oddLength = concatBytes(
      Uint8Array.of(0x08, 0x02, 0x12, 0x21, 0x0a, 0x1f),
      f.scannable.remoteFingerprint.subarray(0, 31),
      Uint8Array.of(0x1a, 0x22, 0x0a, 0x20),
      f.scannable.localFingerprint,
    );
    assert.throws(() => ScannableFingerprint.deserialize(oddLength), expectCode(ProtocolErrorCode.InvalidMessage));
    assert.equal(f.scannable.compare(oddLength), false);
  });

  it('refuses iteration counts libsignal refuses with InvalidArgument', async () => {
    for (const iterations of [0, 1, 1_000_001, 2.5]) {
      await assert.rejects(Fingerprint.create(crypto, iterations, 2, ALICE_ID, ALICE_KEY, BOB_ID, BOB_KEY), expectCode(ProtocolErrorCode.InvalidArgument));
    }
    const two = await Fingerprint.create(crypto, 2, 2, ALICE_ID, ALICE_KEY, BOB_ID, BOB_KEY);
    assert.match(two.displayable.toString(), /^\d{60}$/);
  });
});
