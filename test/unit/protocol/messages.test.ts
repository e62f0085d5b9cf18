// Wire codecs of 1:1 messages, field by field, against hand-built hex frames and libsignal-made frames
// (test/vectors/session-libsignal.json). Frame layouts: /work/shared/SIGNAL-WIRE-NOTES.md and libsignal's
// proto/wire.proto. Isomorphic: only src/protocol and test/support.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CiphertextMessageType,
  fromHex,
  MAX_MESSAGE_BYTES,
  PreKeySignalMessage,
  ProtocolErrorCode,
  PublicKey,
  SignalMessage,
  toHex,
} from '../../../src/protocol/index.ts';
import fixtures from '../../vectors/session-libsignal.json' with { type: 'json' };
import { expectCodeSync } from '../../support/expect.ts';
import { provider } from '../../support/provider.ts';

const Code = ProtocolErrorCode;

// ---- a tiny protobuf writer for hand-built frames (hex in, hex out)

function varint(n: number): string {
  let out = '';
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out += byte.toString(16).padStart(2, '0');
  } while (n > 0);
  return out;
}
const uintField = (num: number, value: number): string => varint(num << 3) + varint(value);
const bytesField = (num: number, payloadHex: string): string => varint((num << 3) | 2) + varint(payloadHex.length / 2) + payloadHex;
const frame = (...hexParts: string[]): Uint8Array => fromHex(hexParts.join(''));

// ---- fixed inputs

const RATCHET_KEY = `05${'11'.repeat(32)}`;
const SENDER_IDENTITY = `05${'22'.repeat(32)}`;
const RECEIVER_IDENTITY = `05${'33'.repeat(32)}`;
const BASE_KEY = `05${'66'.repeat(32)}`;
const KYBER_CIPHERTEXT = `08${'55'.repeat(1568)}`;
const BODY = '000102030405060708090a0b0c0d0e0f';
const MAC_KEY = fromHex('42'.repeat(32));
/**
 * The SignalMessage frame: version byte 0x44, ratchet_key (1), counter (2) = 7, previous_counter (3) = 3,
 * ciphertext (4), then HMAC-SHA256(MAC_KEY, sender identity, receiver identity, version byte, protobuf)
 * truncated to 8 bytes (computed independently with Python's hmac module).
 */
const SIGNAL_PROTO = '0a21' + RATCHET_KEY + '1007' + '1803' + '2210' + BODY;
const SIGNAL_FRAME = `44${SIGNAL_PROTO}88220f98ef81d563`;
/** The same MAC with the identities in the wrong order (receiver first). */
const SWAPPED_MAC = 'c3a42f96763eb898';

function createSignalMessage(overrides: { body?: Uint8Array } = {}): Promise<SignalMessage> {
  return SignalMessage.create(provider, {
    messageVersion: 4,
    macKey: MAC_KEY,
    senderRatchetKey: PublicKey.deserialize(fromHex(RATCHET_KEY)),
    counter: 7,
    previousCounter: 3,
    body: overrides.body ?? fromHex(BODY),
    senderIdentityKey: PublicKey.deserialize(fromHex(SENDER_IDENTITY)),
    receiverIdentityKey: PublicKey.deserialize(fromHex(RECEIVER_IDENTITY)),
  });
}

/** A PreKeySignalMessage frame with fields in field-number order, as libsignal (prost) writes them. */
function preKeyFrame(parts: {
  version?: string;
  preKeyId?: number;
  baseKey?: string | null;
  identityKey?: string | null;
  message?: string | null;
  registrationId?: number | null;
  signedPreKeyId?: number | null;
  kyberPreKeyId?: number | null;
  kyberCiphertext?: string | null;
  extra?: string;
}): Uint8Array {
  const opt = <T>(value: T | null | undefined, fallback: T): T | undefined => (value === null ? undefined : (value ?? fallback));
  const baseKey = opt(parts.baseKey, BASE_KEY);
  const identityKey = opt(parts.identityKey, SENDER_IDENTITY);
  const message = opt(parts.message, SIGNAL_FRAME);
  const registrationId = opt(parts.registrationId, 12345);
  const signedPreKeyId = opt(parts.signedPreKeyId, 7);
  const kyberPreKeyId = opt(parts.kyberPreKeyId, 9);
  const kyberCiphertext = opt(parts.kyberCiphertext, KYBER_CIPHERTEXT);
  return frame(
    parts.version ?? '44',
    parts.preKeyId === undefined ? '' : uintField(1, parts.preKeyId),
    baseKey === undefined ? '' : bytesField(2, baseKey),
    identityKey === undefined ? '' : bytesField(3, identityKey),
    message === undefined ? '' : bytesField(4, message),
    registrationId === undefined ? '' : uintField(5, registrationId),
    signedPreKeyId === undefined ? '' : uintField(6, signedPreKeyId),
    kyberPreKeyId === undefined ? '' : uintField(7, kyberPreKeyId),
    kyberCiphertext === undefined ? '' : bytesField(8, kyberCiphertext),
    parts.extra ?? '',
  );
}

