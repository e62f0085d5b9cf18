// 1:1 sessions, Parley <-> Parley: set-up, long conversations over a reordering/lossy network, simultaneous
// initiation, re-initiation, every refusal with its exact error code (each followed by a check that the
// stored record did not change and that the session still works both ways), record persistence, and the
// replay of libsignal-made PreKey messages from test/vectors/session-libsignal.json.
// Isomorphic: runs in Node and in headless Chromium (WebCrypto provider); only src/protocol and test/support.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  bytesEqual,
  CiphertextMessageType,
  fromHex,
  KemKeyPair,
  KemPublicKey,
  KemSecretKey,
  KeyPair,
  KyberPreKeyRecord,
  MAX_FORWARD_JUMPS,
  MAX_MESSAGE_KEYS,
  MAX_UNACKNOWLEDGED_SESSION_AGE_MS,
  PreKeyRecord,
  PreKeySignalMessage,
  PrivateKey,
  ProtocolError,
  ProtocolErrorCode,
  PublicKey,
  SessionRecord,
  type SessionState,
  SignalMessage,
  SignedPreKeyRecord,
  toHex,
  UntrustedIdentityError,
  utf8,
} from '../../../src/protocol/index.ts';
import fixtures from '../../vectors/session-libsignal.json' with { type: 'json' };
import { runConversation } from '../../support/conversation.ts';
import { expectCode } from '../../support/expect.ts';
import { ParleyPeer, T0, type Wire } from '../../support/parley-peer.ts';
import { Prng } from '../../support/prng.ts';
import { provider } from '../../support/provider.ts';
import { flip, torsionTweaked } from '../../support/tamper.ts';
import { runScript, SCENARIOS } from '../../support/scenarios.ts';

const Code = ProtocolErrorCode;
const text = new TextDecoder();
const DAY_MS = 24 * 60 * 60 * 1000;

async function peers(): Promise<{ alice: ParleyPeer; bob: ParleyPeer }> {
  return { alice: await ParleyPeer.create(provider, 'alice'), bob: await ParleyPeer.create(provider, 'bob') };
}

/** Sends `message` from `from` to `to` and checks it decrypts to itself. */
async function roundTrip(from: ParleyPeer, to: ParleyPeer, message: string): Promise<Wire> {
  const wire = await from.encrypt(to.name, utf8(message));
  assert.equal(text.decode(await to.decrypt(from.name, wire)), message);
  return wire;
}

/** The session still works: one message each way decrypts. */
async function assertWorks(a: ParleyPeer, b: ParleyPeer, tag: string): Promise<void> {
  await roundTrip(a, b, `${tag}: ${a.name} -> ${b.name}`);
  await roundTrip(b, a, `${tag}: ${b.name} -> ${a.name}`);
}

/** Alice and Bob with a session acknowledged both ways (Alice sent a PreKey message, Bob answered). */
async function established(options: { oneTime?: boolean } = {}): Promise<{ alice: ParleyPeer; bob: ParleyPeer }> {
  const { alice, bob } = await peers();
  await alice.processBundle('bob', await bob.bundle(options));
  await roundTrip(alice, bob, 'hello');
  await roundTrip(bob, alice, 'hi');
  await roundTrip(alice, bob, 'how are you');
  return { alice, bob };
}

function assertSameBytes(actual: Uint8Array | undefined, expected: Uint8Array | undefined, what: string): void {
  assert.ok(
    actual === expected || (actual !== undefined && expected !== undefined && bytesEqual(actual, expected)),
    `${what}: bytes differ (${actual?.length ?? 'none'} vs ${expected?.length ?? 'none'} bytes)`,
  );
}

/** Delivering `wire` to `receiver` fails with exactly `code` and leaves the stored record byte-identical. */
async function expectRefused(receiver: ParleyPeer, sender: string, wire: Wire, code: ProtocolErrorCode, what: string): Promise<ProtocolError> {
  const before = await receiver.recordBytes(sender);
  const err = await expectCode(receiver.decrypt(sender, wire), code, what);
  assertSameBytes(await receiver.recordBytes(sender), before, `${what}: the stored record changed`);
  return err;
}

function withFirstByte(bytes: Uint8Array, byte: number): Uint8Array {
  const out = bytes.slice();
  out[0] = byte;
  return out;
}

/** Re-encodes a PreKey message with some fields replaced (Parley's encoder; field order is libsignal's). */
function rewrapPreKey(wire: Wire, changes: { message?: SignalMessage; baseKey?: PublicKey; messageVersion?: number }): Wire {
  const m = PreKeySignalMessage.deserialize(wire.body);
  const rewrapped = PreKeySignalMessage.create({
    messageVersion: changes.messageVersion ?? m.messageVersion,
    registrationId: m.registrationId,
    preKeyId: m.preKeyId,
    signedPreKeyId: m.signedPreKeyId,
    kyberPreKeyId: m.kyberPreKeyId as number,
    kyberCiphertext: m.kyberCiphertext as Uint8Array,
    baseKey: changes.baseKey ?? m.baseKey,
    identityKey: m.identityKey,
    message: changes.message ?? m.message,
  });
  return { type: CiphertextMessageType.PreKey, body: rewrapped.serialized };
}


