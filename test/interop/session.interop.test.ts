// 1:1 sessions between libsignal-client 0.90.0 (the oracle) and Parley, in Node only. Every scenario runs
// with Parley initiating to libsignal and libsignal initiating to Parley; where the expected behaviour is
// not obvious, the same scenario also runs libsignal <-> libsignal and the transcripts must be equal.
// Random choices (delivery order, drops, plaintexts) come from a seeded Prng; the seed is printed, and
// PARLEY_TEST_SEED=<seed> reproduces a run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ls from '@signalapp/libsignal-client';
import {
  CiphertextMessageType,
  PreKeySignalMessage,
  ProtocolError,
  ProtocolErrorCode,
  PublicKey,
  toHex,
  UntrustedIdentityError,
  utf8,
} from '../../src/protocol/index.ts';
import { runConversation } from '../support/conversation.ts';
import { chooseSeed, Prng } from '../support/prng.ts';
import { runScript, SCENARIOS } from '../support/scenarios.ts';
import { errorKind, LibsignalParty, ParleyParty, type BundleBytes, type Party, type Wire } from './support/parties.ts';
import { flip } from '../support/tamper.ts';

const SEED = chooseSeed(process.env);
console.log(`# session interop seed ${SEED} (PARLEY_TEST_SEED=${SEED} reproduces this run)`);

type Kind = 'libsignal' | 'parley';
const make = async (kind: Kind, name: string): Promise<Party> => (kind === 'libsignal' ? LibsignalParty.create(name) : ParleyParty.create(name));
/** [initiator, responder] */
const MIXED: readonly [Kind, Kind][] = [
  ['parley', 'libsignal'],
  ['libsignal', 'parley'],
];
const ALL: readonly [Kind, Kind][] = [['libsignal', 'libsignal'], ...MIXED, ['parley', 'parley']];
const text = new TextDecoder();
const T0 = Date.UTC(2025, 0, 1);

async function roundTrip(from: Party, to: Party, message: string): Promise<Wire> {
  const wire = await from.encrypt(to.name, utf8(message));
  assert.equal(text.decode(await to.decrypt(from.name, wire)), message, `${from.kind} -> ${to.kind}`);
  return wire;
}

/** 'ok' or the implementation-independent error kind; the error itself is passed to `seen`. */
async function outcome(operation: () => Promise<unknown>, seen?: (err: unknown) => void): Promise<string> {
  try {
    await operation();
    return 'ok';
  } catch (err) {
    seen?.(err);
    return errorKind(err);
  }
}


describe('session set-up across implementations', () => {
  for (const [initiator, responder] of MIXED) {
    for (const oneTime of [true, false]) {
      it(`${initiator} initiates to ${responder} (${oneTime ? 'with' : 'without'} a one-time prekey)`, async () => {
        const a = await make(initiator, 'alice');
        const b = await make(responder, 'bob');
        const bundle = await b.bundle({ oneTime });
        await a.processBundle('bob', bundle);
        const first = await a.encrypt('bob', utf8('first'));
        const second = await a.encrypt('bob', utf8('second'));
        assert.equal(first.type, CiphertextMessageType.PreKey);
        assert.equal(second.type, CiphertextMessageType.PreKey);
        const parsed = PreKeySignalMessage.deserialize(first.body);
        assert.equal(parsed.preKeyId, oneTime ? bundle.preKeyId : undefined);
        assert.equal(parsed.signedPreKeyId, bundle.signedPreKeyId);
        assert.equal(parsed.kyberPreKeyId, bundle.kyberPreKeyId);
        assert.equal(toHex(parsed.identityKey.serialized), toHex(a.identityKey));
        // Out of order: the second PreKey message sets the session up, the first then decrypts from it.
        assert.equal(text.decode(await b.decrypt('alice', second)), 'second');
        assert.equal(text.decode(await b.decrypt('alice', first)), 'first');
        const reply = await roundTrip(b, a, 'reply');
        assert.equal(reply.type, CiphertextMessageType.Whisper);
        const next = await roundTrip(a, b, 'acknowledged');
        assert.equal(next.type, CiphertextMessageType.Whisper);
        assert.equal(await outcome(() => b.decrypt('alice', first)), 'duplicate');
      });
    }
  }
});

describe('1,000-message conversations (direction changes, shuffled batches, held-back, dropped and repeated messages)', () => {
  for (const [index, [initiator, responder]] of MIXED.entries()) {
    const seed = (SEED + index) >>> 0;
    it(`${initiator} initiates to ${responder} (seed ${seed})`, async () => {
      const a = await make(initiator, 'alice');
      const b = await make(responder, 'bob');
      const bundle = await b.bundle();
      await a.processBundle('bob', bundle);
      const stats = await runConversation(a, b, {
        rng: new Prng(seed),
        messages: 1000,
        isDuplicate: (err) => errorKind(err) === 'duplicate',
        initiatorChains: [toHex(bundle.signedPreKey)],
      });
      console.log(`# ${initiator} -> ${responder}: ${JSON.stringify(stats)}`);
      assert.equal(stats.sent, 1000);
      assert.equal(stats.delivered + stats.dropped, 1000);
      assert.ok(stats.dropped > 0 && stats.late > 0 && stats.outOfOrder > 0 && stats.duplicatesRefused > 0, JSON.stringify(stats));
      assert.ok(stats.largestBatch >= 10, JSON.stringify(stats));
    });
  }
});