describe('SignalMessage', () => {
  it('create() writes the exact frame: version byte, protobuf fields 1-4, 8-byte MAC', async () => {
    const m = await createSignalMessage();
    assert.equal(toHex(m.serialized), SIGNAL_FRAME);
    assert.equal(m.type, CiphertextMessageType.Whisper);
    assert.equal(m.type, 2);
  });

  it('deserialize() reads every field back, and the MAC verifies with the sender identity first', async () => {
    const m = SignalMessage.deserialize(fromHex(SIGNAL_FRAME));
    assert.equal(m.messageVersion, 4);
    assert.equal(toHex(m.senderRatchetKey.serialized), RATCHET_KEY);
    assert.equal(m.counter, 7);
    assert.equal(m.previousCounter, 3);
    assert.equal(toHex(m.body), BODY);
    assert.equal(toHex(m.serialized), SIGNAL_FRAME);
    const sender = PublicKey.deserialize(fromHex(SENDER_IDENTITY));
    const receiver = PublicKey.deserialize(fromHex(RECEIVER_IDENTITY));
    assert.equal(await m.verifyMac(provider, sender, receiver, MAC_KEY), true);
    assert.equal(await m.verifyMac(provider, receiver, sender, MAC_KEY), false, 'identities swapped');
    assert.equal(await m.verifyMac(provider, sender, receiver, fromHex('43'.repeat(32))), false, 'wrong MAC key');
    const swapped = SignalMessage.deserialize(frame('44', SIGNAL_PROTO, SWAPPED_MAC));
    assert.equal(await swapped.verifyMac(provider, receiver, sender, MAC_KEY), true, 'the swapped MAC is the receiver-first one');
  });

  it('accepts an absent previous counter (0), unknown fields and SPQR pq_ratchet (field 5); ignores the low version nibble', () => {
    const noPrevious = SignalMessage.deserialize(frame('44', '0a21', RATCHET_KEY, '1007', '2210', BODY, '00'.repeat(8)));
    assert.equal(noPrevious.previousCounter, 0);
    const extra = SignalMessage.deserialize(frame('44', SIGNAL_PROTO, bytesField(5, 'aabbcc'), uintField(15, 300), '00'.repeat(8)));
    assert.equal(extra.counter, 7);
    assert.equal(extra.serialized.length, 1 + SIGNAL_PROTO.length / 2 + 5 + 3 + 8);
    // Fields in any order, and a repeated scalar field: the last value wins.
    const reordered = SignalMessage.deserialize(frame('44', '2210', BODY, '1805', '1007', '0a21', RATCHET_KEY, '1009', '00'.repeat(8)));
    assert.equal(reordered.counter, 9);
    assert.equal(reordered.previousCounter, 5);
    const emptyBody = SignalMessage.deserialize(frame('44', '0a21', RATCHET_KEY, '1000', '2200', '00'.repeat(8)));
    assert.equal(emptyBody.body.length, 0);
    assert.equal(SignalMessage.deserialize(frame('4f', SIGNAL_PROTO, '00'.repeat(8))).messageVersion, 4);
    assert.equal(SignalMessage.deserialize(frame('34', SIGNAL_PROTO, '00'.repeat(8))).messageVersion, 3);
  });

  it('refuses missing or malformed fields with InvalidMessage', () => {
    const mac = '00'.repeat(8);
    const cases: [string, Uint8Array][] = [
      ['no ratchet key', frame('44', '1007', '1803', '2210', BODY, mac)],
      ['no counter', frame('44', '0a21', RATCHET_KEY, '1803', '2210', BODY, mac)],
      ['no ciphertext', frame('44', '0a21', RATCHET_KEY, '1007', '1803', mac)],
      ['32-byte ratchet key', frame('44', bytesField(1, '11'.repeat(32)), '1007', '2210', BODY, mac)],
      ['34-byte ratchet key', frame('44', bytesField(1, `05${'11'.repeat(33)}`), '1007', '2210', BODY, mac)],
      ['ratchet key of type 0x06', frame('44', bytesField(1, `06${'11'.repeat(32)}`), '1007', '2210', BODY, mac)],
      ['truncated length-delimited field', frame('44', '0a21', RATCHET_KEY.slice(0, 40), mac)],
      ['invalid wire type', frame('44', '0f', SIGNAL_PROTO, mac)],
      ['empty protobuf', frame('44', mac)],
    ];
    for (const [what, bytes] of cases) expectCodeSync(() => SignalMessage.deserialize(bytes), Code.InvalidMessage, what);
  });

  it('checks the version byte: high nibble below 3 is LegacyVersion, above 4 UnrecognizedVersion', () => {
    const body = (byte: string): Uint8Array => frame(byte, SIGNAL_PROTO, '00'.repeat(8));
    for (const byte of ['04', '14', '24', '2f']) expectCodeSync(() => SignalMessage.deserialize(body(byte)), Code.LegacyVersion, `version byte ${byte}`);
    for (const byte of ['54', '64', 'f4', '5f']) expectCodeSync(() => SignalMessage.deserialize(body(byte)), Code.UnrecognizedVersion, `version byte ${byte}`);
  });

  it('refuses frames shorter than version byte + MAC (InvalidMessage, before the version check)', () => {
    for (let length = 0; length <= 8; length++) {
      expectCodeSync(() => SignalMessage.deserialize(new Uint8Array(length).fill(0x24)), Code.InvalidMessage, `${length} bytes`);
    }
  });

  it(`accepts a frame of exactly MAX_MESSAGE_BYTES (${MAX_MESSAGE_BYTES}) and refuses one byte more (InvalidMessage)`, async () => {
    const overhead = (await createSignalMessage({ body: new Uint8Array(200_000) })).serialized.length - 200_000;
    const largest = await createSignalMessage({ body: new Uint8Array(MAX_MESSAGE_BYTES - overhead) });
    assert.equal(largest.serialized.length, MAX_MESSAGE_BYTES);
    assert.equal(SignalMessage.deserialize(largest.serialized).body.length, MAX_MESSAGE_BYTES - overhead);
    const tooLarge = await createSignalMessage({ body: new Uint8Array(MAX_MESSAGE_BYTES - overhead + 1) });
    expectCodeSync(() => SignalMessage.deserialize(tooLarge.serialized), Code.InvalidMessage, 'MAX_MESSAGE_BYTES + 1');
    expectCodeSync(() => SignalMessage.deserialize(new Uint8Array(10 * MAX_MESSAGE_BYTES).fill(0x44)), Code.InvalidMessage, '10 x MAX_MESSAGE_BYTES');
  });
});