/** Moves `peer`'s sending chain for `to` forward by `steps` real chain steps (as if it had sent that many). */
async function advanceSendingChain(peer: ParleyPeer, to: string, steps: number): Promise<void> {
  const record = await peer.record(to);
  const state = record?.current;
  assert.ok(record && state);
  let key = state.senderChain.chainKey.key;
  for (let i = 0; i < steps; i++) key = await provider.hmacSha256(key, new Uint8Array([0x02]));
  state.senderChain.chainKey = { key, index: state.senderChain.chainKey.index + steps };
  await peer.setRecord(to, record);
}

describe('1:1 session set-up (Parley <-> Parley)', () => {
  for (const oneTime of [true, false]) {
    it(`initiator sends PreKey messages until answered, then Whisper (${oneTime ? 'with' : 'without'} a one-time prekey)`, async () => {
      const { alice, bob } = await peers();
      const bundle = await bob.bundle({ oneTime });
      await alice.processBundle('bob', bundle);
      const first = await alice.encrypt('bob', utf8('one'));
      const second = await alice.encrypt('bob', utf8('two'));
      assert.equal(first.type, CiphertextMessageType.PreKey);
      assert.equal(second.type, CiphertextMessageType.PreKey);
      const pk = PreKeySignalMessage.deserialize(first.body);
      assert.equal(pk.preKeyId, oneTime ? bundle.preKeyId : undefined);
      assert.equal(pk.signedPreKeyId, bob.signedPreKeyId);
      assert.equal(pk.kyberPreKeyId, bob.kyberPreKeyId);
      assert.equal(pk.registrationId, alice.registrationId);
      assert.ok(pk.identityKey.equals(alice.identity.publicKey));

      assert.equal(text.decode(await bob.decrypt('alice', second)), 'two');
      assert.equal(text.decode(await bob.decrypt('alice', first)), 'one');
      if (oneTime) await expectCode(bob.stores.preKeys.getPreKey(bundle.preKeyId as number), Code.InvalidPreKeyId, 'used one-time prekey');
      // The Kyber prekey is a last-resort key: kept.
      await bob.stores.kyberPreKeys.getKyberPreKey(bob.kyberPreKeyId);

      const reply = await bob.encrypt('alice', utf8('three'));
      assert.equal(reply.type, CiphertextMessageType.Whisper);
      assert.equal(text.decode(await alice.decrypt('bob', reply)), 'three');
      const after = await alice.encrypt('bob', utf8('four'));
      assert.equal(after.type, CiphertextMessageType.Whisper);
      assert.equal(text.decode(await bob.decrypt('alice', after)), 'four');

      const a = (await alice.record('bob'))?.current;
      const b = (await bob.record('alice'))?.current;
      assert.ok(a && b);
      assert.ok(bytesEqual(a.aliceBaseKey, b.aliceBaseKey), 'both sides name the session by Alice base key');
      assert.equal(a.remoteRegistrationId, bob.registrationId);
      assert.equal(b.remoteRegistrationId, alice.registrationId);
      assert.equal(a.pendingPreKey, undefined);
    });
  }

  it('works with the roles swapped (Bob initiates)', async () => {
    const { alice, bob } = await peers();
    await bob.processBundle('alice', await alice.bundle());
    await roundTrip(bob, alice, 'from bob');
    await assertWorks(alice, bob, 'after');
  });

  it('refuses a bundle whose signed-prekey or Kyber-prekey signature does not verify (InvalidSignature)', async () => {
    const { alice, bob } = await peers();
    const good = await bob.bundle();
    for (const [what, bundle] of [
      ['signed prekey signature', { ...good, signedPreKeySignature: flip(good.signedPreKeySignature, 5) }],
      ['Kyber prekey signature', { ...good, kyberPreKeySignature: flip(good.kyberPreKeySignature, 40) }],
      ['signed prekey', { ...good, signedPreKey: flip(good.signedPreKey, 9) }],
      ['Kyber prekey', { ...good, kyberPreKey: flip(good.kyberPreKey, 100) }],
      ['identity key', { ...good, identityKey: (await KeyPair.generate(provider)).publicKey.serialized }],
    ] as const) {
      await expectCode(alice.processBundle('bob', bundle), Code.InvalidSignature, `bundle with a tampered ${what}`);
      assert.equal(await alice.record('bob'), null, `${what}: no session stored`);
      assert.equal(await alice.stores.identity.getIdentity(alice.address('bob')), null, `${what}: no identity saved`);
    }
    await alice.processBundle('bob', good);
    await roundTrip(alice, bob, 'the untampered bundle works');
  });
});

