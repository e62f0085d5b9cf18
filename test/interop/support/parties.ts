// Two implementations of one "party" interface, so the same interoperability scenarios run with either
// side played by libsignal-client 0.90.0 (the oracle) or by Parley's protocol core.
import * as ls from '@signalapp/libsignal-client';
import { NodeCryptoProvider } from '../../../src/node/crypto-provider.ts';
import {
  CiphertextMessageType,
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
  ProtocolError,
  ProtocolErrorCode,
  PublicKey,
  SignalMessage,
  SignedPreKeyRecord,
  generateRegistrationId,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
  type ProtocolStores,
} from '../../../src/protocol/index.ts';

export const crypto = new NodeCryptoProvider();

// The bundle and message shapes are the pure test support's (it also runs in the browser).
export type { BundleBytes, Wire } from '../../support/parley-peer.ts';
import type { BundleBytes, Wire } from '../../support/parley-peer.ts';

export interface Party {
  readonly kind: 'libsignal' | 'parley';
  readonly name: string;
  readonly identityKey: Uint8Array;
  /** A fresh bundle (a new one-time prekey each call unless `oneTime` is false). */
  bundle(options?: { oneTime?: boolean }): Promise<BundleBytes>;
  processBundle(peer: string, bundle: BundleBytes, now?: number): Promise<void>;
  encrypt(peer: string, plaintext: Uint8Array, now?: number): Promise<Wire>;
  decrypt(peer: string, wire: Wire): Promise<Uint8Array>;
  /** Signs bytes with the identity key (XEdDSA). */
  sign(message: Uint8Array): Uint8Array;
  /** Verifies an identity-key signature made by `signer`. */
  verify(signerIdentityKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /** Accepts `identityKey` as `peer`'s identity (saveIdentity), as a user does after a safety-number change. */
  trustIdentity(peer: string, identityKey: Uint8Array): Promise<void>;
}

/**
 * The implementation-independent kind of an error thrown by either party, for comparing libsignal's
 * behaviour with Parley's: 'untrusted', 'duplicate', 'signature', or 'fail' for every other refusal.
 */
export function errorKind(err: unknown): string {
  if (err instanceof ProtocolError) {
    if (err.is(ProtocolErrorCode.UntrustedIdentity)) return 'untrusted';
    if (err.is(ProtocolErrorCode.DuplicateMessage)) return 'duplicate';
    if (err.is(ProtocolErrorCode.InvalidSignature)) return 'signature';
    return 'fail';
  }
  if (err instanceof ls.LibSignalErrorBase) {
    if (err.is(ls.ErrorCode.UntrustedIdentity)) return 'untrusted';
    if (err.is(ls.ErrorCode.DuplicatedMessage)) return 'duplicate';
    if (/signature/i.test(err.message)) return 'signature';
    return 'fail';
  }
  throw err instanceof Error ? err : new Error(String(err));
}

const DEVICE_ID = 1;
const u8 = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

class LsIdentityStore extends ls.IdentityKeyStore {
  readonly known = new Map<string, ls.PublicKey>();
  constructor(
    readonly key: ls.PrivateKey,
    readonly registrationId: number,
  ) {
    super();
  }
  getIdentityKey(): Promise<ls.PrivateKey> {
    return Promise.resolve(this.key);
  }
  getLocalRegistrationId(): Promise<number> {
    return Promise.resolve(this.registrationId);
  }
  saveIdentity(name: ls.ProtocolAddress, key: ls.PublicKey): Promise<ls.IdentityChange> {
    const old = this.known.get(name.toString());
    this.known.set(name.toString(), key);
    return Promise.resolve(old && !old.equals(key) ? ls.IdentityChange.ReplacedExisting : ls.IdentityChange.NewOrUnchanged);
  }
  isTrustedIdentity(name: ls.ProtocolAddress, key: ls.PublicKey): Promise<boolean> {
    const old = this.known.get(name.toString());
    return Promise.resolve(!old || old.equals(key));
  }
  getIdentity(name: ls.ProtocolAddress): Promise<ls.PublicKey | null> {
    return Promise.resolve(this.known.get(name.toString()) ?? null);
  }
}

class LsSessionStore extends ls.SessionStore {
  readonly sessions = new Map<string, ls.SessionRecord>();
  saveSession(name: ls.ProtocolAddress, record: ls.SessionRecord): Promise<void> {
    this.sessions.set(name.toString(), record);
    return Promise.resolve();
  }
  getSession(name: ls.ProtocolAddress): Promise<ls.SessionRecord | null> {
    return Promise.resolve(this.sessions.get(name.toString()) ?? null);
  }
  getExistingSessions(addresses: ls.ProtocolAddress[]): Promise<ls.SessionRecord[]> {
    return Promise.resolve(addresses.map((a) => this.sessions.get(a.toString())).filter((r): r is ls.SessionRecord => !!r));
  }
}

class LsPreKeyStore extends ls.PreKeyStore {
  readonly keys = new Map<number, ls.PreKeyRecord>();
  savePreKey(id: number, record: ls.PreKeyRecord): Promise<void> {
    this.keys.set(id, record);
    return Promise.resolve();
  }
  getPreKey(id: number): Promise<ls.PreKeyRecord> {
    const k = this.keys.get(id);
    return k ? Promise.resolve(k) : Promise.reject(new Error(`no prekey ${id}`));
  }
  removePreKey(id: number): Promise<void> {
    this.keys.delete(id);
    return Promise.resolve();
  }
}

class LsSignedPreKeyStore extends ls.SignedPreKeyStore {
  readonly keys = new Map<number, ls.SignedPreKeyRecord>();
  saveSignedPreKey(id: number, record: ls.SignedPreKeyRecord): Promise<void> {
    this.keys.set(id, record);
    return Promise.resolve();
  }
  getSignedPreKey(id: number): Promise<ls.SignedPreKeyRecord> {
    const k = this.keys.get(id);
    return k ? Promise.resolve(k) : Promise.reject(new Error(`no signed prekey ${id}`));
  }
}

class LsKyberPreKeyStore extends ls.KyberPreKeyStore {
  readonly keys = new Map<number, ls.KyberPreKeyRecord>();
  saveKyberPreKey(id: number, record: ls.KyberPreKeyRecord): Promise<void> {
    this.keys.set(id, record);
    return Promise.resolve();
  }
  getKyberPreKey(id: number): Promise<ls.KyberPreKeyRecord> {
    const k = this.keys.get(id);
    return k ? Promise.resolve(k) : Promise.reject(new Error(`no kyber prekey ${id}`));
  }
  markKyberPreKeyUsed(): Promise<void> {
    return Promise.resolve();
  }
}

/** A party played by libsignal-client. */
export class LibsignalParty implements Party {
  readonly kind = 'libsignal';
  readonly identity = ls.IdentityKeyPair.generate();
  readonly identityStore = new LsIdentityStore(this.identity.privateKey, generateRegistrationId(crypto));
  readonly sessions = new LsSessionStore();
  readonly preKeys = new LsPreKeyStore();
  readonly signedPreKeys = new LsSignedPreKeyStore();
  readonly kyberPreKeys = new LsKyberPreKeyStore();
  #nextId = 1;
  readonly signedPreKeyId = 7;
  readonly kyberPreKeyId = 9;

