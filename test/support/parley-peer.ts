// A Parley peer for the isomorphic unit tests: one device with in-memory stores, driven through the public
// API of src/protocol only, with an injected crypto provider and an injected clock. It has the same shape
// as test/interop/support/parties.ts's Party (bundle, processBundle, encrypt, decrypt), so the scenario
// helpers in this folder run unchanged against libsignal in the Node-only interop tests.
import {
  CiphertextMessageType,
  type CryptoProvider,
  InMemoryIdentityKeyStore,
  InMemoryKyberPreKeyStore,
  InMemoryPreKeyStore,
  InMemorySessionStore,
  InMemorySignedPreKeyStore,
  KemPublicKey,
  KeyPair,
  KyberPreKeyRecord,
  PreKeyRecord,
  PreKeySignalMessage,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SignalMessage,
  SignedPreKeyRecord,
  generateRegistrationId,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
  type PreKeyBundle,
  type ProtocolStores,
} from '../../src/protocol/index.ts';

/** A prekey bundle in plain bytes, as a server relays it. */
export interface BundleBytes {
  registrationId: number;
  deviceId: number;
  preKeyId?: number;
  preKey?: Uint8Array;
  signedPreKeyId: number;
  signedPreKey: Uint8Array;
  signedPreKeySignature: Uint8Array;
  kyberPreKeyId: number;
  kyberPreKey: Uint8Array;
  kyberPreKeySignature: Uint8Array;
  identityKey: Uint8Array;
}

/** An encrypted message as an envelope carries it: the ciphertext type (2 Whisper, 3 PreKey) and the bytes. */
export interface Wire {
  type: number;
  body: Uint8Array;
}

/** What the conversation and scenario helpers need of a peer, whichever implementation plays it. */
export interface Peer {
  readonly name: string;
  bundle(options?: { oneTime?: boolean }): Promise<BundleBytes>;
  processBundle(peer: string, bundle: BundleBytes, now?: number): Promise<void>;
  encrypt(peer: string, plaintext: Uint8Array, now?: number): Promise<Wire>;
  decrypt(peer: string, wire: Wire): Promise<Uint8Array>;
}

/** The device id every test peer uses. */
export const DEVICE_ID = 1;
/** A fixed "now" for deterministic tests: 2025-01-01T00:00:00Z. */
export const T0 = Date.UTC(2025, 0, 1);

/** Converts bundle bytes to the protocol's PreKeyBundle. */
export function toPreKeyBundle(b: BundleBytes): PreKeyBundle {
  return {
    registrationId: b.registrationId,
    deviceId: b.deviceId,
    preKey: b.preKeyId !== undefined && b.preKey ? { id: b.preKeyId, publicKey: PublicKey.deserialize(b.preKey) } : undefined,
    signedPreKey: { id: b.signedPreKeyId, publicKey: PublicKey.deserialize(b.signedPreKey), signature: b.signedPreKeySignature },
    kyberPreKey: { id: b.kyberPreKeyId, publicKey: KemPublicKey.deserialize(b.kyberPreKey), signature: b.kyberPreKeySignature },
    identityKey: PublicKey.deserialize(b.identityKey),
  };
}

/** Decodes a wire message with Parley's decoders (for either ciphertext type). */
export function decodeWire(wire: Wire): SignalMessage | PreKeySignalMessage {
  return wire.type === CiphertextMessageType.PreKey ? PreKeySignalMessage.deserialize(wire.body) : SignalMessage.deserialize(wire.body);
}

/** The SignalMessage inside a wire message (the wrapped one for a PreKey message). */
export function innerMessage(wire: Wire): SignalMessage {
  const m = decodeWire(wire);
  return m instanceof PreKeySignalMessage ? m.message : m;
}

/** A Parley device with in-memory stores. */
export class ParleyPeer implements Peer {
  readonly kind = 'parley';
  /** The clock used when a call is given no `now`; tests move it forward explicitly. */
  now = T0;
  readonly signedPreKeyId = 7;
  readonly kyberPreKeyId = 9;
  #nextPreKeyId = 1;

  private constructor(
    readonly crypto: CryptoProvider,
    readonly name: string,
    readonly identity: KeyPair,
    readonly registrationId: number,
    readonly stores: ProtocolStores,
  ) {}