describe('1:1 conversations over a reordering, lossy network (Parley <-> Parley)', () => {
  for (const [initiator, seed, oneTime] of [
    ['alice', 0x5eed0001, true],
    ['bob', 0x5eed0002, false],
  ] as const) {
    it(`${initiator} initiates: 250 messages, shuffled batches, held-back, dropped and repeated messages (seed ${seed})`, async () => {
      const { alice, bob } = await peers();
      const [a, b] = initiator === 'alice' ? [alice, bob] : [bob, alice];
      const bundle = await b.bundle({ oneTime });
      await a.processBundle(b.name, bundle);
      const stats = await runConversation(a, b, {
        rng: new Prng(seed),
        messages: 250,
        isDuplicate: (err) => ProtocolError.is(err, Code.DuplicateMessage),
        initiatorChains: [toHex(bundle.signedPreKey)],
      });
      assert.equal(stats.sent, 250);
      assert.ok(stats.dropped > 0 && stats.late > 0 && stats.outOfOrder > 0 && stats.duplicatesRefused > 0, JSON.stringify(stats));
    });
  }
});

describe('scripted scenarios give libsignal 0.90 transcripts (Parley <-> Parley)', () => {
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    it(name, async () => {
      const { alice, bob } = await peers();
      const transcript = await runScript({ A: alice, B: bob }, scenario.script, (err) => {
        if (!(err instanceof ProtocolError)) throw err;
        return err.is(Code.DuplicateMessage) ? 'duplicate' : err.is(Code.UntrustedIdentity) ? 'untrusted' : 'fail';
      });
      assert.deepEqual(transcript, scenario.libsignal);
      // Healed: both sides now use one and the same session.
      const a = (await alice.record('bob'))?.current;
      const b = (await bob.record('alice'))?.current;
      assert.ok(a && b && bytesEqual(a.aliceBaseKey, b.aliceBaseKey), 'both current sessions are the same session');
      await assertWorks(alice, bob, 'after the script');
    });
  }

  it('simultaneous initiation: PreKey messages of both sessions stay decryptable from the archive', async () => {
    const { alice, bob } = await peers();
    await alice.processBundle('bob', await bob.bundle());
    await bob.processBundle('alice', await alice.bundle());
    const fromAlice = [await alice.encrypt('bob', utf8('a1')), await alice.encrypt('bob', utf8('a2'))];
    const fromBob = [await bob.encrypt('alice', utf8('b1')), await bob.encrypt('alice', utf8('b2'))];
    assert.equal(text.decode(await alice.decrypt('bob', fromBob[1] as Wire)), 'b2');
    assert.equal(text.decode(await bob.decrypt('alice', fromAlice[0] as Wire)), 'a1');
    // Each side now has its own initiated session archived and the peer's session current.
    assert.equal((await alice.record('bob'))?.previous.length, 1);
    assert.equal((await bob.record('alice'))?.previous.length, 1);
    assert.equal(text.decode(await alice.decrypt('bob', fromBob[0] as Wire)), 'b1');
    assert.equal(text.decode(await bob.decrypt('alice', fromAlice[1] as Wire)), 'a2');
    await assertWorks(alice, bob, 'healed');
    await assertWorks(bob, alice, 'healed again');
  });
});