describe('scripted scenarios: every pairing gives the libsignal <-> libsignal transcript', () => {
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    it(name, async () => {
      const transcripts = new Map<string, string[]>();
      for (const [kindA, kindB] of ALL) {
        const transcript = await runScript({ A: await make(kindA, 'alice'), B: await make(kindB, 'bob') }, scenario.script, errorKind);
        transcripts.set(`${kindA} <-> ${kindB}`, transcript);
      }
      const expected = transcripts.get('libsignal <-> libsignal');
      // The transcript written down in test/support/scenarios.ts (used by the browser unit tests) is libsignal's.
      assert.deepEqual(expected, scenario.libsignal, 'libsignal <-> libsignal');
      for (const [pairing, transcript] of transcripts) assert.deepEqual(transcript, expected, pairing);
    });
  }
});

describe('prekey signatures', () => {
  for (const [signerKind, verifierKind] of MIXED) {
    it(`${signerKind} signs, ${verifierKind} verifies; tampered signatures fail on both`, async () => {
      const signer = await make(signerKind, 'signer');
      const verifier = await make(verifierKind, 'verifier');
      const bundle = await signer.bundle();
      const rng = new Prng(SEED ^ 0x51);
      const signed: [string, Uint8Array, Uint8Array][] = [
        ['signed prekey', bundle.signedPreKey, bundle.signedPreKeySignature],
        ['Kyber prekey', bundle.kyberPreKey, bundle.kyberPreKeySignature],
      ];
      for (let i = 0; i < 5; i++) {
        const message = rng.bytes(rng.int(0, 2000));
        signed.push([`${message.length} random bytes`, message, signer.sign(message)]);
      }
      for (const [what, message, signature] of signed) {
        for (const v of [verifier, signer]) {
          assert.equal(await v.verify(signer.identityKey, message, signature), true, `${what} on ${v.kind}`);
          assert.equal(await v.verify(signer.identityKey, message, flip(signature, 7)), false, `tampered R of ${what} on ${v.kind}`);
          assert.equal(await v.verify(signer.identityKey, message, flip(signature, 40)), false, `tampered s of ${what} on ${v.kind}`);
          if (message.length > 0) assert.equal(await v.verify(signer.identityKey, flip(message, 0), signature), false, `tampered ${what} on ${v.kind}`);
          assert.equal(await v.verify(verifier.identityKey, message, signature), false, `${what} under another key on ${v.kind}`);
        }
      }
      const tampered: [string, BundleBytes][] = [
        ['signed prekey signature', { ...bundle, signedPreKeySignature: flip(bundle.signedPreKeySignature, 3) }],
        ['Kyber prekey signature', { ...bundle, kyberPreKeySignature: flip(bundle.kyberPreKeySignature, 3) }],
        ['signed prekey', { ...bundle, signedPreKey: flip(bundle.signedPreKey, 3) }],
      ];
      for (const [what, b] of tampered) {
        assert.equal(await outcome(() => verifier.processBundle('signer', b)), 'signature', `${verifierKind} processing a bundle with a tampered ${what}`);
      }
      await verifier.processBundle('signer', bundle);
      await roundTrip(verifier, signer, 'the genuine bundle works');
    });
  }
});

