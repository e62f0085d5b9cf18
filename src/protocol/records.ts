import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { CryptoProvider } from './crypto.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { KeyPairRecordSchema } from './gen/storage_pb.js';
import { KemKeyPair, KemPublicKey, KemSecretKey, KemType } from './kem.js';
import { KeyPair, PrivateKey, PublicKey } from './keys.js';

/** Version of the persisted prekey record format. */
const RECORD_VERSION = 1;

function decodeRecord(bytes: Uint8Array, what: string): ReturnType<typeof fromBinary<typeof KeyPairRecordSchema>> {
  try {
    const rec = fromBinary(KeyPairRecordSchema, bytes);
    if (rec.version !== RECORD_VERSION) throw new Error(`unknown version ${rec.version}`);
    return rec;
  } catch (cause) {
    throw new ProtocolError(ProtocolErrorCode.InvalidRecord, `${what} does not decode`, { cause });
  }
}

function keyPairOf(rec: { publicKey: Uint8Array; privateKey: Uint8Array }): KeyPair {
  try {
    return new KeyPair(PublicKey.deserialize(rec.publicKey), PrivateKey.deserialize(rec.privateKey));
  } catch (cause) {
    throw new ProtocolError(ProtocolErrorCode.InvalidRecord, 'prekey record holds an invalid key', { cause });
  }
}

function encodeRecord(id: number, publicKey: Uint8Array, privateKey: Uint8Array, signature: Uint8Array, createdAt: number): Uint8Array {
  return toBinary(
    KeyPairRecordSchema,
    create(KeyPairRecordSchema, { id, publicKey, privateKey, signature, createdAt: BigInt(createdAt), version: RECORD_VERSION }),
  );
}

/** A one-time EC prekey we issued. */
export class PreKeyRecord {
  constructor(
    readonly id: number,
    readonly keyPair: KeyPair,
  ) {}

  static async generate(crypto: CryptoProvider, id: number): Promise<PreKeyRecord> {
    return new PreKeyRecord(id, await KeyPair.generate(crypto));
  }

  serialize(): Uint8Array {
    return encodeRecord(this.id, this.keyPair.publicKey.serialized, this.keyPair.privateKey.raw, new Uint8Array(), 0);
  }

  static deserialize(bytes: Uint8Array): PreKeyRecord {
    const rec = decodeRecord(bytes, 'prekey record');
    return new PreKeyRecord(rec.id, keyPairOf(rec));
  }
}

/** A signed EC prekey: its key pair, the identity key's XEdDSA signature over the public key, and when it was made. */
export class SignedPreKeyRecord {
  constructor(
    readonly id: number,
    readonly keyPair: KeyPair,
    readonly signature: Uint8Array,
    /** Milliseconds since the epoch. */
    readonly createdAt: number,
  ) {}

  /** A fresh signed prekey, signed over its 33-byte serialization by `identity`. */
  static async generate(crypto: CryptoProvider, identity: KeyPair, id: number, now: number): Promise<SignedPreKeyRecord> {
    const keyPair = await KeyPair.generate(crypto);
    return new SignedPreKeyRecord(id, keyPair, identity.sign(crypto, keyPair.publicKey.serialized), now);
  }

  serialize(): Uint8Array {
    return encodeRecord(this.id, this.keyPair.publicKey.serialized, this.keyPair.privateKey.raw, this.signature, this.createdAt);
  }

  static deserialize(bytes: Uint8Array): SignedPreKeyRecord {
    const rec = decodeRecord(bytes, 'signed prekey record');
    return new SignedPreKeyRecord(rec.id, keyPairOf(rec), rec.signature, Number(rec.createdAt));
  }
}

/** A Kyber prekey (one-time or last-resort): its KEM key pair, signed by the identity key over `type || public key`. */
export class KyberPreKeyRecord {
  constructor(
    readonly id: number,
    readonly keyPair: KemKeyPair,
    readonly signature: Uint8Array,
    /** Milliseconds since the epoch. */
    readonly createdAt: number,
  ) {}

  static generate(crypto: CryptoProvider, identity: KeyPair, id: number, now: number, type: KemType = KemType.Kyber1024): KyberPreKeyRecord {
    const keyPair = KemKeyPair.generate(crypto, type);
    return new KyberPreKeyRecord(id, keyPair, identity.sign(crypto, keyPair.publicKey.serialize()), now);
  }

  serialize(): Uint8Array {
    return encodeRecord(this.id, this.keyPair.publicKey.serialize(), this.keyPair.secretKey.serialize(), this.signature, this.createdAt);
  }

  static deserialize(bytes: Uint8Array): KyberPreKeyRecord {
    const rec = decodeRecord(bytes, 'Kyber prekey record');
    try {
      const keyPair = new KemKeyPair(KemPublicKey.deserialize(rec.publicKey), KemSecretKey.deserialize(rec.privateKey));
      return new KyberPreKeyRecord(rec.id, keyPair, rec.signature, Number(rec.createdAt));
    } catch (cause) {
      throw new ProtocolError(ProtocolErrorCode.InvalidRecord, 'Kyber prekey record holds an invalid key', { cause });
    }
  }
}

/** What a sender fetches from the server to start a session with one device of a peer. */
export interface PreKeyBundle {
  readonly registrationId: number;
  readonly deviceId: number;
  /** A one-time EC prekey, when the server still had one. */
  readonly preKey?: { readonly id: number; readonly publicKey: PublicKey } | undefined;
  readonly signedPreKey: { readonly id: number; readonly publicKey: PublicKey; readonly signature: Uint8Array };
  readonly kyberPreKey: { readonly id: number; readonly publicKey: KemPublicKey; readonly signature: Uint8Array };
  readonly identityKey: PublicKey;
}
