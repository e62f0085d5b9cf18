import { ml_kem1024, type KEMPrepared } from '@noble/post-quantum/ml-kem.js';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { bytesEqual, concatBytes, constantTimeEqual } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';

/** KEM key type bytes as libsignal serializes them. */
export const KemType = {
  /** Pre-standard (round-3) Kyber1024: what libsignal 0.90 generates and accepts. */
  Kyber1024: 0x08,
  /** ML-KEM-1024 (FIPS 203). */
  MlKem1024: 0x0a,
} as const;
export type KemType = (typeof KemType)[keyof typeof KemType];

const PUBLIC_KEY_BYTES = 1568;
const SECRET_KEY_BYTES = 3168;
/** The secret key is dk_pke (1,536 bytes) || ek || H(ek) || z. */
const EMBEDDED_PUBLIC_KEY_OFFSET = 1536;
/** Raw KEM ciphertext length for both types (the serialized form adds the type byte). */
export const KEM_CIPHERTEXT_BYTES = 1568;

function parseType(byte: number | undefined): KemType {
  if (byte === KemType.Kyber1024 || byte === KemType.MlKem1024) return byte;
  throw new ProtocolError(ProtocolErrorCode.InvalidKey, `unknown KEM key type ${String(byte)}`);
}

/** A KEM public key: type byte and raw key (1568 bytes for both Kyber1024 and ML-KEM-1024). */
export class KemPublicKey {
  private constructor(
    readonly type: KemType,
    readonly raw: Uint8Array,
  ) {}

  /** Parses `type || raw`; wrong type or length gives `InvalidKey`. */
  static deserialize(bytes: Uint8Array): KemPublicKey {
    const type = parseType(bytes[0]);
    if (bytes.length !== 1 + PUBLIC_KEY_BYTES) throw new ProtocolError(ProtocolErrorCode.InvalidKey, `KEM public key must be ${1 + PUBLIC_KEY_BYTES} bytes`);
    return new KemPublicKey(type, bytes.slice(1));
  }

  static fromRaw(type: KemType, raw: Uint8Array): KemPublicKey {
    return new KemPublicKey(type, raw);
  }

  /** `type || raw` (1,569 bytes): the bytes the identity key signs. */
  serialize(): Uint8Array {
    return concatBytes(new Uint8Array([this.type]), this.raw);
  }

  equals(other: KemPublicKey): boolean {
    return this.type === other.type && bytesEqual(this.raw, other.raw);
  }

  /**
   * Encapsulates a fresh shared secret to this key. Returns the 32-byte secret and the serialized
   * ciphertext (`type || 1568 bytes`).
   *
   * Round-3 Kyber is ML-KEM with two differences in how the secret is derived: the random message is
   * hashed first (m = SHA3-256(m0)) and the result is SHAKE-256(K || SHA3-256(c)). The encryption itself is
   * the same, so we run ML-KEM's deterministic encapsulation with m and apply the final KDF.
   */
  encapsulate(crypto: CryptoProvider): { sharedSecret: Uint8Array; ciphertext: Uint8Array } {
    const m0 = crypto.randomBytes(32);
    let out: { cipherText: Uint8Array; sharedSecret: Uint8Array };
    try {
      out = ml_kem1024.encapsulate(this.raw, this.type === KemType.Kyber1024 ? sha3_256(m0) : m0);
    } catch (cause) {
      throw new ProtocolError(ProtocolErrorCode.InvalidKey, 'invalid KEM public key', { cause });
    }
    const sharedSecret = this.type === KemType.Kyber1024 ? kyberKdf(out.sharedSecret, out.cipherText) : out.sharedSecret;
    return { sharedSecret, ciphertext: concatBytes(new Uint8Array([this.type]), out.cipherText) };
  }
}