describe('refusals: exact error codes, the record unchanged, the session still working', () => {
  it('a tampered MAC, body or header gives BadMac', async () => {
    const { alice, bob } = await established();
    const wire = await alice.encrypt('bob', utf8('genuine'));
    const m = SignalMessage.deserialize(wire.body);
    const tampered: [string, Uint8Array][] = [
      ['last MAC byte', flip(wire.body, -1)],
      ['first MAC byte', flip(wire.body, -8)],
      ['ciphertext byte', flip(wire.body, wire.body.length - 8 - 3)],
      ['version low nibble (covered by the MAC)', withFirstByte(wire.body, 0x43)],
    ];
    for (const [what, body] of tampered) await expectRefused(bob, 'alice', { type: 2, body }, Code.BadMac, what);
    // A forged counter and previous counter: the MAC (and the derived keys) no longer match.
    const forged = await SignalMessage.create(provider, {
      messageVersion: 4,
      macKey: new Uint8Array(32),
      senderRatchetKey: m.senderRatchetKey,
      counter: m.counter,
      previousCounter: m.previousCounter,
      body: m.body,
      senderIdentityKey: alice.identity.publicKey,
      receiverIdentityKey: bob.identity.publicKey,
    });
    await expectRefused(bob, 'alice', { type: 2, body: forged.serialized }, Code.BadMac, 'MAC under a wrong key');
    assert.equal(text.decode(await bob.decrypt('alice', wire)), 'genuine');
    await assertWorks(alice, bob, 'after BadMac');
  });

  it('a PreKey message with a tampered inner MAC gives BadMac and consumes no prekey', async () => {
    const { alice, bob } = await peers();
    const bundle = await bob.bundle();
    await alice.processBundle('bob', bundle);
    const wire = await alice.encrypt('bob', utf8('first'));
    const inner = PreKeySignalMessage.deserialize(wire.body).message;
    const bad = rewrapPreKey(wire, { message: SignalMessage.deserialize(flip(inner.serialized, -1)) });
    await expectRefused(bob, 'alice', bad, Code.BadMac, 'PreKey message with a bad inner MAC');
    assert.equal(await bob.record('alice'), null);
    await bob.stores.preKeys.getPreKey(bundle.preKeyId as number);
    assert.equal(text.decode(await bob.decrypt('alice', wire)), 'first');
    await assertWorks(alice, bob, 'after a bad PreKey message');
  });

  it('a replayed message gives DuplicateMessage (Whisper and PreKey)', async () => {
    const { alice, bob } = await peers();
    await alice.processBundle('bob', await bob.bundle());
    const preKey = await roundTrip(alice, bob, 'prekey');
    await expectRefused(bob, 'alice', preKey, Code.DuplicateMessage, 'replayed PreKey message');
    await roundTrip(bob, alice, 'answer');
    const whisper = await roundTrip(alice, bob, 'whisper');
    await expectRefused(bob, 'alice', whisper, Code.DuplicateMessage, 'replayed SignalMessage');
    await expectRefused(bob, 'alice', preKey, Code.DuplicateMessage, 'replayed PreKey message after the answer');
    await assertWorks(alice, bob, 'after replays');
  });

  it('version bytes: high nibble 2 is LegacyVersion, 5 is UnrecognizedVersion, a v3 PreKey message is LegacyVersion', async () => {
    const { alice, bob } = await peers();
    await alice.processBundle('bob', await bob.bundle());
    const preKey = await alice.encrypt('bob', utf8('prekey'));
    for (const [byte, code] of [
      [0x24, Code.LegacyVersion],
      [0x04, Code.LegacyVersion],
      [0x54, Code.UnrecognizedVersion],
      [0xf4, Code.UnrecognizedVersion],
      [0x34, Code.LegacyVersion],
    ] as const) {
      await expectRefused(bob, 'alice', { type: 3, body: withFirstByte(preKey.body, byte) }, code, `PreKey message version byte 0x${byte.toString(16)}`);
    }
    // The wrapped SignalMessage's own version byte is checked too.
    const inner = PreKeySignalMessage.deserialize(preKey.body).message;
    for (const [byte, code] of [
      [0x24, Code.LegacyVersion],
      [0x54, Code.UnrecognizedVersion],
    ] as const) {
      const message = { serialized: withFirstByte(inner.serialized, byte) } as SignalMessage;
      await expectRefused(bob, 'alice', rewrapPreKey(preKey, { message }), code, `inner SignalMessage version byte 0x${byte.toString(16)}`);
    }
    assert.equal(text.decode(await bob.decrypt('alice', preKey)), 'prekey');
    await roundTrip(bob, alice, 'answer');

    const whisper = await alice.encrypt('bob', utf8('whisper'));
    for (const [byte, code] of [
      [0x24, Code.LegacyVersion],
      [0x14, Code.LegacyVersion],
      [0x54, Code.UnrecognizedVersion],
      [0x64, Code.UnrecognizedVersion],
      // A version-3 message decodes but does not match the version-4 session.
      [0x34, Code.UnrecognizedVersion],
    ] as const) {
      await expectRefused(bob, 'alice', { type: 2, body: withFirstByte(whisper.body, byte) }, code, `SignalMessage version byte 0x${byte.toString(16)}`);
    }
    assert.equal(text.decode(await bob.decrypt('alice', whisper)), 'whisper');
    await assertWorks(alice, bob, 'after version errors');
  });

  for (const [what, change, code] of [
    ['one-time prekey', { preKeyId: 999 }, Code.InvalidPreKeyId],
    ['signed prekey', { signedPreKeyId: 998 }, Code.InvalidSignedPreKeyId],
    ['Kyber prekey', { kyberPreKeyId: 997 }, Code.InvalidKyberPreKeyId],
  ] as const) {
    it(`an unknown ${what} id gives ${code}; the existing session keeps working`, async () => {
      const { alice, bob } = await established();
      // Prekey ids are not signed, so a bundle naming ids Bob does not hold still verifies.
      await alice.processBundle('bob', { ...(await bob.bundle()), ...change });
      const wire = await alice.encrypt('bob', utf8('on the bad session'));
      assert.equal(wire.type, CiphertextMessageType.PreKey);
      await expectRefused(bob, 'alice', wire, code, `unknown ${what} id`);
      // Bob answers on the session he has; Alice finds it in her archive and goes back to it.
      await assertWorks(bob, alice, `after an unknown ${what} id`);
    });
  }

  it('a one-time prekey used by an earlier session gives InvalidPreKeyId', async () => {
    const { alice, bob } = await peers();
    const bundle = await bob.bundle();
    await alice.processBundle('bob', bundle);
    await roundTrip(alice, bob, 'first session');
    await roundTrip(bob, alice, 'answer');
    // The same bundle again: a new session (new base key) naming the one-time prekey Bob has used.
    await alice.processBundle('bob', bundle);
    await expectRefused(bob, 'alice', await alice.encrypt('bob', utf8('stale bundle')), Code.InvalidPreKeyId, 'used one-time prekey');
    await assertWorks(bob, alice, 'after a used one-time prekey');
  });

  it(`a jump of more than MAX_FORWARD_JUMPS (${MAX_FORWARD_JUMPS}) gives TooFarInFuture; exactly that many is fine`, async () => {
    const { alice, bob } = await established();
    const saved = await alice.record('bob');
    assert.ok(saved?.current);
    const index = saved.current.senderChain.chainKey.index;
    // Too far: Bob refuses on the counter alone, before deriving anything, so the chain key need not be real.
    const far = saved.clone();
    (far.current as NonNullable<typeof far.current>).senderChain.chainKey = { key: new Uint8Array(32), index: index + MAX_FORWARD_JUMPS + 1 };
    await alice.setRecord('bob', far);
    await expectRefused(bob, 'alice', await alice.encrypt('bob', utf8('too far')), Code.TooFarInFuture, 'jump of MAX_FORWARD_JUMPS + 1');
    await alice.setRecord('bob', saved);
    await assertWorks(alice, bob, 'after TooFarInFuture');
    // Exactly MAX_FORWARD_JUMPS ahead, with the real chain key: accepted (Bob keeps the newest 2,000 keys).
    await advanceSendingChain(alice, 'bob', MAX_FORWARD_JUMPS);
    await roundTrip(alice, bob, 'just within reach');
    const chain = (await bob.record('alice'))?.current?.receiverChains.at(-1);
    assert.equal(chain?.skipped.length, MAX_MESSAGE_KEYS);
    await assertWorks(alice, bob, 'after the long jump');
  });

  it(`only the newest MAX_MESSAGE_KEYS (${MAX_MESSAGE_KEYS}) skipped keys are kept: the oldest message becomes a DuplicateMessage`, async () => {
    const { alice, bob } = await established();
    const oldest = await alice.encrypt('bob', utf8('oldest'));
    const second = await alice.encrypt('bob', utf8('second oldest'));
    await advanceSendingChain(alice, 'bob', MAX_MESSAGE_KEYS - 1);
    // Skips MAX_MESSAGE_KEYS + 1 keys: the oldest of them is dropped.
    await roundTrip(alice, bob, 'far ahead');
    await expectRefused(bob, 'alice', oldest, Code.DuplicateMessage, 'message whose skipped key was dropped');
    assert.equal(text.decode(await bob.decrypt('alice', second)), 'second oldest');
    assert.equal((await bob.record('alice'))?.current?.receiverChains.at(-1)?.skipped.length, MAX_MESSAGE_KEYS - 1);
    await assertWorks(alice, bob, 'after the skipped-key bound');
  });

  it('a peer who re-registered with a new identity gives UntrustedIdentity until the new key is saved', async () => {
    const { alice, bob } = await established();
    const lateFromOldBob = await bob.encrypt('alice', utf8('late, from the old identity'));
    const newBob = await ParleyPeer.create(provider, 'bob');

    const err = await expectCode(alice.processBundle('bob', await newBob.bundle()), Code.UntrustedIdentity, 'bundle of the new identity');
    assert.ok(err instanceof UntrustedIdentityError);
    assert.equal(err.address, 'bob.1');
    assert.ok(bytesEqual(err.identityKey, newBob.identityKey));

    await newBob.processBundle('alice', await alice.bundle());
    const fromNewBob = await newBob.encrypt('alice', utf8('it is me, new phone'));
    await expectRefused(alice, 'bob', fromNewBob, Code.UntrustedIdentity, 'PreKey message from the new identity');

    // The user accepts the new safety number: the old session's identity is no longer the trusted one.
    await alice.trustIdentity('bob', newBob.identityKey);
    const before = await alice.recordBytes('bob');
    await expectCode(alice.encrypt('bob', utf8('to the old session')), Code.UntrustedIdentity, 'encrypting on the old session');
    assertSameBytes(await alice.recordBytes('bob'), before, 'a refused encryption changed the record');
    await expectRefused(alice, 'bob', lateFromOldBob, Code.UntrustedIdentity, 'late message from the old identity');

    assert.equal(text.decode(await alice.decrypt('bob', fromNewBob)), 'it is me, new phone');
    await assertWorks(alice, newBob, 'with the new identity');
  });

  it('truncated messages give InvalidMessage at every length (SignalMessage and PreKeySignalMessage)', async () => {
    const { alice, bob } = await peers();
    await alice.processBundle('bob', await bob.bundle());
    const preKey = await roundTrip(alice, bob, 'a PreKey message');
    await roundTrip(bob, alice, 'answer');
    const whisper = await alice.encrypt('bob', utf8('a SignalMessage, long enough to span two blocks'));
    for (let length = 0; length < whisper.body.length; length++) {
      await expectCode(async () => SignalMessage.deserialize(whisper.body.subarray(0, length)), Code.InvalidMessage, `SignalMessage cut to ${length} bytes`);
    }
    for (let length = 0; length < preKey.body.length; length++) {
      await expectCode(async () => PreKeySignalMessage.deserialize(preKey.body.subarray(0, length)), Code.InvalidMessage, `PreKey message cut to ${length} bytes`);
    }
    for (const length of [0, 1, 9, 40, whisper.body.length - 1]) {
      await expectRefused(bob, 'alice', { type: 2, body: whisper.body.slice(0, length) }, Code.InvalidMessage, `delivered SignalMessage cut to ${length}`);
    }
    for (const length of [0, 1, 100, 1700, preKey.body.length - 1]) {
      await expectRefused(bob, 'alice', { type: 3, body: preKey.body.slice(0, length) }, Code.InvalidMessage, `delivered PreKey message cut to ${length}`);
    }
    assert.equal(text.decode(await bob.decrypt('alice', whisper)), 'a SignalMessage, long enough to span two blocks');
    await assertWorks(alice, bob, 'after truncated input');
  });

  it('random bytes give InvalidMessage (or the version error their first byte calls for), many lengths', async () => {
    const { alice, bob } = await established();
    const rng = new Prng(0xbadb17e5);
    const expected = (bytes: Uint8Array, kind: 'signal' | 'prekey'): ProtocolErrorCode => {
      if (bytes.length === 0 || (kind === 'signal' && bytes.length < 9)) return Code.InvalidMessage;
      const version = (bytes[0] as number) >> 4;
      if (version < 3) return Code.LegacyVersion;
      if (version > 4) return Code.UnrecognizedVersion;
      return Code.InvalidMessage;
    };
    for (let i = 0; i < 400; i++) {
      const length = i < 40 ? i : rng.int(0, i % 4 === 0 ? 4000 : 300);
      const bytes = rng.bytes(length);
      if (i % 2 === 0 && length > 0) bytes[0] = 0x44;
      await expectCode(async () => SignalMessage.deserialize(bytes), expected(bytes, 'signal'), `random SignalMessage of ${length} bytes`);
      await expectCode(async () => PreKeySignalMessage.deserialize(bytes), expected(bytes, 'prekey'), `random PreKey message of ${length} bytes`);
      if (i % 20 === 0) {
        await expectRefused(bob, 'alice', { type: 2, body: bytes }, expected(bytes, 'signal'), `delivered random SignalMessage (${length} bytes)`);
        await expectRefused(bob, 'alice', { type: 3, body: bytes }, expected(bytes, 'prekey'), `delivered random PreKey message (${length} bytes)`);
      }
    }
    await assertWorks(alice, bob, 'after random input');
  });

  it('a session whose PreKey message goes unanswered for more than 30 days gives SessionExpired', async () => {
    const { alice, bob } = await peers();
    await alice.processBundle('bob', await bob.bundle(), T0);
    const first = await alice.encrypt('bob', utf8('day 0'), T0);
    const boundary = T0 + MAX_UNACKNOWLEDGED_SESSION_AGE_MS;
    const atBoundary = await alice.encrypt('bob', utf8('day 30'), boundary);
    assert.equal((await alice.record('bob'))?.hasUsableSenderChain(boundary), true);
    const before = await alice.recordBytes('bob');
    await expectCode(alice.encrypt('bob', utf8('too late'), boundary + 1), Code.SessionExpired, 'stale unacknowledged session');
    assertSameBytes(await alice.recordBytes('bob'), before, 'a refused encryption changed the record');
    assert.equal((await alice.record('bob'))?.hasUsableSenderChain(boundary + 1), false);
    // Bob finally receives and answers: the session is acknowledged and usable again.
    assert.equal(text.decode(await bob.decrypt('alice', atBoundary)), 'day 30');
    assert.equal(text.decode(await bob.decrypt('alice', first)), 'day 0');
    await roundTrip(bob, alice, 'sorry, was offline');
    const late = await alice.encrypt('bob', utf8('day 31'), boundary + DAY_MS);
    assert.equal(late.type, CiphertextMessageType.Whisper);
    assert.equal(text.decode(await bob.decrypt('alice', late)), 'day 31');
    // A fresh bundle also starts over after expiry.
    const { alice: a2, bob: b2 } = await peers();
    await a2.processBundle('bob', await b2.bundle(), T0);
    await expectCode(a2.encrypt('bob', utf8('stale'), boundary + 1), Code.SessionExpired, 'stale session');
    await a2.processBundle('bob', await b2.bundle(), boundary + 1);
    const fresh = await a2.encrypt('bob', utf8('fresh session'), boundary + 1);
    assert.equal(text.decode(await b2.decrypt('alice', fresh)), 'fresh session');
  });

  it('no session gives NoSession (encrypting, and decrypting a SignalMessage)', async () => {
    const { alice, bob } = await established();
    const carol = await ParleyPeer.create(provider, 'carol');
    await expectCode(carol.encrypt('bob', utf8('hi')), Code.NoSession, 'encrypt without a session');
    const wire = await alice.encrypt('bob', utf8('for bob'));
    await expectCode(carol.decrypt('alice', wire), Code.NoSession, 'decrypt without a session');
    assert.equal(await carol.record('alice'), null);
    // A record whose only state was archived can no longer send.
    const record = await alice.record('bob');
    assert.ok(record);
    record.archiveCurrentState();
    await alice.setRecord('bob', record);
    await expectCode(alice.encrypt('bob', utf8('archived')), Code.NoSession, 'encrypt with only an archived state');
    assert.equal(text.decode(await bob.decrypt('alice', wire)), 'for bob');
    // ...but it still receives on the archived state, which becomes current again.
    await roundTrip(bob, alice, 'still here');
    await assertWorks(alice, bob, 'after NoSession');
  });

  it(`a session with oneself (another device of the same account) may jump beyond MAX_FORWARD_JUMPS, as in libsignal`, async () => {
    const identity = await KeyPair.generate(provider);
    const phone = await ParleyPeer.create(provider, 'phone', identity);
    const laptop = await ParleyPeer.create(provider, 'laptop', identity);
    await phone.processBundle('laptop', await laptop.bundle());
    await roundTrip(phone, laptop, 'sync');
    await roundTrip(laptop, phone, 'ack');
    await advanceSendingChain(phone, 'laptop', MAX_FORWARD_JUMPS + 1);
    await roundTrip(phone, laptop, 'far ahead, but from myself');
    await assertWorks(phone, laptop, 'self session');
  });

  it('a failed decryption of any kind leaves the stored record byte-identical', async () => {
    const { alice, bob } = await established();
    const held = await alice.encrypt('bob', utf8('held'));
    await roundTrip(alice, bob, 'skips the held one');
    const wire = await alice.encrypt('bob', utf8('target'));
    const cases: [string, Wire, ProtocolErrorCode][] = [
      ['bad MAC', { type: 2, body: flip(wire.body, -2) }, Code.BadMac],
      ['garbage', { type: 2, body: new Uint8Array(50).fill(0x44) }, Code.InvalidMessage],
      ['wrong type', { type: 3, body: wire.body }, Code.InvalidMessage],
      ['legacy', { type: 2, body: withFirstByte(wire.body, 0x22) }, Code.LegacyVersion],
    ];
    for (const [what, w, code] of cases) await expectRefused(bob, 'alice', w, code, what);
    assert.equal(text.decode(await bob.decrypt('alice', held)), 'held');
    await expectRefused(bob, 'alice', held, Code.DuplicateMessage, 'duplicate of a skipped-key message');
    assert.equal(text.decode(await bob.decrypt('alice', wire)), 'target');
  });

  it('a replayed PreKey message whose base key is moved by a low-order point is refused (libsignal: invalid base key)', async () => {
    const { alice, bob } = await peers();
    await alice.processBundle('bob', await bob.bundle({ oneTime: false }));
    const wire = await roundTrip(alice, bob, 'once only');
    const m = PreKeySignalMessage.deserialize(wire.body);
    const replay = rewrapPreKey(wire, { baseKey: torsionTweaked(m.baseKey) });
    await expectRefused(bob, 'alice', replay, Code.InvalidMessage, 'replay with a torsion-tweaked base key');
  });
});

