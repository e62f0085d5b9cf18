import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesEqual, concatBytes, copyBytes } from './bytes.js';
import type { CryptoProvider } from './crypto.js';
import { ProtocolError, ProtocolErrorCode } from './errors.js';

/** Type byte of a serialized Curve25519 public key ("DJB" type in libsignal). */
export const DJB_KEY_TYPE = 0x05;
/** Length of a serialized EC public key: type byte and 32-byte u-coordinate. */
export const PUBLIC_KEY_LENGTH = 33;
/** Length of an XEdDSA signature. */
export const SIGNATURE_LENGTH = 64;

const P = 2n ** 255n - 19n;
const Fp = ed25519.Point.Fp;
const Fn = ed25519.Point.Fn;
const XEDDSA_HASH_PREFIX = new Uint8Array(32).fill(0xff);
XEDDSA_HASH_PREFIX[0] = 0xfe;

/** Birational map u -> y = (u - 1) / (u + 1), little-endian; null for u = -1, which has no Edwards point. */
function montgomeryToEdwardsY(raw: Uint8Array): Uint8Array | null {
  const u = Fp.create(bytesToNumberLE(raw) & ((1n << 255n) - 1n));
  const denominator = Fp.add(u, Fp.ONE);
  if (Fp.is0(denominator)) return null;
  return numberToBytesLE(Fp.div(Fp.sub(u, Fp.ONE), denominator), 32);
}

/** A Curve25519 public key, kept in its 33-byte serialized form (0x05 || u). */
export class PublicKey {
  /** The 33-byte serialization: type byte 0x05 then the u-coordinate. */
  readonly serialized: Uint8Array;
  /** The 32-byte u-coordinate (a view into {@link serialized}, stable for provider key caches). */
  readonly raw: Uint8Array;
  /** The Edwards y of this key, computed on first use (an identity key checks several signatures). */
  #edwardsY: Uint8Array | null | undefined;
  /** The Edwards public keys (y with sign bit 0, then 1); stable arrays, so providers can cache key handles. */
  #edwardsPublic: [Uint8Array, Uint8Array] | undefined;

  private constructor(serialized: Uint8Array) {
    this.serialized = serialized;
    this.raw = serialized.subarray(1);
  }

  /** Parses a 33-byte serialized key; rejects a wrong type byte or length with `InvalidKey`. */
  static deserialize(bytes: Uint8Array): PublicKey {
    if (bytes.length !== PUBLIC_KEY_LENGTH) {
      throw new ProtocolError(ProtocolErrorCode.InvalidKey, `EC public key must be ${PUBLIC_KEY_LENGTH} bytes, got ${bytes.length}`);
    }
    if (bytes[0] !== DJB_KEY_TYPE) {
      throw new ProtocolError(ProtocolErrorCode.InvalidKey, `unknown EC key type ${bytes[0]}`);
    }
    return new PublicKey(copyBytes(bytes));
  }

  /** Wraps a raw 32-byte u-coordinate. */
  static fromRaw(raw: Uint8Array): PublicKey {
    if (raw.length !== 32) throw new ProtocolError(ProtocolErrorCode.InvalidKey, 'raw X25519 key must be 32 bytes');
    return new PublicKey(concatBytes(new Uint8Array([DJB_KEY_TYPE]), raw));
  }