/** A KEM secret key: type byte and raw key (3,168 bytes). */
export class KemSecretKey {
  /**
   * ML-KEM decapsulation re-encrypts under the public key embedded in the secret key. Preparing that key
   * (expanding its matrix) halves the cost of later decapsulations but costs more than one plain call, so
   * a key is prepared on its second use (a last-resort key is used again and again; a one-time key once).
   */
  #prepared: KEMPrepared | undefined;
  #uses = 0;

  private constructor(
    readonly type: KemType,
    readonly raw: Uint8Array,
  ) {}

  static deserialize(bytes: Uint8Array): KemSecretKey {
    const type = parseType(bytes[0]);
    if (bytes.length !== 1 + SECRET_KEY_BYTES) throw new ProtocolError(ProtocolErrorCode.InvalidKey, `KEM secret key must be ${1 + SECRET_KEY_BYTES} bytes`);
    return new KemSecretKey(type, bytes.slice(1));
  }

  static fromRaw(type: KemType, raw: Uint8Array): KemSecretKey {
    return new KemSecretKey(type, raw);
  }

  serialize(): Uint8Array {
    return concatBytes(new Uint8Array([this.type]), this.raw);
  }

  /**
   * Decapsulates a serialized ciphertext (`type || 1568 bytes`) to the 32-byte shared secret. A ciphertext
   * of the wrong type or length is `InvalidMessage`; a forged one of the right shape yields an unrelated
   * secret (implicit rejection), as in both KEMs.
   */
  decapsulate(ciphertext: Uint8Array): Uint8Array {
    if (ciphertext[0] !== this.type || ciphertext.length !== 1 + KEM_CIPHERTEXT_BYTES) {
      throw new ProtocolError(ProtocolErrorCode.InvalidMessage, 'KEM ciphertext of the wrong type or length');
    }
    const c = ciphertext.subarray(1);
    let k: Uint8Array;
    try {
      if (this.#prepared === undefined && ++this.#uses > 1) {
        this.#prepared = ml_kem1024.prepare(this.raw.subarray(EMBEDDED_PUBLIC_KEY_OFFSET, EMBEDDED_PUBLIC_KEY_OFFSET + PUBLIC_KEY_BYTES));
      }
      k = this.#prepared ? this.#prepared.decapsulate(c, this.raw) : ml_kem1024.decapsulate(c, this.raw);
    } catch (cause) {
      throw new ProtocolError(ProtocolErrorCode.InvalidKey, 'invalid KEM secret key', { cause });
    }
    if (this.type === KemType.MlKem1024) return k;
    // ML-KEM's implicit rejection returns SHAKE-256(z || c); round-3 Kyber's returns SHAKE-256(z || H(c)).
    // z is the last 32 bytes of the secret key. Recognise the rejection value and substitute round 3's.
    const z = this.raw.subarray(SECRET_KEY_BYTES - 32);
    const rejection = shake256(concatBytes(z, c), { dkLen: 32 });
    return kyberKdf(constantTimeEqual(k, rejection) ? z : k, c);
  }
}

/** Round-3 Kyber's final key derivation: SHAKE-256(k || SHA3-256(c)), 32 bytes. */
function kyberKdf(k: Uint8Array, c: Uint8Array): Uint8Array {
  return shake256(concatBytes(k, sha3_256(c)), { dkLen: 32 });
}

/** A KEM key pair. */
export class KemKeyPair {
  constructor(
    readonly publicKey: KemPublicKey,
    readonly secretKey: KemSecretKey,
  ) {}

  /**
   * A fresh key pair of `type` (Kyber1024 by default: what libsignal 0.90 accepts). Key generation is
   * ML-KEM's: its keys have exactly the format and distribution of round-3 Kyber keys.
   */
  static generate(crypto: CryptoProvider, type: KemType = KemType.Kyber1024): KemKeyPair {
    const { publicKey, secretKey } = ml_kem1024.keygen(crypto.randomBytes(64));
    return new KemKeyPair(KemPublicKey.fromRaw(type, publicKey), KemSecretKey.fromRaw(type, secretKey));
  }
}