describe('session records', () => {
  it('serialize -> deserialize mid-conversation (skipped keys, an archived session) keeps working', async () => {
    const { alice, bob } = await established();
    const heldA = await alice.encrypt('bob', utf8('held from alice'));
    await roundTrip(alice, bob, 'skips one');
    const heldB = await bob.encrypt('alice', utf8('held from bob'));
    await roundTrip(bob, alice, 'skips one too');
    // A re-initiation, so that both records have an archived session.
    await alice.processBundle('bob', await bob.bundle());
    await roundTrip(alice, bob, 'new session');
    for (const [peer, other] of [
      [alice, 'bob'],
      [bob, 'alice'],
    ] as const) {
      const bytes = await peer.recordBytes(other);
      assert.ok(bytes);
      const restored = SessionRecord.deserialize(bytes);
      assertSameBytes(restored.serialize(), bytes, 'serialize(deserialize(bytes))');
      assert.equal(restored.previous.length, 1);
      await peer.setRecord(other, restored);
    }
    assert.equal(text.decode(await bob.decrypt('alice', heldA)), 'held from alice');
    assert.equal(text.decode(await alice.decrypt('bob', heldB)), 'held from bob');
    await assertWorks(alice, bob, 'after the round trip');
    const empty = new SessionRecord();
    assertSameBytes(SessionRecord.deserialize(empty.serialize()).serialize(), empty.serialize(), 'empty record');
  });

  it('corrupt record bytes give InvalidRecord', async () => {
    const { alice } = await established();
    const bytes = await alice.recordBytes('bob');
    assert.ok(bytes);
    const rng = new Prng(0xc0ffee);
    for (let length = 0; length < bytes.length; length += length < 64 ? 1 : 37) {
      const cut = bytes.slice(0, length);
      await expectCode(async () => SessionRecord.deserialize(cut), Code.InvalidRecord, `record cut to ${length} bytes`);
    }
    for (let i = 0; i < 200; i++) {
      const junk = rng.bytes(rng.int(0, 600));
      await expectCode(async () => SessionRecord.deserialize(junk), Code.InvalidRecord, `random record of ${junk.length} bytes`);
    }
    // A newer format version (field 15 = 2, appended: the last value wins).
    await expectCode(async () => SessionRecord.deserialize(new Uint8Array([...bytes, 0x78, 0x02])), Code.InvalidRecord, 'record version 2');
    // Well-formed protobuf, malformed contents.
    const cases: [string, (state: SessionState) => void][] = [
      ['31-byte root key', (state) => void (state.rootKey = new Uint8Array(31))],
      ['32-byte remote identity', (state) => void Object.assign(state, { remoteIdentity: { serialized: new Uint8Array(32) } })],
      ['5-byte sender chain key', (state) => void (state.senderChain.chainKey = { key: new Uint8Array(5), index: 0 })],
    ];
    for (const [what, change] of cases) {
      const record = SessionRecord.deserialize(bytes);
      assert.ok(record.current);
      change(record.current);
      const broken = record.serialize();
      await expectCode(async () => SessionRecord.deserialize(broken), Code.InvalidRecord, what);
    }
  });
});