describe('PreKeySignalMessage', () => {
  const EXPECTED =
    '44' +
    '08e9f401' + // 1 pre_key_id = 31337
    '1221' + BASE_KEY + // 2 base_key
    '1a21' + SENDER_IDENTITY + // 3 identity_key
    '2242' + SIGNAL_FRAME + // 4 message (66 bytes)
    '28b960' + // 5 registration_id = 12345
    '3007' + // 6 signed_pre_key_id = 7
    '3809' + // 7 kyber_pre_key_id = 9
    '42a10c' + KYBER_CIPHERTEXT; // 8 kyber_ciphertext (1569 bytes)

  it('create() writes the exact frame, fields in field-number order as libsignal does', () => {
    const m = PreKeySignalMessage.create({
      messageVersion: 4,
      registrationId: 12345,
      preKeyId: 31337,
      signedPreKeyId: 7,
      kyberPreKeyId: 9,
      kyberCiphertext: fromHex(KYBER_CIPHERTEXT),
      baseKey: PublicKey.deserialize(fromHex(BASE_KEY)),
      identityKey: PublicKey.deserialize(fromHex(SENDER_IDENTITY)),
      message: SignalMessage.deserialize(fromHex(SIGNAL_FRAME)),
    });
    assert.equal(toHex(m.serialized), EXPECTED);
    assert.equal(m.type, CiphertextMessageType.PreKey);
    assert.equal(m.type, 3);
    const noOneTime = PreKeySignalMessage.create({
      messageVersion: 4,
      registrationId: 12345,
      preKeyId: undefined,
      signedPreKeyId: 7,
      kyberPreKeyId: 9,
      kyberCiphertext: fromHex(KYBER_CIPHERTEXT),
      baseKey: PublicKey.deserialize(fromHex(BASE_KEY)),
      identityKey: PublicKey.deserialize(fromHex(SENDER_IDENTITY)),
      message: SignalMessage.deserialize(fromHex(SIGNAL_FRAME)),
    });
    assert.equal(toHex(noOneTime.serialized), `44${EXPECTED.slice(2 + 8)}`);
  });

  it('deserialize() reads every field back', () => {
    const m = PreKeySignalMessage.deserialize(fromHex(EXPECTED));
    assert.equal(m.messageVersion, 4);
    assert.equal(m.preKeyId, 31337);
    assert.equal(toHex(m.baseKey.serialized), BASE_KEY);
    assert.equal(toHex(m.identityKey.serialized), SENDER_IDENTITY);
    assert.equal(toHex(m.message.serialized), SIGNAL_FRAME);
    assert.equal(m.message.counter, 7);
    assert.equal(m.registrationId, 12345);
    assert.equal(m.signedPreKeyId, 7);
    assert.equal(m.kyberPreKeyId, 9);
    assert.equal(toHex(m.kyberCiphertext as Uint8Array), KYBER_CIPHERTEXT);
    assert.equal(toHex(m.serialized), EXPECTED);
    const sparse = PreKeySignalMessage.deserialize(preKeyFrame({ registrationId: null }));
    assert.equal(sparse.preKeyId, undefined);
    assert.equal(sparse.registrationId, 0, 'an absent registration id reads as 0, as in libsignal');
  });

  it('a version-4 message must carry both Kyber fields (InvalidMessage otherwise); version 3 may carry neither', () => {
    expectCodeSync(() => PreKeySignalMessage.deserialize(preKeyFrame({ kyberPreKeyId: null, kyberCiphertext: null })), Code.InvalidMessage, 'v4 without Kyber');
    expectCodeSync(() => PreKeySignalMessage.deserialize(preKeyFrame({ kyberCiphertext: null })), Code.InvalidMessage, 'v4 with only the Kyber id');
    expectCodeSync(() => PreKeySignalMessage.deserialize(preKeyFrame({ kyberPreKeyId: null })), Code.InvalidMessage, 'v4 with only the Kyber ciphertext');
    const v3 = PreKeySignalMessage.deserialize(preKeyFrame({ version: '33', kyberPreKeyId: null, kyberCiphertext: null }));
    assert.equal(v3.messageVersion, 3);
    assert.equal(v3.kyberPreKeyId, undefined);
    assert.equal(v3.kyberCiphertext, undefined);
    expectCodeSync(() => PreKeySignalMessage.deserialize(preKeyFrame({ version: '33', kyberCiphertext: null })), Code.InvalidMessage, 'v3 with half a Kyber payload');
  });

  it('refuses missing or malformed fields with InvalidMessage', () => {
    const cases: [string, Uint8Array][] = [
      ['no signed prekey id', preKeyFrame({ signedPreKeyId: null })],
      ['no base key', preKeyFrame({ baseKey: null })],
      ['no identity key', preKeyFrame({ identityKey: null })],
      ['no message', preKeyFrame({ message: null })],
      ['32-byte base key', preKeyFrame({ baseKey: '66'.repeat(32) })],
      ['identity key of type 0x07', preKeyFrame({ identityKey: `07${'22'.repeat(32)}` })],
      ['inner message too short', preKeyFrame({ message: '44' + '00'.repeat(7) })],
      ['inner message without a counter', preKeyFrame({ message: `440a21${RATCHET_KEY}2210${BODY}${'00'.repeat(8)}` })],
      ['version byte only', frame('44')],
      ['empty', new Uint8Array(0)],
      ['garbage protobuf', frame('44', 'ffffffffffffffffffffff')],
    ];
    for (const [what, bytes] of cases) expectCodeSync(() => PreKeySignalMessage.deserialize(bytes), Code.InvalidMessage, what);
  });

  it('checks the outer and the inner version bytes', () => {
    expectCodeSync(() => PreKeySignalMessage.deserialize(preKeyFrame({ version: '24' })), Code.LegacyVersion, 'outer 0x24');
    expectCodeSync(() => PreKeySignalMessage.deserialize(preKeyFrame({ version: '54' })), Code.UnrecognizedVersion, 'outer 0x54');
    expectCodeSync(() => PreKeySignalMessage.deserialize(preKeyFrame({ message: `24${SIGNAL_FRAME.slice(2)}` })), Code.LegacyVersion, 'inner 0x24');
    expectCodeSync(() => PreKeySignalMessage.deserialize(preKeyFrame({ message: `54${SIGNAL_FRAME.slice(2)}` })), Code.UnrecognizedVersion, 'inner 0x54');
  });

  it(`refuses input above MAX_MESSAGE_BYTES (${MAX_MESSAGE_BYTES}) with InvalidMessage`, () => {
    const base = preKeyFrame({});
    const pad = (total: number): Uint8Array => {
      // An unknown length-delimited field (15) sized so that the whole frame has `total` bytes.
      let n = total - base.length - 4;
      let extra = bytesField(15, '00'.repeat(n));
      while (base.length + extra.length / 2 < total) extra = bytesField(15, '00'.repeat(++n));
      while (base.length + extra.length / 2 > total) extra = bytesField(15, '00'.repeat(--n));
      return frame(toHex(base), extra);
    };
    const largest = pad(MAX_MESSAGE_BYTES);
    assert.equal(largest.length, MAX_MESSAGE_BYTES);
    assert.equal(PreKeySignalMessage.deserialize(largest).signedPreKeyId, 7);
    const tooLarge = pad(MAX_MESSAGE_BYTES + 1);
    assert.equal(tooLarge.length, MAX_MESSAGE_BYTES + 1);
    expectCodeSync(() => PreKeySignalMessage.deserialize(tooLarge), Code.InvalidMessage, 'MAX_MESSAGE_BYTES + 1');
  });
});

