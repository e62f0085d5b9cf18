// Generates the committed 1:1-session test vectors (run once; the tests only read the output):
//
//   node --import tsx test/vectors/generate-session-vectors.ts
//
// test/vectors/session-libsignal.json: made by libsignal-client 0.90.0 (the oracle), so the isomorphic unit
//   tests check wire compatibility in the browser too:
//   - XEdDSA signatures by libsignal keys, a libsignal-accepted non-canonical (s + L) variant, X25519
//     agreements, and libsignal's verdict on low-order agreement inputs;
//   - conversations in which a libsignal Alice processes the bundle of a Bob whose keys this script makes
//     with Parley's code, and sends PreKey messages (stored in a shuffled delivery order). Bob's private keys
//     are stored so that the tests can rebuild him and decrypt.
// test/vectors/kyber1024-kat.json: the first entries of the NIST round-3 Kyber1024 KAT that crystals-kyber
//   ships (PQCkemKAT_3168.rsp), with the encapsulation randomness recomputed with NIST's AES-256-CTR-DRBG and
//   the round-3 implicit-rejection secret of two tampered ciphertexts (SHAKE-256(z || SHA3-256(c'))).
//
// Node only (libsignal, node:crypto, node:fs). Re-running replaces the fixtures with fresh random ones.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as ls from '@signalapp/libsignal-client';
import { NodeCryptoProvider } from '../../src/node/crypto-provider.ts';
import {
  KeyPair,
  KyberPreKeyRecord,
  PreKeyRecord,
  SignedPreKeyRecord,
  generateRegistrationId,
  toHex,
  utf8,
} from '../../src/protocol/index.ts';
import { LibsignalParty } from '../interop/support/parties.ts';
import { katRandomness, readKyber1024Kat } from '../support/kyber-kat.ts';
import { bigIntToLe, leToBigInt } from '../support/tamper.ts';

const crypto = new NodeCryptoProvider();
const here = new URL('.', import.meta.url);
const GENERATED_BY = 'test/vectors/generate-session-vectors.ts';
const KAT_ENTRIES = 5;
/** When the fixtures' keys were "made" (the records carry a timestamp; nothing depends on it). */
const MADE_AT = Date.UTC(2025, 0, 1);
const u8 = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);
const L = 2n ** 252n + 27742317777372353535851937790883648493n;


// ---- XEdDSA and X25519 from libsignal

function xeddsaVectors(): object[] {
  const messages = [new Uint8Array(0), utf8('Parley'), ls.PrivateKey.generate().getPublicKey().serialize(), ls.KEMKeyPair.generate().getPublicKey().serialize()];
  return messages.map((message) => {
    const key = ls.PrivateKey.generate();
    return {
      privateKey: toHex(key.serialize()),
      publicKey: toHex(key.getPublicKey().serialize()),
      message: toHex(message),
      signature: toHex(key.sign(u8(message))),
    };
  });
}

/** A libsignal signature with s replaced by s + L (same sign bit): libsignal reduces s mod L and accepts it. */
function malleatedVectors(): object[] {
  return [utf8('malleable'), new Uint8Array(0)].map((message) => {
    const key = ls.PrivateKey.generate();
    const signature = key.sign(u8(message));
    const signBit = (signature[63] as number) & 0x80;
    const s = leToBigInt(signature.subarray(32)) & ((1n << 255n) - 1n);
    const sPlusL = bigIntToLe(s + L, 32);
    sPlusL[31] = (sPlusL[31] as number) | signBit;
    const malleated = new Uint8Array(signature);
    malleated.set(sPlusL, 32);
    return {
      publicKey: toHex(key.getPublicKey().serialize()),
      message: toHex(message),
      signature: toHex(malleated),
      libsignalVerifies: key.getPublicKey().verify(u8(message), malleated),
    };
  });
}

function agreementVectors(): object[] {
  return [0, 1, 2].map(() => {
    const ours = ls.PrivateKey.generate();
    const theirs = ls.PrivateKey.generate().getPublicKey();
    return { privateKey: toHex(ours.serialize()), publicKey: toHex(theirs.serialize()), shared: toHex(ours.agree(theirs)) };
  });
}

/** Low-order (and non-canonical low-order) u-coordinates: X25519 with any clamped scalar gives all zeros. */
const LOW_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

function lowOrderVerdicts(): object[] {
  const ours = ls.PrivateKey.generate();
  return LOW_ORDER_POINTS.map((u) => {
    let libsignalRejects = false;
    try {
      ours.agree(ls.PublicKey.deserialize(u8(Buffer.from(`05${u}`, 'hex'))));
    } catch {
      libsignalRejects = true;
    }
    return { publicKey: `05${u}`, libsignalRejects };
  });
}

// ---- conversations: libsignal Alice -> Bob made with Parley's code

const PLAINTEXTS = [
  '',
  'a',
  '15 bytes: ABCDE',
  '16 bytes: ABCDEF',
  '17 bytes: ABCDEFG',
  'Grüße aus Parley ✓ — a longer message, so that the body spans several AES blocks. '.repeat(4),
];
/** The order in which the messages are delivered (indices into the send order). */
const DELIVERY_ORDER = [3, 0, 5, 1, 4, 2];