type FixtureConversation = (typeof fixtures.conversations)[number];

/** Bob of a fixture conversation, rebuilt from the stored private keys with in-memory stores. */
async function bobFromFixture(c: FixtureConversation): Promise<ParleyPeer> {
  const b = c.bob;
  const keyPair = (hex: string): Promise<KeyPair> => KeyPair.fromPrivateKey(provider, PrivateKey.deserialize(fromHex(hex)));
  const identity = await keyPair(b.identityPrivateKey);
  assert.equal(toHex(identity.publicKey.serialized), b.identityKey);
  const bob = ParleyPeer.withKeys(provider, b.name, identity, b.registrationId);
  const spk = await keyPair(b.signedPreKey.privateKey);
  assert.equal(toHex(spk.publicKey.serialized), b.signedPreKey.publicKey);
  await bob.stores.signedPreKeys.storeSignedPreKey(b.signedPreKey.id, new SignedPreKeyRecord(b.signedPreKey.id, spk, fromHex(b.signedPreKey.signature), T0));
  const kem = new KemKeyPair(KemPublicKey.deserialize(fromHex(b.kyberPreKey.publicKey)), KemSecretKey.deserialize(fromHex(b.kyberPreKey.secretKey)));
  const kyber = new KyberPreKeyRecord(b.kyberPreKey.id, kem, fromHex(b.kyberPreKey.signature), T0);
  await bob.stores.kyberPreKeys.storeKyberPreKey(b.kyberPreKey.id, kyber, { lastResort: true });
  if (b.oneTimePreKey) {
    const opk = await keyPair(b.oneTimePreKey.privateKey);
    assert.equal(toHex(opk.publicKey.serialized), b.oneTimePreKey.publicKey);
    await bob.stores.preKeys.storePreKey(b.oneTimePreKey.id, new PreKeyRecord(b.oneTimePreKey.id, opk));
  }
  return bob;
}