  private constructor(readonly name: string) {}

  static create(name: string): LibsignalParty {
    const p = new LibsignalParty(name);
    const spk = ls.PrivateKey.generate();
    const spkSig = p.identity.privateKey.sign(spk.getPublicKey().serialize());
    p.signedPreKeys.keys.set(p.signedPreKeyId, ls.SignedPreKeyRecord.new(p.signedPreKeyId, Date.now(), spk.getPublicKey(), spk, spkSig));
    const kyber = ls.KEMKeyPair.generate();
    const kyberSig = p.identity.privateKey.sign(kyber.getPublicKey().serialize());
    p.kyberPreKeys.keys.set(p.kyberPreKeyId, ls.KyberPreKeyRecord.new(p.kyberPreKeyId, Date.now(), kyber, kyberSig));
    return p;
  }

  get identityKey(): Uint8Array {
    return this.identity.publicKey.serialize();
  }

  bundle(options: { oneTime?: boolean } = {}): Promise<BundleBytes> {
    const spk = this.signedPreKeys.keys.get(this.signedPreKeyId) as ls.SignedPreKeyRecord;
    const kyber = this.kyberPreKeys.keys.get(this.kyberPreKeyId) as ls.KyberPreKeyRecord;
    const b: BundleBytes = {
      registrationId: this.identityStore.registrationId,
      deviceId: DEVICE_ID,
      signedPreKeyId: this.signedPreKeyId,
      signedPreKey: spk.publicKey().serialize(),
      signedPreKeySignature: spk.signature(),
      kyberPreKeyId: this.kyberPreKeyId,
      kyberPreKey: kyber.publicKey().serialize(),
      kyberPreKeySignature: kyber.signature(),
      identityKey: this.identityKey,
    };
    if (options.oneTime !== false) {
      const id = this.#nextId++;
      const pk = ls.PrivateKey.generate();
      this.preKeys.keys.set(id, ls.PreKeyRecord.new(id, pk.getPublicKey(), pk));
      b.preKeyId = id;
      b.preKey = pk.getPublicKey().serialize();
    }
    return Promise.resolve(b);
  }