  /**
   * A fresh device: identity (a new one unless given: two devices of one account share it), one signed
   * prekey and one last-resort Kyber prekey.
   */
  static async create(crypto: CryptoProvider, name: string, identity?: KeyPair): Promise<ParleyPeer> {
    identity ??= await KeyPair.generate(crypto);
    const registrationId = generateRegistrationId(crypto);
    const peer = ParleyPeer.withKeys(crypto, name, identity, registrationId);
    await peer.stores.signedPreKeys.storeSignedPreKey(
      peer.signedPreKeyId,
      await SignedPreKeyRecord.generate(crypto, identity, peer.signedPreKeyId, T0),
    );
    await peer.stores.kyberPreKeys.storeKyberPreKey(peer.kyberPreKeyId, KyberPreKeyRecord.generate(crypto, identity, peer.kyberPreKeyId, T0), {
      lastResort: true,
    });
    return peer;
  }

  /** A device with the given identity and empty prekey stores (the caller stores its prekeys). */
  static withKeys(crypto: CryptoProvider, name: string, identity: KeyPair, registrationId: number): ParleyPeer {
    const stores: ProtocolStores = {
      identity: new InMemoryIdentityKeyStore(identity, registrationId),
      preKeys: new InMemoryPreKeyStore(),
      signedPreKeys: new InMemorySignedPreKeyStore(),
      kyberPreKeys: new InMemoryKyberPreKeyStore(),
      sessions: new InMemorySessionStore(),
    };
    return new ParleyPeer(crypto, name, identity, registrationId, stores);
  }

  get identityKey(): Uint8Array {
    return this.identity.publicKey.serialized;
  }

  address(peer: string): ProtocolAddress {
    return new ProtocolAddress(peer, DEVICE_ID);
  }

  /** A bundle; a fresh one-time prekey each call unless `oneTime` is false. */
  async bundle(options: { oneTime?: boolean } = {}): Promise<BundleBytes> {
    const spk = await this.stores.signedPreKeys.getSignedPreKey(this.signedPreKeyId);
    const kyber = await this.stores.kyberPreKeys.getKyberPreKey(this.kyberPreKeyId);
    const b: BundleBytes = {
      registrationId: this.registrationId,
      deviceId: DEVICE_ID,
      signedPreKeyId: spk.id,
      signedPreKey: spk.keyPair.publicKey.serialized,
      signedPreKeySignature: spk.signature,
      kyberPreKeyId: kyber.id,
      kyberPreKey: kyber.keyPair.publicKey.serialize(),
      kyberPreKeySignature: kyber.signature,
      identityKey: this.identityKey,
    };
    if (options.oneTime !== false) {
      const id = this.#nextPreKeyId++;
      const rec = await PreKeyRecord.generate(this.crypto, id);
      await this.stores.preKeys.storePreKey(id, rec);
      b.preKeyId = id;
      b.preKey = rec.keyPair.publicKey.serialized;
    }
    return b;
  }

  async processBundle(peer: string, b: BundleBytes, now = this.now): Promise<void> {
    return processPreKeyBundle(this.crypto, toPreKeyBundle(b), this.address(peer), this.stores, now);
  }

  async encrypt(peer: string, plaintext: Uint8Array, now = this.now): Promise<Wire> {
    const m = await signalEncrypt(this.crypto, plaintext, this.address(peer), this.stores, now);
    return { type: m.type, body: m.serialized };
  }

  /** Async so that decoder errors also arrive as rejections. */
  async decrypt(peer: string, wire: Wire): Promise<Uint8Array> {
    const address = this.address(peer);
    if (wire.type === CiphertextMessageType.PreKey) {
      return signalDecryptPreKey(this.crypto, PreKeySignalMessage.deserialize(wire.body), address, this.stores);
    }
    return signalDecrypt(this.crypto, SignalMessage.deserialize(wire.body), address, this.stores);
  }

  /** Accepts `identityKey` as `peer`'s identity (what a user does after a safety-number change). */
  async trustIdentity(peer: string, identityKey: Uint8Array): Promise<void> {
    await this.stores.identity.saveIdentity(this.address(peer), PublicKey.deserialize(identityKey));
  }

  /** The stored session record for `peer` (a copy), or null. */
  record(peer: string): Promise<SessionRecord | null> {
    return this.stores.sessions.loadSession(this.address(peer));
  }

  /** The serialized stored record for `peer`, or undefined when there is none. */
  async recordBytes(peer: string): Promise<Uint8Array | undefined> {
    return (await this.record(peer))?.serialize();
  }

  /** Replaces the stored record for `peer`. */
  setRecord(peer: string, record: SessionRecord): Promise<void> {
    return this.stores.sessions.storeSession(this.address(peer), record);
  }
}