describe('libsignal-made PreKey messages (test/vectors/session-libsignal.json)', () => {
  for (const c of fixtures.conversations) {
    it(c.description, async () => {
      const b = c.bob;
      const bob = await bobFromFixture(c);
      const identity = bob.identity;
      const spk = await bob.stores.signedPreKeys.getSignedPreKey(b.signedPreKey.id);
      // Bob's own signatures (made by Parley) verify: libsignal accepted the bundle too.
      assert.ok(await identity.publicKey.verifySignature(provider, spk.keyPair.publicKey.serialized, spk.signature));
      const kyber = await bob.stores.kyberPreKeys.getKyberPreKey(b.kyberPreKey.id);
      assert.ok(await identity.publicKey.verifySignature(provider, kyber.keyPair.publicKey.serialize(), kyber.signature));

      for (const m of c.messages) {
        assert.equal(m.type, CiphertextMessageType.PreKey);
        const plaintext = await bob.decrypt(c.alice.name, { type: m.type, body: fromHex(m.body) });
        assert.equal(toHex(plaintext), m.plaintext, `message ${m.index}`);
      }
      if (b.oneTimePreKey) await expectCode(bob.stores.preKeys.getPreKey(b.oneTimePreKey.id), Code.InvalidPreKeyId, 'used one-time prekey');
      const state = (await bob.record(c.alice.name))?.current;
      assert.ok(state);
      assert.equal(toHex(state.remoteIdentity.serialized), c.alice.identityKey);
      assert.equal(state.remoteRegistrationId, c.alice.registrationId);
      // Every message again: duplicates now.
      for (const m of c.messages) await expectRefused(bob, c.alice.name, { type: m.type, body: fromHex(m.body) }, Code.DuplicateMessage, `message ${m.index} again`);
      const reply = await bob.encrypt(c.alice.name, utf8('reply'));
      assert.equal(reply.type, CiphertextMessageType.Whisper);
    });
  }

  it('a libsignal PreKey message replayed with a torsion-tweaked base key is refused (as libsignal refuses it)', async () => {
    const c = fixtures.conversations.find((x) => x.bob.oneTimePreKey === null);
    assert.ok(c);
    const bob = await bobFromFixture(c);
    const first = c.messages[0];
    assert.ok(first);
    const wire = { type: first.type, body: fromHex(first.body) };
    await bob.decrypt(c.alice.name, wire);
    // Without a one-time prekey nothing else stops the replay: only the base-key check does.
    const tweaked = rewrapPreKey(wire, { baseKey: torsionTweaked(PreKeySignalMessage.deserialize(wire.body).baseKey) });
    await expectRefused(bob, c.alice.name, tweaked, Code.InvalidMessage, 'replay with a torsion-tweaked base key');
  });
});
