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
  /**
   * Incremental AES-256-CBC encryption with PKCS#7 padding: the concatenation of every `update` output and
   * the `final` output equals {@link aes256CbcEncrypt} of the concatenated input. Optional, like the three
   * below (media encryption, src/client/media/crypto.ts, uses them to run in constant memory; without them it
   * falls back to {@link chunkedAes256CbcEncryptor} over the one-shot calls and to JavaScript hashes).
   */
  createAes256CbcEncryptor?(key: Uint8Array, iv: Uint8Array): StreamingCipher;
  /**
   * Incremental AES-256-CBC decryption with PKCS#7 padding; `final` rejects on a length that is not a
   * multiple of 16 or on bad padding. The output of `update` is not authenticated: check a MAC before
   * trusting it.
   */
  createAes256CbcDecryptor?(key: Uint8Array, iv: Uint8Array): StreamingCipher;
  /** Incremental HMAC-SHA256 under `key`. */
  createHmacSha256?(key: Uint8Array): IncrementalHash;
  /** Incremental SHA-256. */
  createSha256?(): IncrementalHash;
}

/**
 * An incremental cipher. Calls must not overlap: await each `update` before the next call. Each chunk may
 * have any length; an output may be empty. The input arrays are not kept after the returned promise settles
 * (but must not be changed before).
 */
export interface StreamingCipher {
  /** Processes the next input chunk and returns the output it completes. */
  update(chunk: Uint8Array): Promise<Uint8Array>;
  /** Processes the held-back rest (adding or checking and removing the padding); call once, last. */
  final(): Promise<Uint8Array>;
}

/** An incremental hash or MAC: `update` any number of times, then `digest` once. */
export interface IncrementalHash {
  update(chunk: Uint8Array): void;
  digest(): Uint8Array;
}

/**
 * One-shot AES-256-CBC (PKCS#7) under a fixed key: what {@link chunkedAes256CbcEncryptor} and
 * {@link chunkedAes256CbcDecryptor} build streaming on (WebCrypto has no streaming AES-CBC).
 */
export interface AesCbcOneShot {
  encrypt(iv: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
  decrypt(iv: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array>;
}

const BLOCK = 16;

/** `a ‖ b` without copying when one side is empty. */
function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Streaming AES-256-CBC encryption over a one-shot implementation. Each `update` encrypts the whole blocks
 * it has, drops the padding block the one-shot call appends, and chains the IV from the last ciphertext
 * block; `final` encrypts the (0 to 15 byte) rest with its padding. Holds fewer than 16 bytes between calls.
 */
export function chunkedAes256CbcEncryptor(aes: AesCbcOneShot, iv: Uint8Array): StreamingCipher {
  let chain = iv.slice();
  let pending: Uint8Array = new Uint8Array(0);
  let done = false;
  return {
    async update(chunk) {
      if (done) throw new Error('update after final');
      const data = join(pending, chunk);
      const whole = data.length - (data.length % BLOCK);
      pending = data.slice(whole);
      if (whole === 0) return new Uint8Array(0);
      const out = (await aes.encrypt(chain, data.subarray(0, whole))).subarray(0, whole);
      chain = out.slice(whole - BLOCK);
      return out;
    },
    async final() {
      if (done) throw new Error('final called twice');
      done = true;
      return aes.encrypt(chain, pending);
    },
  };
}

const PADDING_BLOCK = new Uint8Array(BLOCK).fill(BLOCK);

/**
 * Streaming AES-256-CBC decryption over a one-shot implementation. It holds back the last 1 to 16 bytes
 * (the final block carries the padding). A middle run of blocks is decrypted with one extra block appended
 * that decrypts to a full block of padding: the encryption of sixteen 0x10 bytes chained from the run's last
 * ciphertext block; the one-shot call then strips exactly that block. `final` decrypts the last block
 * normally, so it checks the real padding.
 */
export function chunkedAes256CbcDecryptor(aes: AesCbcOneShot, iv: Uint8Array): StreamingCipher {
  let chain = iv.slice();
  let pending: Uint8Array = new Uint8Array(0);
  let done = false;
  return {
    async update(chunk) {
      if (done) throw new Error('update after final');
      const data = join(pending, chunk);
      // Process all whole blocks but keep at least one byte (so at least the last block) back.
      const run = data.length === 0 ? 0 : Math.floor((data.length - 1) / BLOCK) * BLOCK;
      pending = data.slice(run);
      if (run === 0) return new Uint8Array(0);
      const blocks = data.subarray(0, run);
      const last = blocks.slice(run - BLOCK);
      const padding = (await aes.encrypt(last, PADDING_BLOCK)).subarray(0, BLOCK);
      const out = await aes.decrypt(chain, join(blocks, padding));
      if (out.length !== run) throw new Error('AES-CBC chunk decryption returned the wrong length');
      chain = last;
      return out;
    },
    async final() {
      if (done) throw new Error('final called twice');
      done = true;
      if (pending.length !== BLOCK) throw new Error('AES-CBC ciphertext length is not a positive multiple of 16');
      return aes.decrypt(chain, pending);
    },
  };
}

/** Clamps a 32-byte X25519 scalar in place (RFC 7748) and returns it. */
export function clampX25519(scalar: Uint8Array): Uint8Array {
  scalar[0] = (scalar[0] as number) & 248;
  scalar[31] = ((scalar[31] as number) & 127) | 64;
  return scalar;
}
