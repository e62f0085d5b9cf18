// Tests of Sender Keys (src/protocol/sender-keys.ts) against our own implementation and against wire
// fixtures made by libsignal 0.90 (test/vectors/sender-keys.json). Pure: no libsignal import, so
// `npm run test:browser` runs this same file in Chromium against the WebCrypto provider.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { provider, providerName } from '../../support/provider.ts';
import vectors from '../../vectors/sender-keys.json' with { type: 'json' };
import { ProtocolAddress } from '../../../src/protocol/address.ts';
import { concatBytes, fromHex, toHex, utf8 } from '../../../src/protocol/bytes.ts';
import type { CryptoProvider } from '../../../src/protocol/crypto.ts';
import { ProtocolError, ProtocolErrorCode } from '../../../src/protocol/errors.ts';
import { KeyPair } from '../../../src/protocol/keys.ts';
import {
  InMemorySenderKeyStore,
  MAX_SENDER_KEY_STATES,
  SENDER_KEY_MAX_FORWARD_JUMPS,
  SENDER_KEY_MAX_MESSAGE_KEYS,
  SenderKeyDistributionMessage,
  SenderKeyMessage,
  SenderKeyRecord,
  createSenderKeyDistributionMessage,
  distributionIdFromBytes,
  distributionIdToBytes,
  groupDecrypt,
  groupEncrypt,
  processSenderKeyDistributionMessage,
  type SenderKeyStore,
} from '../../../src/protocol/sender-keys.ts';

const crypto: CryptoProvider = provider;
const DIST = 'd1d1d1d1-7000-11eb-b32a-33b8a8a487a6';
const OTHER_DIST = '0b5e7c11-2f3a-4c5d-8e9f-a0b1c2d3e4f5';
const alice = new ProtocolAddress('alice', 1);
const bob = new ProtocolAddress('bob', 2);
const text = (s: string): Uint8Array => utf8(s);
const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Deterministic filler bytes for malformed-input tests (xorshift32; not for keys). */
function pseudoRandom(seed: number, length: number): Uint8Array {
  let x = seed >>> 0 || 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: ProtocolErrorCode, message?: string): Promise<void> {
  await assert.rejects(
    async () => (typeof promise === 'function' ? promise() : promise),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
      assert.equal(err.code, code, message ?? err.message);
      return true;
    },
  );
}

/** Alice's sending store, Bob's receiving store, Alice's distribution processed by Bob. */
async function groupOfTwo(c: CryptoProvider = crypto): Promise<{ aliceStore: InMemorySenderKeyStore; bobStore: InMemorySenderKeyStore }> {
  const aliceStore = new InMemorySenderKeyStore();
  const bobStore = new InMemorySenderKeyStore();
  const skdm = await createSenderKeyDistributionMessage(c, aliceStore, alice, DIST);
  await processSenderKeyDistributionMessage(c, alice, SenderKeyDistributionMessage.deserialize(skdm.serialize()), bobStore);
  return { aliceStore, bobStore };
}

/** A sender whose chain the test drives by hand: an independent derivation of the chain and message keys. */
class ManualSender {
  private constructor(
    readonly keyPair: KeyPair,
    readonly chainId: number,
    readonly chainKey: Uint8Array,
    readonly distributionId: string,
  ) {}

  static async create(chainId = 4242, distributionId = DIST): Promise<ManualSender> {
    return new ManualSender(await KeyPair.generate(crypto), chainId, crypto.randomBytes(32), distributionId);
  }

  skdm(): SenderKeyDistributionMessage {
    return SenderKeyDistributionMessage.create({
      distributionId: this.distributionId,
      chainId: this.chainId,
      iteration: 0,
      chainKey: this.chainKey,
      signingKey: this.keyPair.publicKey,
    });
  }

  /** Chain keys at every 1,000th iteration, so that far positions are not derived from 0 each time. */
  readonly #checkpoints = new Map<number, Uint8Array>();