  async processBundle(peer: string, b: BundleBytes, now = Date.now()): Promise<void> {
    const bundle = ls.PreKeyBundle.new(
      b.registrationId,
      b.deviceId,
      b.preKeyId ?? null,
      b.preKey ? ls.PublicKey.deserialize(u8(b.preKey)) : null,
      b.signedPreKeyId,
      ls.PublicKey.deserialize(u8(b.signedPreKey)),
      u8(b.signedPreKeySignature),
      ls.PublicKey.deserialize(u8(b.identityKey)),
      b.kyberPreKeyId,
      ls.KEMPublicKey.deserialize(u8(b.kyberPreKey)),
      u8(b.kyberPreKeySignature),
    );
    await ls.processPreKeyBundle(bundle, ls.ProtocolAddress.new(peer, DEVICE_ID), this.sessions, this.identityStore, new Date(now));
  }

  async encrypt(peer: string, plaintext: Uint8Array, now = Date.now()): Promise<Wire> {
    const m = await ls.signalEncrypt(u8(plaintext), ls.ProtocolAddress.new(peer, DEVICE_ID), this.sessions, this.identityStore, new Date(now));
    return { type: m.type(), body: m.serialize() };
  }

  decrypt(peer: string, wire: Wire): Promise<Uint8Array> {
    const address = ls.ProtocolAddress.new(peer, DEVICE_ID);
    if (wire.type === CiphertextMessageType.PreKey) {
      return ls.signalDecryptPreKey(
        ls.PreKeySignalMessage.deserialize(u8(wire.body)),
        address,
        this.sessions,
        this.identityStore,
        this.preKeys,
        this.signedPreKeys,
        this.kyberPreKeys,
      );
    }
    return ls.signalDecrypt(ls.SignalMessage.deserialize(u8(wire.body)), address, this.sessions, this.identityStore);
  }

  sign(message: Uint8Array): Uint8Array {
    return this.identity.privateKey.sign(u8(message));
  }

  verify(signerIdentityKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return Promise.resolve(ls.PublicKey.deserialize(u8(signerIdentityKey)).verify(u8(message), u8(signature)));
  }

  async trustIdentity(peer: string, identityKey: Uint8Array): Promise<void> {
    await this.identityStore.saveIdentity(ls.ProtocolAddress.new(peer, DEVICE_ID), ls.PublicKey.deserialize(u8(identityKey)));
  }
}

/** A party played by Parley's protocol core with its in-memory stores. */
export class ParleyParty implements Party {
  readonly kind = 'parley';
  #nextId = 1;
  readonly signedPreKeyId = 7;
  readonly kyberPreKeyId = 9;

