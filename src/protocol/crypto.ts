/**
 * The primitives the protocol core composes. The core never picks an implementation itself: the caller
 * injects a provider (WebCrypto in the browser, `node:crypto`'s synchronous calls in Node). Every method
 * is asynchronous so that WebCrypto fits; a synchronous provider simply returns settled promises.
 *
 * Providers receive and return plain `Uint8Array`s. They may cache platform key handles keyed by the
 * identity of the arrays they are given, so callers keep key bytes in long-lived objects rather than
 * copying them per call.
 */
export interface CryptoProvider {
  /** `length` bytes from a cryptographically secure generator. */
  randomBytes(length: number): Uint8Array;
  /** SHA-512 of the concatenation of `parts`. */
  sha512(...parts: Uint8Array[]): Promise<Uint8Array>;
  /** HMAC-SHA256 of the concatenation of `parts` under `key`. */
  hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array>;
  /** HKDF-SHA256 (RFC 5869); an absent `salt` means 32 zero bytes. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array | undefined, info: Uint8Array, length: number): Promise<Uint8Array>;
  /** AES-256-CBC with PKCS#7 padding. */
  aes256CbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
  /** AES-256-CBC with PKCS#7 padding; rejects (any error) on a bad length or bad padding. */
  aes256CbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array>;
  /** A fresh X25519 key pair: 32-byte clamped private scalar and 32-byte public u-coordinate. */
  x25519GenerateKeyPair(): Promise<{ privateKey: Uint8Array; publicKey: Uint8Array }>;
  /** The X25519 public key of a 32-byte private key. */
  x25519PublicKey(privateKey: Uint8Array): Promise<Uint8Array>;
  /**
   * X25519(privateKey, publicKey): the raw 32-byte shared secret (the caller rejects all-zero).
   * `ourPublicKey`, the public key of `privateKey` when the caller has it, lets a provider import the
   * private key without deriving it again.
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array, ourPublicKey?: Uint8Array): Promise<Uint8Array>;
  /** Plain Ed25519 (RFC 8032) verification of a 64-byte signature by a 32-byte Edwards public key. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /**
   * Plain Ed25519 (RFC 8032) signature (64 bytes) of `message` under the key of a 32-byte `seed`. Our
   * sender-key signing keys are made from Ed25519 seeds, so a provider that has it signs them natively (a
   * fraction of the cost of XEdDSA in JavaScript; see src/protocol/sender-key-record.ts). Optional: without
   * it, sender keys sign with XEdDSA. It may cache a key handle per seed array.
   */
  ed25519Sign?(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
}

/** Clamps a 32-byte X25519 scalar in place (RFC 7748) and returns it. */
export function clampX25519(scalar: Uint8Array): Uint8Array {
  scalar[0] = (scalar[0] as number) & 248;
  scalar[31] = ((scalar[31] as number) & 127) | 64;
  return scalar;
}