async function conversation(withOneTimePreKey: boolean): Promise<object> {
  const identity = await KeyPair.generate(crypto);
  const registrationId = generateRegistrationId(crypto);
  const signedPreKey = await SignedPreKeyRecord.generate(crypto, identity, 4242, MADE_AT);
  const kyberPreKey = KyberPreKeyRecord.generate(crypto, identity, 777, MADE_AT);
  const oneTimePreKey = await PreKeyRecord.generate(crypto, 31337);

  const alice = LibsignalParty.create('alice');
  await alice.processBundle(
    'bob',
    {
      registrationId,
      deviceId: 1,
      ...(withOneTimePreKey ? { preKeyId: oneTimePreKey.id, preKey: oneTimePreKey.keyPair.publicKey.serialized } : {}),
      signedPreKeyId: signedPreKey.id,
      signedPreKey: signedPreKey.keyPair.publicKey.serialized,
      signedPreKeySignature: signedPreKey.signature,
      kyberPreKeyId: kyberPreKey.id,
      kyberPreKey: kyberPreKey.keyPair.publicKey.serialize(),
      kyberPreKeySignature: kyberPreKey.signature,
      identityKey: identity.publicKey.serialized,
    },
    MADE_AT,
  );
  const sent: { index: number; type: number; body: string; plaintext: string }[] = [];
  for (const [index, text] of PLAINTEXTS.entries()) {
    const wire = await alice.encrypt('bob', utf8(text), MADE_AT);
    sent.push({ index, type: wire.type, body: toHex(wire.body), plaintext: toHex(utf8(text)) });
  }
  return {
    description: `libsignal 0.90.0 Alice processes Bob's bundle (${withOneTimePreKey ? 'with' : 'without'} a one-time prekey) and sends ${PLAINTEXTS.length} PreKey messages; they are listed in delivery order (index is the send order)`,
    bob: {
      name: 'bob',
      deviceId: 1,
      registrationId,
      identityPrivateKey: toHex(identity.privateKey.serialize()),
      identityKey: toHex(identity.publicKey.serialized),
      signedPreKey: {
        id: signedPreKey.id,
        privateKey: toHex(signedPreKey.keyPair.privateKey.serialize()),
        publicKey: toHex(signedPreKey.keyPair.publicKey.serialized),
        signature: toHex(signedPreKey.signature),
      },
      kyberPreKey: {
        id: kyberPreKey.id,
        secretKey: toHex(kyberPreKey.keyPair.secretKey.serialize()),
        publicKey: toHex(kyberPreKey.keyPair.publicKey.serialize()),
        signature: toHex(kyberPreKey.signature),
      },
      oneTimePreKey: withOneTimePreKey
        ? { id: oneTimePreKey.id, privateKey: toHex(oneTimePreKey.keyPair.privateKey.serialize()), publicKey: toHex(oneTimePreKey.keyPair.publicKey.serialized) }
        : null,
    },
    alice: { name: 'alice', deviceId: 1, registrationId: alice.identityStore.registrationId, identityKey: toHex(alice.identityKey) },
    messages: DELIVERY_ORDER.map((i) => sent[i]),
  };
}

// ---- Kyber1024 KAT extract

function katVectors(): object {
  const sha3 = (b: Uint8Array): Buffer => createHash('sha3-256').update(b).digest();
  const shake = (b: Uint8Array): Buffer => createHash('shake256', { outputLength: 32 }).update(b).digest();
  const entries = readKyber1024Kat()
    .slice(0, KAT_ENTRIES)
    .map((e) => {
      const { z, m0 } = katRandomness(e.seed);
      if (toHex(z) !== e.sk.slice(-64).toLowerCase()) throw new Error(`DRBG does not reproduce z of KAT entry ${e.count}`);
      const ct = Buffer.from(e.ct, 'hex');
      const rejection = [0, ct.length - 1].map((flip) => {
        const tampered = Buffer.from(ct);
        tampered[flip] = (tampered[flip] as number) ^ 0x01;
        return { flip, ss: toHex(shake(Buffer.concat([z, sha3(tampered)]))) };
      });
      return {
        count: e.count,
        seed: e.seed.toLowerCase(),
        pk: e.pk.toLowerCase(),
        sk: e.sk.toLowerCase(),
        ct: e.ct.toLowerCase(),
        ss: e.ss.toLowerCase(),
        encapsulationRandomness: toHex(m0),
        rejection,
      };
    });
  return {
    description:
      'Round-3 CRYSTALS-Kyber1024 known-answer tests (raw keys and ciphertexts, without libsignal\'s 0x08 type byte)',
    source: `NIST PQC round-3 KAT file PQCkemKAT_3168.rsp as shipped in node_modules/crystals-kyber (5.1.0), entries 0-${KAT_ENTRIES - 1}; pk, sk, ct, ss and seed copied verbatim (lower-cased)`,
    generatedBy: GENERATED_BY,
    derived: {
      encapsulationRandomness:
        'm0: the third 32-byte output of NIST AES-256-CTR-DRBG seeded with `seed` (after keygen\'s d and z); round-3 encapsulation uses m = SHA3-256(m0)',
      rejection: 'ciphertext with byte `flip` XORed with 0x01; ss = SHAKE-256(z || SHA3-256(tampered ct)), z = last 32 bytes of sk (round-3 implicit rejection)',
    },
    entries,
  };
}

const session = {
  description: "Fixtures made by @signalapp/libsignal-client 0.90.0 for Parley's 1:1 session tests (see generatedBy)",
  generatedBy: GENERATED_BY,
  libsignalVersion: '0.90.0',
  xeddsa: xeddsaVectors(),
  xeddsaMalleated: malleatedVectors(),
  agreement: agreementVectors(),
  agreementLowOrder: lowOrderVerdicts(),
  conversations: [await conversation(true), await conversation(false)],
};

writeFileSync(new URL('session-libsignal.json', here), `${JSON.stringify(session, null, 2)}\n`);
writeFileSync(new URL('kyber1024-kat.json', here), `${JSON.stringify(katVectors(), null, 2)}\n`);
console.log('wrote test/vectors/session-libsignal.json and test/vectors/kyber1024-kat.json');