describe('libsignal-made frames (test/vectors/session-libsignal.json)', () => {
  for (const c of fixtures.conversations) {
    it(`decode field by field and re-encode byte for byte: ${c.bob.oneTimePreKey ? 'with' : 'without'} a one-time prekey`, () => {
      let baseKey: string | undefined;
      let ratchetKey: string | undefined;
      for (const entry of c.messages) {
        const bytes = fromHex(entry.body);
        const m = PreKeySignalMessage.deserialize(bytes);
        assert.equal(bytes[0], 0x44);
        assert.equal(m.messageVersion, 4);
        assert.equal(m.registrationId, c.alice.registrationId);
        assert.equal(m.preKeyId, c.bob.oneTimePreKey?.id);
        assert.equal(m.signedPreKeyId, c.bob.signedPreKey.id);
        assert.equal(m.kyberPreKeyId, c.bob.kyberPreKey.id);
        assert.equal(m.kyberCiphertext?.length, 1569);
        assert.equal(m.kyberCiphertext?.[0], 0x08);
        assert.equal(toHex(m.identityKey.serialized), c.alice.identityKey);
        baseKey ??= toHex(m.baseKey.serialized);
        assert.equal(toHex(m.baseKey.serialized), baseKey, 'one session: one base key');
        // The wrapped SignalMessage: counters in send order, one sending chain, nothing before it.
        assert.equal(m.message.counter, entry.index);
        assert.equal(m.message.previousCounter, 0);
        ratchetKey ??= toHex(m.message.senderRatchetKey.serialized);
        assert.equal(toHex(m.message.senderRatchetKey.serialized), ratchetKey);
        assert.equal(m.message.body.length % 16, 0, 'AES-CBC output is whole blocks');
        assert.equal(m.message.body.length, (Math.floor(entry.plaintext.length / 2 / 16) + 1) * 16, 'PKCS#7 adds 1-16 bytes');
        // Parley re-encodes libsignal's frame to the same bytes (the inner message, SPQR field and all, is kept).
        const again = PreKeySignalMessage.create({
          messageVersion: m.messageVersion,
          registrationId: m.registrationId,
          preKeyId: m.preKeyId,
          signedPreKeyId: m.signedPreKeyId,
          kyberPreKeyId: m.kyberPreKeyId,
          kyberCiphertext: m.kyberCiphertext,
          baseKey: m.baseKey,
          identityKey: m.identityKey,
          message: m.message,
        });
        assert.equal(toHex(again.serialized), entry.body);
      }
    });
  }
});