  async chainKeyAt(iteration: number): Promise<Uint8Array> {
    let from = iteration - (iteration % 1000);
    while (from > 0 && !this.#checkpoints.has(from)) from -= 1000;
    let key = from === 0 ? this.chainKey : this.#checkpoints.get(from)!;
    for (let i = from; i < iteration; i++) {
      key = await crypto.hmacSha256(key, Uint8Array.of(2));
      if ((i + 1) % 1000 === 0) this.#checkpoints.set(i + 1, key);
    }
    return key;
  }

  /** A message at `iteration`; `ciphertext` overrides the real encryption. */
  async message(iteration: number, plaintext: Uint8Array, options: { chainKey?: Uint8Array; ciphertext?: Uint8Array } = {}): Promise<Uint8Array> {
    let ciphertext = options.ciphertext;
    if (ciphertext === undefined) {
      const chainKey = options.chainKey ?? (await this.chainKeyAt(iteration));
      const seed = await crypto.hmacSha256(chainKey, Uint8Array.of(1));
      const okm = await crypto.hkdfSha256(seed, undefined, utf8('WhisperGroup'), 48);
      ciphertext = await crypto.aes256CbcEncrypt(okm.subarray(16, 48), okm.subarray(0, 16), plaintext);
    }
    const fields = { distributionId: this.distributionId, chainId: this.chainId, iteration, ciphertext };
    return SenderKeyMessage.create(crypto, fields, this.keyPair.privateKey).serialize();
  }
}

/** `base` with `ed25519Sign` replaced (or hidden, when `ed25519Sign` is undefined). */
function withSigner(base: CryptoProvider, ed25519Sign: CryptoProvider['ed25519Sign']): CryptoProvider {
  return new Proxy(base, {
    get(target, prop) {
      if (prop === 'ed25519Sign') return ed25519Sign;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A provider that signs Ed25519 natively (here with noble, which runs everywhere). */
const withEd25519Signing = (base: CryptoProvider): CryptoProvider =>
  withSigner(base, async (seed: Uint8Array, message: Uint8Array): Promise<Uint8Array> => ed25519.sign(message, seed));
/** A provider without native Ed25519 signing: sender keys fall back to XEdDSA. */
const withoutEd25519Signing = (base: CryptoProvider): CryptoProvider => withSigner(base, undefined);

describe(`Sender Keys (${providerName})`, () => {
  describe('distribution ids', () => {
    it('round-trips UUID text and bytes, canonical lower case', () => {
      const bytes = distributionIdToBytes(DIST.toUpperCase());
      assert.equal(toHex(bytes), 'd1d1d1d1700011ebb32a33b8a8a487a6');
      assert.equal(distributionIdFromBytes(bytes), DIST);
    });

    it('refuses text that is not a UUID with InvalidArgument', async () => {
      for (const bad of ['', 'd1d1d1d1700011ebb32a33b8a8a487a6', `${DIST}0`, DIST.replace('d', 'g')]) {
        await rejectsWith(() => distributionIdToBytes(bad), ProtocolErrorCode.InvalidArgument);
        await rejectsWith(createSenderKeyDistributionMessage(crypto, new InMemorySenderKeyStore(), alice, bad), ProtocolErrorCode.InvalidArgument);
      }
    });
  });

  describe('wire fixtures from libsignal 0.90', () => {
    const v = vectors.senderKeys;
    const sender = new ProtocolAddress(v.sender.name, v.sender.deviceId);

    it('parses the distribution message and re-encodes it byte for byte', () => {
      const skdm = SenderKeyDistributionMessage.deserialize(fromHex(v.skdm));
      assert.equal(skdm.serialize()[0], 0x33);
      assert.equal(skdm.messageVersion, 3);
      assert.equal(skdm.distributionId, v.distributionId);
      assert.equal(skdm.chainId, v.chainId);
      assert.equal(skdm.iteration, 0);
      const again = SenderKeyDistributionMessage.create({
        distributionId: skdm.distributionId,
        chainId: skdm.chainId,
        iteration: skdm.iteration,
        chainKey: skdm.chainKey,
        signingKey: skdm.signingKey,
      });
      assert.equal(toHex(again.serialize()), v.skdm);
    });

    it('parses the group messages and re-encodes their signed part byte for byte', async () => {
      const skdm = SenderKeyDistributionMessage.deserialize(fromHex(v.skdm));
      for (const m of v.messages) {
        const bytes = fromHex(m.serialized);
        const skm = SenderKeyMessage.deserialize(bytes);
        assert.equal(bytes[0], 0x33);
        assert.equal(skm.messageVersion, 3);
        assert.equal(skm.distributionId, v.distributionId);
        assert.equal(skm.chainId, v.chainId);
        assert.equal(skm.iteration, m.iteration);
        assert.equal(skm.signature.length, 64);
        assert.equal(toHex(skm.serialize()), m.serialized);
        assert.ok(await skm.verifySignature(crypto, skdm.signingKey), 'libsignal signature verifies');
        const ours = SenderKeyMessage.create(crypto, skm, (await KeyPair.generate(crypto)).privateKey);
        assert.equal(toHex(ours.content), toHex(skm.content), 'same protobuf encoding as libsignal');
      }
    });

    it('decrypts libsignal messages out of order, refuses replays and tampering, and keeps working', async () => {
      const store = new InMemorySenderKeyStore();
      await processSenderKeyDistributionMessage(crypto, sender, SenderKeyDistributionMessage.deserialize(fromHex(v.skdm)), store);
      const order = [4, 0, 2];
      for (const i of order) {
        const m = v.messages[i]!;
        assert.equal(toHex(await groupDecrypt(crypto, store, sender, fromHex(m.serialized))), m.plaintext);
      }
      await rejectsWith(groupDecrypt(crypto, store, sender, fromHex(v.messages[2]!.serialized)), ProtocolErrorCode.DuplicateMessage);
      await rejectsWith(groupDecrypt(crypto, store, sender, fromHex(v.messages[4]!.serialized)), ProtocolErrorCode.DuplicateMessage);
      const tampered = fromHex(v.messages[1]!.serialized);
      tampered[tampered.length - 10] = (tampered[tampered.length - 10] as number) ^ 0x01;
      await rejectsWith(groupDecrypt(crypto, store, sender, tampered), ProtocolErrorCode.InvalidSignature);
      const tamperedBody = fromHex(v.messages[1]!.serialized);
      tamperedBody[30] = (tamperedBody[30] as number) ^ 0x80;
      await assert.rejects(groupDecrypt(crypto, store, sender, tamperedBody), (e) => ProtocolError.is(e));
      await rejectsWith(groupDecrypt(crypto, store, new ProtocolAddress(v.sender.name, 2), fromHex(v.messages[1]!.serialized)), ProtocolErrorCode.NoSenderKeyState);
      for (const i of [3, 1]) {
        const m = v.messages[i]!;
        assert.equal(toHex(await groupDecrypt(crypto, store, sender, fromHex(m.serialized))), m.plaintext);
      }
    });
  });

  describe('group cipher', () => {
    it('creates one chain per distribution id and re-sends the same distribution until used', async () => {
      const store = new InMemorySenderKeyStore();
      const a = await createSenderKeyDistributionMessage(crypto, store, alice, DIST);
      const b = await createSenderKeyDistributionMessage(crypto, store, alice, DIST.toUpperCase());
      assert.equal(toHex(a.serialize()), toHex(b.serialize()));
      assert.equal(a.serialize()[0], 0x33);
      assert.ok(a.chainId < 2 ** 31, '31-bit chain id');
      assert.equal(a.iteration, 0);
      const other = await createSenderKeyDistributionMessage(crypto, store, alice, OTHER_DIST);
      assert.notEqual(toHex(other.chainKey), toHex(a.chainKey));
      await groupEncrypt(crypto, store, alice, DIST, text('advance'));
      const later = await createSenderKeyDistributionMessage(crypto, store, alice, DIST);
      assert.equal(later.iteration, 1);
      assert.equal(later.chainId, a.chainId);
    });

    it('encrypts and decrypts in order, out of order, and refuses duplicates', async () => {
      const { aliceStore, bobStore } = await groupOfTwo();
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 12; i++) {
        const skm = await groupEncrypt(crypto, aliceStore, alice, DIST, text(`message ${i}`));
        assert.equal(skm.iteration, i);
        assert.equal(skm.serialize()[0], 0x33);
        sent.push(skm.serialize());
      }
      for (const i of [0, 1, 5, 3, 11, 2, 4, 10, 6, 9, 7, 8]) {
        assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, sent[i]!)), `message ${i}`);
      }
      for (const i of [0, 5, 11]) await rejectsWith(groupDecrypt(crypto, bobStore, alice, sent[i]!), ProtocolErrorCode.DuplicateMessage);
      const next = await groupEncrypt(crypto, aliceStore, alice, DIST, new Uint8Array());
      assert.equal((await groupDecrypt(crypto, bobStore, alice, next.serialize())).length, 0);
    });

    it('encrypts plaintexts of every padding length', async () => {
      const { aliceStore, bobStore } = await groupOfTwo();
      for (let n = 0; n <= 33; n++) {
        const plaintext = pseudoRandom(n + 1, n);
        const skm = await groupEncrypt(crypto, aliceStore, alice, DIST, plaintext);
        assert.equal(skm.ciphertext.length, (Math.floor(n / 16) + 1) * 16);
        assert.equal(toHex(await groupDecrypt(crypto, bobStore, alice, skm.serialize())), toHex(plaintext));
      }
    });

    it('refuses to encrypt without a chain of our own (NoSenderKeyState)', async () => {
      const { bobStore } = await groupOfTwo();
      await rejectsWith(groupEncrypt(crypto, new InMemorySenderKeyStore(), alice, DIST, text('x')), ProtocolErrorCode.NoSenderKeyState);
      // Bob holds Alice's chain, but not its private signing key.
      await rejectsWith(groupEncrypt(crypto, bobStore, alice, DIST, text('x')), ProtocolErrorCode.NoSenderKeyState);
    });

    it('refuses an unknown distribution id or chain id (NoSenderKeyState), then keeps working', async () => {
      const { aliceStore, bobStore } = await groupOfTwo();
      await createSenderKeyDistributionMessage(crypto, aliceStore, alice, OTHER_DIST);
      const unknownDistribution = await groupEncrypt(crypto, aliceStore, alice, OTHER_DIST, text('elsewhere'));
      await rejectsWith(groupDecrypt(crypto, bobStore, alice, unknownDistribution.serialize()), ProtocolErrorCode.NoSenderKeyState);
      const stranger = await ManualSender.create(777);
      await rejectsWith(groupDecrypt(crypto, bobStore, alice, await stranger.message(0, text('who?'))), ProtocolErrorCode.NoSenderKeyState);
      await rejectsWith(groupDecrypt(crypto, bobStore, bob, (await groupEncrypt(crypto, aliceStore, alice, DIST, text('x'))).serialize()), ProtocolErrorCode.NoSenderKeyState);
      const ok = await groupEncrypt(crypto, aliceStore, alice, DIST, text('still fine'));
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, ok.serialize())), 'still fine');
    });

    it('refuses a tampered signature or body (InvalidSignature) without changing the record', async () => {
      const { aliceStore, bobStore } = await groupOfTwo();
      const skm = (await groupEncrypt(crypto, aliceStore, alice, DIST, text('signed'))).serialize();
      const before = toHex((await bobStore.loadSenderKey(alice, DIST))!.serialize());
      for (const index of [skm.length - 1, skm.length - 33, skm.length - 64, skm.length - 70, 5]) {
        const tampered = skm.slice();
        tampered[index] = (tampered[index] as number) ^ 0x04;
        await assert.rejects(groupDecrypt(crypto, bobStore, alice, tampered), (e) => ProtocolError.is(e) && (e.is(ProtocolErrorCode.InvalidSignature) || e.is(ProtocolErrorCode.InvalidMessage) || e.is(ProtocolErrorCode.NoSenderKeyState)));
      }
      const lastByteFlipped = skm.slice();
      lastByteFlipped[lastByteFlipped.length - 2] = (lastByteFlipped[lastByteFlipped.length - 2] as number) ^ 0x01;
      await rejectsWith(groupDecrypt(crypto, bobStore, alice, lastByteFlipped), ProtocolErrorCode.InvalidSignature);
      // The low nibble of the version byte is not read, but it is signed.
      const lowNibble = skm.slice();
      lowNibble[0] = 0x34;
      assert.equal(SenderKeyMessage.deserialize(lowNibble).messageVersion, 3);
      await rejectsWith(groupDecrypt(crypto, bobStore, alice, lowNibble), ProtocolErrorCode.InvalidSignature);
      // A message signed by another key.
      const forger = await KeyPair.generate(crypto);
      const parsed = SenderKeyMessage.deserialize(skm);
      await rejectsWith(groupDecrypt(crypto, bobStore, alice, SenderKeyMessage.create(crypto, parsed, forger.privateKey).serialize()), ProtocolErrorCode.InvalidSignature);
      assert.equal(toHex((await bobStore.loadSenderKey(alice, DIST))!.serialize()), before, 'record unchanged');
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, skm)), 'signed');
    });

    it('refuses a signed message whose ciphertext does not decrypt (InvalidMessage), record unchanged', async () => {
      const sender = await ManualSender.create();
      const store = new InMemorySenderKeyStore();
      await processSenderKeyDistributionMessage(crypto, alice, sender.skdm(), store);
      const before = toHex((await store.loadSenderKey(alice, DIST))!.serialize());
      for (const ciphertext of [new Uint8Array(), pseudoRandom(3, 15), pseudoRandom(4, 32)]) {
        await rejectsWith(groupDecrypt(crypto, store, alice, await sender.message(3, text(''), { ciphertext })), ProtocolErrorCode.InvalidMessage);
      }
      assert.equal(toHex((await store.loadSenderKey(alice, DIST))!.serialize()), before, 'record unchanged');
      for (const i of [3, 0, 2, 1]) assert.equal(decode(await groupDecrypt(crypto, store, alice, await sender.message(i, text(`m${i}`)))), `m${i}`);
    });

    it(`accepts a jump of ${SENDER_KEY_MAX_FORWARD_JUMPS} and refuses one further (TooFarInFuture)`, async () => {
      const sender = await ManualSender.create();
      const store = new InMemorySenderKeyStore();
      await processSenderKeyDistributionMessage(crypto, alice, sender.skdm(), store);
      await rejectsWith(groupDecrypt(crypto, store, alice, await sender.message(SENDER_KEY_MAX_FORWARD_JUMPS + 1, text(''), { ciphertext: new Uint8Array(16) })), ProtocolErrorCode.TooFarInFuture);
      await rejectsWith(groupDecrypt(crypto, store, alice, await sender.message(0xffffffff, text(''), { ciphertext: new Uint8Array(16) })), ProtocolErrorCode.TooFarInFuture);
      assert.equal(decode(await groupDecrypt(crypto, store, alice, await sender.message(0, text('zero')))), 'zero');
      const far = 1 + SENDER_KEY_MAX_FORWARD_JUMPS;
      assert.equal(decode(await groupDecrypt(crypto, store, alice, await sender.message(far, text('far')))), 'far');
      // Only the newest skipped keys are kept.
      const oldest = far - SENDER_KEY_MAX_MESSAGE_KEYS;
      await rejectsWith(groupDecrypt(crypto, store, alice, await sender.message(oldest - 1, text('gone'))), ProtocolErrorCode.DuplicateMessage);
      assert.equal(decode(await groupDecrypt(crypto, store, alice, await sender.message(oldest, text('kept')))), 'kept');
      assert.equal(decode(await groupDecrypt(crypto, store, alice, await sender.message(far - 1, text('kept too')))), 'kept too');
    });

    it(`keeps at most ${SENDER_KEY_MAX_MESSAGE_KEYS} skipped keys, dropping the oldest`, async () => {
      const sender = await ManualSender.create();
      const store = new InMemorySenderKeyStore();
      await processSenderKeyDistributionMessage(crypto, alice, sender.skdm(), store);
      assert.equal(decode(await groupDecrypt(crypto, store, alice, await sender.message(1500, text('a')))), 'a');
      assert.equal(decode(await groupDecrypt(crypto, store, alice, await sender.message(2600, text('b')))), 'b');
      // 1500 + 1099 skipped; the 599 oldest (0..598) are gone.
      await rejectsWith(groupDecrypt(crypto, store, alice, await sender.message(598, text('x'))), ProtocolErrorCode.DuplicateMessage);
      for (const i of [599, 1499, 1501, 2599]) assert.equal(decode(await groupDecrypt(crypto, store, alice, await sender.message(i, text(`m${i}`)))), `m${i}`);
      await rejectsWith(groupDecrypt(crypto, store, alice, await sender.message(1500, text('a'))), ProtocolErrorCode.DuplicateMessage);
    });

    it('detects overlapping encryptions on the in-memory store instead of reusing a key', async () => {
      const { aliceStore, bobStore } = await groupOfTwo();
      const results = await Promise.allSettled([
        groupEncrypt(crypto, aliceStore, alice, DIST, text('one')),
        groupEncrypt(crypto, aliceStore, alice, DIST, text('two')),
      ]);
      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r) => r.status === 'rejected');
      assert.equal(fulfilled.length, 1);
      assert.equal(rejected.length, 1);
      assert.ok(ProtocolError.is(rejected[0]!.reason, ProtocolErrorCode.InvalidArgument));
      const winner = fulfilled[0]!.value;
      assert.equal(winner.iteration, 0);
      assert.ok(['one', 'two'].includes(decode(await groupDecrypt(crypto, bobStore, alice, winner.serialize()))));
      const next = await groupEncrypt(crypto, aliceStore, alice, DIST, text('three'));
      assert.equal(next.iteration, 1);
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, next.serialize())), 'three');
    });

    it('signs with native Ed25519 when the provider offers it, and with XEdDSA otherwise, for the same key', async () => {
      const native = withEd25519Signing(crypto);
      const xeddsa = withoutEd25519Signing(crypto);
      const { aliceStore, bobStore } = await groupOfTwo(native);
      const a = await groupEncrypt(native, aliceStore, alice, DIST, text('native'));
      const b = await groupEncrypt(xeddsa, aliceStore, alice, DIST, text('xeddsa'));
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, a.serialize())), 'native');
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, b.serialize())), 'xeddsa');
      // Ed25519 signatures are deterministic; XEdDSA ones are randomized.
      const content = a.content;
      const state = (await aliceStore.loadSenderKey(alice, DIST))!.currentState()!;
      assert.equal(toHex(await state.sign(native, content)), toHex(await state.sign(native, content)));
      assert.notEqual(toHex(await state.sign(xeddsa, content)), toHex(await state.sign(xeddsa, content)));
    });
  });

  describe('distribution processing and the record', () => {
    it('keeps the progress of a chain when its distribution message is processed again', async () => {
      const { aliceStore, bobStore } = await groupOfTwo();
      const skdm = await createSenderKeyDistributionMessage(crypto, aliceStore, alice, DIST);
      const m0 = (await groupEncrypt(crypto, aliceStore, alice, DIST, text('zero'))).serialize();
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, m0)), 'zero');
      await processSenderKeyDistributionMessage(crypto, alice, skdm, bobStore);
      await rejectsWith(groupDecrypt(crypto, bobStore, alice, m0), ProtocolErrorCode.DuplicateMessage);
    });

    it('replaces a chain with the same id but another signing key', async () => {
      const store = new InMemorySenderKeyStore();
      const first = await ManualSender.create(9);
      const second = await ManualSender.create(9);
      await processSenderKeyDistributionMessage(crypto, alice, first.skdm(), store);
      await processSenderKeyDistributionMessage(crypto, alice, second.skdm(), store);
      assert.deepEqual((await store.loadSenderKey(alice, DIST))!.chainIds, [9]);
      await rejectsWith(groupDecrypt(crypto, store, alice, await first.message(0, text('old'))), ProtocolErrorCode.InvalidSignature);
      assert.equal(decode(await groupDecrypt(crypto, store, alice, await second.message(0, text('new')))), 'new');
    });

    it(`keeps at most ${MAX_SENDER_KEY_STATES} chains, newest first, and moves a re-sent one to the front`, async () => {
      const store = new InMemorySenderKeyStore();
      const senders = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => ManualSender.create(id)));
      for (const s of senders.slice(0, 5)) await processSenderKeyDistributionMessage(crypto, alice, s.skdm(), store);
      assert.deepEqual((await store.loadSenderKey(alice, DIST))!.chainIds, [5, 4, 3, 2, 1]);
      await processSenderKeyDistributionMessage(crypto, alice, senders[0]!.skdm(), store);
      assert.deepEqual((await store.loadSenderKey(alice, DIST))!.chainIds, [1, 5, 4, 3, 2]);
      await processSenderKeyDistributionMessage(crypto, alice, senders[5]!.skdm(), store);
      assert.deepEqual((await store.loadSenderKey(alice, DIST))!.chainIds, [6, 1, 5, 4, 3]);
      await rejectsWith(groupDecrypt(crypto, store, alice, await senders[1]!.message(0, text('evicted'))), ProtocolErrorCode.NoSenderKeyState);
      for (const s of [senders[2]!, senders[0]!, senders[5]!]) {
        assert.equal(decode(await groupDecrypt(crypto, store, alice, await s.message(1, text(`chain ${s.chainId}`)))), `chain ${s.chainId}`);
      }
    });

    it('survives serialization with its progress and skipped keys, on both sides', async () => {
      const { aliceStore, bobStore } = await groupOfTwo();
      const sent = [];
      for (let i = 0; i < 6; i++) sent.push((await groupEncrypt(crypto, aliceStore, alice, DIST, text(`m${i}`))).serialize());
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, sent[4]!)), 'm4');
      const reloadedBob = new InMemorySenderKeyStore();
      const bobBytes = (await bobStore.loadSenderKey(alice, DIST))!.serialize();
      await reloadedBob.storeSenderKey(alice, DIST, SenderKeyRecord.deserialize(bobBytes));
      assert.equal(toHex(SenderKeyRecord.deserialize(bobBytes).serialize()), toHex(bobBytes), 'stable encoding');
      for (const i of [1, 0, 5, 3, 2]) assert.equal(decode(await groupDecrypt(crypto, reloadedBob, alice, sent[i]!)), `m${i}`);
      await rejectsWith(groupDecrypt(crypto, reloadedBob, alice, sent[4]!), ProtocolErrorCode.DuplicateMessage);

      const reloadedAlice = new InMemorySenderKeyStore();
      await reloadedAlice.storeSenderKey(alice, DIST, SenderKeyRecord.deserialize((await aliceStore.loadSenderKey(alice, DIST))!.serialize()));
      const next = await groupEncrypt(withoutEd25519Signing(crypto), reloadedAlice, alice, DIST, text('after reload'));
      assert.equal(next.iteration, 6);
      assert.equal(decode(await groupDecrypt(crypto, reloadedBob, alice, next.serialize())), 'after reload');
      const nativeNext = await groupEncrypt(withEd25519Signing(crypto), reloadedAlice, alice, DIST, text('native after reload'));
      assert.equal(decode(await groupDecrypt(crypto, reloadedBob, alice, nativeNext.serialize())), 'native after reload');
    });

    it('refuses a damaged record with InvalidRecord', async () => {
      const { aliceStore } = await groupOfTwo();
      const good = (await aliceStore.loadSenderKey(alice, DIST))!.serialize();
      const cases: Uint8Array[] = [
        pseudoRandom(7, 64),
        good.subarray(0, good.length - 3),
        concatBytes(good, Uint8Array.of(0x78, 0x02)), // version 2
        Uint8Array.of(0x78, 0x01, 0x0a, 0x00), // one empty state: no chain key
      ];
      const state = good.subarray(0, good.length - 2); // the states, without the version field
      cases.push(concatBytes(state, state, state, state, state, state, Uint8Array.of(0x78, 0x01))); // six states
      for (const bytes of cases) await rejectsWith(() => SenderKeyRecord.deserialize(bytes), ProtocolErrorCode.InvalidRecord, toHex(bytes).slice(0, 40));
      assert.equal(new SenderKeyRecord().chainIds.length, 0);
      assert.equal(SenderKeyRecord.deserialize(new SenderKeyRecord().serialize()).chainIds.length, 0);
    });
  });

  describe('decoders', () => {
    async function validMessage(): Promise<{ skm: Uint8Array; skdm: Uint8Array; bobStore: SenderKeyStore; aliceStore: SenderKeyStore }> {
      const { aliceStore, bobStore } = await groupOfTwo();
      const skdm = (await createSenderKeyDistributionMessage(crypto, aliceStore, alice, DIST)).serialize();
      const skm = (await groupEncrypt(crypto, aliceStore, alice, DIST, text('hello'))).serialize();
      return { skm, skdm, bobStore, aliceStore };
    }

    it('refuses truncated, random and oversized SenderKeyMessages with InvalidMessage, then keeps working', async () => {
      const { skm, bobStore, aliceStore } = await validMessage();
      for (let n = 0; n < skm.length; n++) {
        await rejectsWith(groupDecrypt(crypto, bobStore, alice, skm.subarray(0, n)), ProtocolErrorCode.InvalidMessage, `prefix ${n}`);
      }
      for (let seed = 1; seed <= 50; seed++) {
        const junk = concatBytes(Uint8Array.of(0x33), pseudoRandom(seed, 64 + seed * 3));
        await rejectsWith(groupDecrypt(crypto, bobStore, alice, junk), ProtocolErrorCode.InvalidMessage, `junk ${seed}`);
      }
      await rejectsWith(() => SenderKeyMessage.deserialize(concatBytes(Uint8Array.of(0x33), new Uint8Array(256 * 1024))), ProtocolErrorCode.InvalidMessage);
      // A protobuf without a 16-byte distribution id.
      const parsed = SenderKeyMessage.deserialize(skm);
      const shortId = concatBytes(Uint8Array.of(0x33, 0x0a, 0x02, 0x01, 0x02, 0x10, 0x01, 0x18, 0x00, 0x22, 0x00), parsed.signature);
      await rejectsWith(() => SenderKeyMessage.deserialize(shortId), ProtocolErrorCode.InvalidMessage);
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, skm)), 'hello');
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, (await groupEncrypt(crypto, aliceStore, alice, DIST, text('after'))).serialize())), 'after');
    });

    it('reads the version from the high nibble: below 3 is LegacyVersion, above 3 UnrecognizedVersion', async () => {
      const { skm, skdm, bobStore } = await validMessage();
      for (const [byte, code] of [
        [0x23, ProtocolErrorCode.LegacyVersion],
        [0x03, ProtocolErrorCode.LegacyVersion],
        [0x43, ProtocolErrorCode.UnrecognizedVersion],
        [0xf3, ProtocolErrorCode.UnrecognizedVersion],
      ] as const) {
        const m = skm.slice();
        m[0] = byte;
        await rejectsWith(groupDecrypt(crypto, bobStore, alice, m), code);
        const d = skdm.slice();
        d[0] = byte;
        await rejectsWith(() => SenderKeyDistributionMessage.deserialize(d), code);
      }
      assert.equal(decode(await groupDecrypt(crypto, bobStore, alice, skm)), 'hello');
    });

    it('refuses malformed SenderKeyDistributionMessages with InvalidMessage', async () => {
      const { skdm } = await validMessage();
      const parsed = SenderKeyDistributionMessage.deserialize(skdm);
      for (let n = 0; n < skdm.length; n++) await rejectsWith(() => SenderKeyDistributionMessage.deserialize(skdm.subarray(0, n)), ProtocolErrorCode.InvalidMessage, `prefix ${n}`);
      for (let seed = 1; seed <= 50; seed++) {
        await rejectsWith(() => SenderKeyDistributionMessage.deserialize(concatBytes(Uint8Array.of(0x33), pseudoRandom(seed, 70 + seed))), ProtocolErrorCode.InvalidMessage, `junk ${seed}`);
      }
      await rejectsWith(() => SenderKeyDistributionMessage.deserialize(concatBytes(skdm, new Uint8Array(1024))), ProtocolErrorCode.InvalidMessage);
      // Fields of the wrong size or type, re-encoded by hand: 0x0a uuid, 0x10 chain id, 0x18 iteration, 0x22 chain key, 0x2a signing key.
      const field = (tag: number, bytes: Uint8Array): Uint8Array => concatBytes(Uint8Array.of(tag, bytes.length), bytes);
      const uuid = distributionIdToBytes(DIST);
      const key = parsed.signingKey.serialized;
      const build = (parts: { uuid?: Uint8Array; chainKey?: Uint8Array; signingKey?: Uint8Array }): Uint8Array =>
        concatBytes(
          Uint8Array.of(0x33),
          parts.uuid ? field(0x0a, parts.uuid) : new Uint8Array(),
          Uint8Array.of(0x10, 0x05, 0x18, 0x00),
          parts.chainKey ? field(0x22, parts.chainKey) : new Uint8Array(),
          parts.signingKey ? field(0x2a, parts.signingKey) : new Uint8Array(),
        );
      assert.equal(SenderKeyDistributionMessage.deserialize(build({ uuid, chainKey: parsed.chainKey, signingKey: key })).chainId, 5);
      const badKeyType = key.slice();
      badKeyType[0] = 0x06;
      for (const parts of [
        { chainKey: parsed.chainKey, signingKey: key },
        { uuid: uuid.subarray(0, 15), chainKey: parsed.chainKey, signingKey: key },
        { uuid, chainKey: parsed.chainKey.subarray(0, 31), signingKey: key },
        { uuid, chainKey: new Uint8Array(33), signingKey: key },
        { uuid, chainKey: parsed.chainKey, signingKey: key.subarray(1) },
        { uuid, chainKey: parsed.chainKey, signingKey: badKeyType },
        { uuid, signingKey: concatBytes(key, new Uint8Array(40)) },
      ]) {
        await rejectsWith(() => SenderKeyDistributionMessage.deserialize(build(parts)), ProtocolErrorCode.InvalidMessage);
      }
    });

    it('refuses SenderKeyDistributionMessage fields of the wrong shape when building one (InvalidArgument)', async () => {
      const signingKey = (await KeyPair.generate(crypto)).publicKey;
      const base = { distributionId: DIST, chainId: 1, iteration: 0, chainKey: new Uint8Array(32), signingKey };
      for (const bad of [{ chainKey: new Uint8Array(31) }, { chainId: -1 }, { iteration: 2 ** 32 }, { chainId: 1.5 }, { distributionId: 'nope' }]) {
        await rejectsWith(() => SenderKeyDistributionMessage.create({ ...base, ...bad }), ProtocolErrorCode.InvalidArgument);
      }
    });
  });
});