  private constructor(
    readonly name: string,
    readonly identity: KeyPair,
    readonly stores: ProtocolStores,
  ) {}

  static async create(name: string): Promise<ParleyParty> {
    const identity = await KeyPair.generate(crypto);
    const stores: ProtocolStores = {
      identity: new InMemoryIdentityKeyStore(identity, generateRegistrationId(crypto)),
      preKeys: new InMemoryPreKeyStore(),
      signedPreKeys: new InMemorySignedPreKeyStore(),
      kyberPreKeys: new InMemoryKyberPreKeyStore(),
      sessions: new InMemorySessionStore(),
    };
    const p = new ParleyParty(name, identity, stores);
    await stores.signedPreKeys.storeSignedPreKey(p.signedPreKeyId, await SignedPreKeyRecord.generate(crypto, identity, p.signedPreKeyId, Date.now()));
    await stores.kyberPreKeys.storeKyberPreKey(p.kyberPreKeyId, KyberPreKeyRecord.generate(crypto, identity, p.kyberPreKeyId, Date.now()), { lastResort: true });
    return p;
  }

  get identityKey(): Uint8Array {
    return this.identity.publicKey.serialized;
  }

  async bundle(options: { oneTime?: boolean } = {}): Promise<BundleBytes> {
    const spk = await this.stores.signedPreKeys.getSignedPreKey(this.signedPreKeyId);
    const kyber = await this.stores.kyberPreKeys.getKyberPreKey(this.kyberPreKeyId);
    const b: BundleBytes = {
      registrationId: await this.stores.identity.getLocalRegistrationId(),
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
      const id = this.#nextId++;
      const rec = await PreKeyRecord.generate(crypto, id);
      await this.stores.preKeys.storePreKey(id, rec);
      b.preKeyId = id;
      b.preKey = rec.keyPair.publicKey.serialized;
    }
    return b;
  }

  processBundle(peer: string, b: BundleBytes, now = Date.now()): Promise<void> {
    return processPreKeyBundle(
      crypto,
      {
        registrationId: b.registrationId,
        deviceId: b.deviceId,
        preKey: b.preKeyId !== undefined && b.preKey ? { id: b.preKeyId, publicKey: PublicKey.deserialize(b.preKey) } : undefined,
        signedPreKey: { id: b.signedPreKeyId, publicKey: PublicKey.deserialize(b.signedPreKey), signature: b.signedPreKeySignature },
        kyberPreKey: { id: b.kyberPreKeyId, publicKey: KemPublicKey.deserialize(b.kyberPreKey), signature: b.kyberPreKeySignature },
        identityKey: PublicKey.deserialize(b.identityKey),
      },
      new ProtocolAddress(peer, DEVICE_ID),
      this.stores,
      now,
    );
  }

  async encrypt(peer: string, plaintext: Uint8Array, now = Date.now()): Promise<Wire> {
    const m = await signalEncrypt(crypto, plaintext, new ProtocolAddress(peer, DEVICE_ID), this.stores, now);
    return { type: m.type, body: m.serialized };
  }

  decrypt(peer: string, wire: Wire): Promise<Uint8Array> {
    const address = new ProtocolAddress(peer, DEVICE_ID);
    if (wire.type === CiphertextMessageType.PreKey) {
      return signalDecryptPreKey(crypto, PreKeySignalMessage.deserialize(wire.body), address, this.stores);
    }
    return signalDecrypt(crypto, SignalMessage.deserialize(wire.body), address, this.stores);
  }

  sign(message: Uint8Array): Uint8Array {
    return this.identity.sign(crypto, message);
  }

  verify(signerIdentityKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return PublicKey.deserialize(signerIdentityKey).verifySignature(crypto, message, signature);
  }

  async trustIdentity(peer: string, identityKey: Uint8Array): Promise<void> {
    await this.stores.identity.saveIdentity(new ProtocolAddress(peer, DEVICE_ID), PublicKey.deserialize(identityKey));
  }
}