  /** The Ed25519 public key of this Montgomery key with the given sign bit, or null for u = -1. */
  #edwardsPublicKey(signBit: number): Uint8Array | null {
    if (this.#edwardsPublic === undefined) {
      this.#edwardsY ??= montgomeryToEdwardsY(this.raw);
      if (this.#edwardsY === null) return null;
      const withSign = copyBytes(this.#edwardsY);
      withSign[31] = (withSign[31] as number) | 0x80;
      this.#edwardsPublic = [this.#edwardsY, withSign];
    }
    return this.#edwardsPublic[signBit] as Uint8Array;
  }

  /**
   * libsignal's is_canonical: the u-coordinate is below 2^255 - 19 with the top bit clear, and the point
   * has no small-order (torsion) component. PQXDH refuses a base key that is not canonical, so a PreKey
   * message cannot be replayed with a tweaked base key.
   */
  isCanonical(): boolean {
    if (bytesToNumberLE(this.raw) >= P) return false;
    this.#edwardsY ??= montgomeryToEdwardsY(this.raw);
    if (this.#edwardsY === null) return false;
    try {
      return ed25519.Point.fromBytes(this.#edwardsY).isTorsionFree();
    } catch {
      return false;
    }
  }

  /** Byte equality of the serialized forms. */
  equals(other: PublicKey): boolean {
    return bytesEqual(this.serialized, other.serialized);
  }

  /**
   * Verifies an XEdDSA signature as libsignal does: the u-coordinate is mapped to the Edwards point whose
   * sign is carried in the top bit of the signature, then plain Ed25519 verification runs.
   */
  async verifySignature(crypto: CryptoProvider, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (signature.length !== SIGNATURE_LENGTH) return false;
    const signBit = ((signature[63] as number) & 0x80) >> 7;
    const edPublic = this.#edwardsPublicKey(signBit);
    if (edPublic === null) return false;
    const sig = copyBytes(signature);
    sig[63] = (sig[63] as number) & 0x7f;
    // libsignal refuses an s with any of the top three bits set before checking the equation...
    if (((sig[63]) & 0xe0) !== 0) return false;
    // ... and then reduces s modulo the group order, where RFC 8032 verifiers refuse s >= L. Below 2^252
    // (always, for honest signers) s is already reduced.
    if ((sig[63]) >= 0x10) sig.set(numberToBytesLE(Fn.create(bytesToNumberLE(sig.subarray(32))), 32), 32);
    return crypto.ed25519Verify(edPublic, message, sig);
  }
}

/** A Curve25519 private key: 32 clamped bytes. */
export class PrivateKey {
  readonly raw: Uint8Array;
  #edwards: { readonly a: bigint; readonly edPublic: Uint8Array } | undefined;

  private constructor(raw: Uint8Array) {
    this.raw = raw;
  }

  /** Wraps 32 private-key bytes, clamping a copy as X25519 does. */
  static deserialize(bytes: Uint8Array): PrivateKey {
    if (bytes.length !== 32) throw new ProtocolError(ProtocolErrorCode.InvalidKey, 'EC private key must be 32 bytes');
    const raw = copyBytes(bytes);
    raw[0] = (raw[0] as number) & 248;
    raw[31] = ((raw[31] as number) & 127) | 64;
    return new PrivateKey(raw);
  }

  /** Wraps 32 bytes that are already clamped, without copying (for a provider's freshly generated key). */
  static fromClamped(raw: Uint8Array): PrivateKey {
    if (raw.length !== 32 || ((raw[0] as number) & 7) !== 0 || ((raw[31] as number) & 0xc0) !== 0x40) {
      return PrivateKey.deserialize(raw);
    }
    return new PrivateKey(raw);
  }

  /** The 32 bytes (already clamped). */
  serialize(): Uint8Array {
    return copyBytes(this.raw);
  }

  /**
   * XEdDSA signature of `message` (libsignal's calculate_signature): R || s, with the sign bit of the
   * Edwards public key placed in the top bit of the last byte. `random` is 64 fresh random bytes.
   */
  sign(message: Uint8Array, random: Uint8Array): Uint8Array {
    if (random.length !== 64) throw new ProtocolError(ProtocolErrorCode.InvalidArgument, 'XEdDSA needs 64 random bytes');
    // a*B is the same for every signature: computed once per key (one of the two base multiplications).
    if (this.#edwards === undefined) {
      const scalar = Fn.create(bytesToNumberLE(this.raw));
      this.#edwards = { a: scalar, edPublic: ed25519.Point.BASE.multiply(scalar).toBytes() };
    }
    const { a, edPublic } = this.#edwards;
    const signBit = (edPublic[31] as number) & 0x80;
    const r = Fn.create(bytesToNumberLE(sha512(concatBytes(XEDDSA_HASH_PREFIX, this.raw, message, random))));
    const capR = ed25519.Point.BASE.multiply(r === 0n ? 1n : r).toBytes();
    const h = Fn.create(bytesToNumberLE(sha512(concatBytes(capR, edPublic, message))));
    const s = Fn.add(Fn.mul(h, a), r);
    const signature = concatBytes(capR, numberToBytesLE(s, 32));
    signature[63] = ((signature[63] as number) & 0x7f) | signBit;
    return signature;
  }
}

/** A Curve25519 key pair. */
export class KeyPair {
  constructor(
    readonly publicKey: PublicKey,
    readonly privateKey: PrivateKey,
  ) {}

  /** A fresh key pair from the provider. */
  static async generate(crypto: CryptoProvider): Promise<KeyPair> {
    const { privateKey, publicKey } = await crypto.x25519GenerateKeyPair();
    // Keep the provider's own private-key array (already clamped): providers cache key handles by array.
    return new KeyPair(PublicKey.fromRaw(publicKey), PrivateKey.fromClamped(privateKey));
  }

  /** The key pair of a stored private key. */
  static async fromPrivateKey(crypto: CryptoProvider, privateKey: PrivateKey): Promise<KeyPair> {
    return new KeyPair(PublicKey.fromRaw(await crypto.x25519PublicKey(privateKey.raw)), privateKey);
  }

  /** XEdDSA signature with this key pair's private key. */
  sign(crypto: CryptoProvider, message: Uint8Array): Uint8Array {
    return this.privateKey.sign(message, crypto.randomBytes(64));
  }
}

/** An identity key pair (a long-term Curve25519 key pair). */
export type IdentityKeyPair = KeyPair;

/**
 * X25519 agreement between our private key and their public key. An all-zero result (a low-order
 * public key) is refused with `InvalidKey`, as libsignal refuses it.
 */
export async function calculateAgreement(crypto: CryptoProvider, ours: KeyPair, theirs: PublicKey): Promise<Uint8Array> {
  let shared: Uint8Array;
  try {
    shared = await crypto.x25519(ours.privateKey.raw, theirs.raw, ours.publicKey.raw);
  } catch (cause) {
    throw new ProtocolError(ProtocolErrorCode.InvalidKey, 'X25519 agreement failed', { cause });
  }
  let acc = 0;
  for (const b of shared) acc |= b;
  if (acc === 0) throw new ProtocolError(ProtocolErrorCode.InvalidKey, 'X25519 agreement is all zero');
  return shared;
}

/** A 14-bit registration id as libsignal generates them (1..16380). */
export function generateRegistrationId(crypto: CryptoProvider): number {
  const b = crypto.randomBytes(2);
  return ((((b[0] as number) << 8) | (b[1] as number)) % 16380) + 1;
}