describe('untrusted identity after a peer re-registers', () => {
  /** Runs the story and returns its transcript; checks the errors' types on the way. */
  async function story(kindA: Kind, kindB: Kind): Promise<string[]> {
    const log: string[] = [];
    const alice = await make(kindA, 'alice');
    const oldBob = await make(kindB, 'bob');
    const untrusted = (err: unknown): void => {
      if (kindA === 'parley') {
        assert.ok(err instanceof UntrustedIdentityError, `parley raised ${String(err)}`);
        assert.equal(err.code, ProtocolErrorCode.UntrustedIdentity);
        assert.equal(err.code, 'PROTOCOL_UNTRUSTED_IDENTITY');
      } else {
        assert.ok(err instanceof ls.LibSignalErrorBase && err.is(ls.ErrorCode.UntrustedIdentity), `libsignal raised ${String(err)}`);
      }
    };
    await alice.processBundle('bob', await oldBob.bundle());
    await roundTrip(alice, oldBob, 'hello');
    await roundTrip(oldBob, alice, 'hi');
    const lateFromOldBob = await oldBob.encrypt('alice', utf8('late, old identity'));

    const newBob = await make(kindB, 'bob');
    log.push(`alice processes the new bundle: ${await outcome(async () => alice.processBundle('bob', await newBob.bundle()), untrusted)}`);
    await newBob.processBundle('alice', await alice.bundle());
    const fromNewBob = await newBob.encrypt('alice', utf8('new phone'));
    log.push(`alice decrypts the new identity: ${await outcome(() => alice.decrypt('bob', fromNewBob), untrusted)}`);
    log.push(`alice encrypts on the old session: ${await outcome(() => alice.encrypt('bob', utf8('still there?')))}`);

    await alice.trustIdentity('bob', newBob.identityKey);
    log.push(`after saveIdentity, alice encrypts on the old session: ${await outcome(() => alice.encrypt('bob', utf8('old session')), untrusted)}`);
    log.push(`after saveIdentity, a late message of the old identity: ${await outcome(() => alice.decrypt('bob', lateFromOldBob), untrusted)}`);
    log.push(`after saveIdentity, alice decrypts the new identity: ${await outcome(async () => assert.equal(text.decode(await alice.decrypt('bob', fromNewBob)), 'new phone'))}`);
    log.push(`alice -> new bob: ${await outcome(() => roundTrip(alice, newBob, 'welcome back'))}`);
    log.push(`new bob -> alice: ${await outcome(() => roundTrip(newBob, alice, 'thanks'))}`);
    return log;
  }

  const EXPECTED = [
    'alice processes the new bundle: untrusted',
    'alice decrypts the new identity: untrusted',
    'alice encrypts on the old session: ok',
    'after saveIdentity, alice encrypts on the old session: untrusted',
    'after saveIdentity, a late message of the old identity: untrusted',
    'after saveIdentity, alice decrypts the new identity: ok',
    'alice -> new bob: ok',
    'new bob -> alice: ok',
  ];

  for (const [kindA, kindB] of ALL) {
    it(`${kindA} alice, ${kindB} bob`, async () => {
      assert.deepEqual(await story(kindA, kindB), EXPECTED);
    });
  }
});

describe('base keys and stale sessions', () => {
  const P = 2n ** 255n - 19n;
  const le = (b: Uint8Array): bigint => b.reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n);
  const toLe = (n: bigint): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
  const inverse = (u: bigint): bigint => {
    let [result, base, e] = [1n, u % P, P - 2n];
    for (; e > 0n; e >>= 1n, base = (base * base) % P) if (e & 1n) result = (result * base) % P;
    return result;
  };

  for (const responder of ['libsignal', 'parley'] as const) {
    it(`a PreKey message replayed with its base key moved by a low-order point is refused by ${responder}`, async () => {
      const alice = await make('libsignal', 'alice');
      const bob = await make(responder, 'bob');
      await alice.processBundle('bob', await bob.bundle({ oneTime: false }));
      const wire = await roundTrip(alice, bob, 'only once');
      const m = PreKeySignalMessage.deserialize(wire.body);
      const replay = PreKeySignalMessage.create({
        messageVersion: m.messageVersion,
        registrationId: m.registrationId,
        preKeyId: m.preKeyId,
        signedPreKeyId: m.signedPreKeyId,
        kyberPreKeyId: m.kyberPreKeyId as number,
        kyberCiphertext: m.kyberCiphertext as Uint8Array,
        baseKey: PublicKey.fromRaw(toLe(inverse(le(m.baseKey.raw)))),
        identityKey: m.identityKey,
        message: m.message,
      });
      let caught: unknown;
      assert.equal(await outcome(() => bob.decrypt('alice', { type: CiphertextMessageType.PreKey, body: replay.serialized }), (e) => (caught = e)), 'fail');
      if (responder === 'parley') assert.ok(ProtocolError.is(caught, ProtocolErrorCode.InvalidMessage), String(caught));
    });
  }

  for (const initiator of ['libsignal', 'parley'] as const) {
    it(`${initiator} stops sending on a PreKey session unanswered for more than 30 days`, async () => {
      const alice = await make(initiator, 'alice');
      const bob = await make(initiator === 'parley' ? 'libsignal' : 'parley', 'bob');
      await alice.processBundle('bob', await bob.bundle(), T0);
      const boundary = T0 + 30 * 24 * 60 * 60 * 1000;
      const atBoundary = await alice.encrypt('bob', utf8('day 30'), boundary);
      let caught: unknown;
      assert.equal(await outcome(() => alice.encrypt('bob', utf8('day 30 + 1 s'), boundary + 1000), (e) => (caught = e)), 'fail');
      if (initiator === 'parley') assert.ok(ProtocolError.is(caught, ProtocolErrorCode.SessionExpired), String(caught));
      else assert.match(String(caught), /session/i);
      assert.equal(text.decode(await bob.decrypt('alice', atBoundary)), 'day 30');
      await roundTrip(bob, alice, 'answered');
      const after = await alice.encrypt('bob', utf8('day 31'), boundary + 24 * 60 * 60 * 1000);
      assert.equal(after.type, CiphertextMessageType.Whisper);
      assert.equal(text.decode(await bob.decrypt('alice', after)), 'day 31');
    });
  }
});
