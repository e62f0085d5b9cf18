import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomFillSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { clampX25519, type CryptoProvider, type IncrementalHash, type StreamingCipher } from '../protocol/crypto.js';

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const ZERO_SALT = Buffer.alloc(32);

const view = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const b64url = (b: Uint8Array): string => view(b).toString('base64url');
const fromB64url = (s: string | undefined): Uint8Array => bytes(Buffer.from(s ?? '', 'base64url'));

const PLACEHOLDER_X = b64url(new Uint8Array(32));

/**
 * Imports a raw X25519 private key. Node's JWK import takes `x` but derives the public key from `d` itself
 * (OpenSSL's raw private-key import), so when the caller does not know the public key a placeholder is
 * given and the real one is read back from the key object. JWK import is about ten times cheaper than
 * PKCS#8 here (OpenSSL 3's DER decoders); PKCS#8 remains the fallback should a Node release check `x`.
 */
function importX25519PrivateKey(raw: Uint8Array, publicKey?: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(raw), x: publicKey ? b64url(publicKey) : PLACEHOLDER_X }, format: 'jwk' });
  } catch {
    return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, view(raw)]), format: 'der', type: 'pkcs8' });
  }
}

/** A `node:crypto` Cipher or Decipher as a {@link StreamingCipher} (synchronous, in settled promises). */
function nodeStreamingCipher(cipher: { update(data: Uint8Array): Buffer; final(): Buffer }): StreamingCipher {
  const settle = (run: () => Buffer): Promise<Uint8Array> => {
    try {
      return Promise.resolve(bytes(run()));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  };
  return {
    update: (chunk) => settle(() => cipher.update(chunk)),
    final: () => settle(() => cipher.final()),
  };
}

/** A `node:crypto` Hash or Hmac as an {@link IncrementalHash}. */
function nodeIncrementalHash(hash: { update(data: Uint8Array): unknown; digest(): Buffer }): IncrementalHash {
  return {
    update(chunk) {
      hash.update(chunk);
    },
    digest: () => bytes(hash.digest()),
  };
}

/**
 * The Node {@link CryptoProvider}: `node:crypto`'s synchronous calls wrapped in settled promises (an
 * awaited WebCrypto call costs ~40 us, a synchronous HMAC ~2 us).
 *
 * Keys cross into OpenSSL as JWK, which Node imports and exports about ten times faster than DER here,
 * and X25519 key objects are cached per key array, so a ratchet key is imported once.
 */
export class NodeCryptoProvider implements CryptoProvider {
  readonly #privateKeys = new WeakMap<Uint8Array, KeyObject>();
  readonly #publicKeys = new WeakMap<Uint8Array, KeyObject>();
  readonly #ed25519Keys = new WeakMap<Uint8Array, KeyObject>();
  readonly #ed25519PublicKeys = new WeakMap<Uint8Array, KeyObject>();

  randomBytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    randomFillSync(out);
    return out;
  }

  sha512(...parts: Uint8Array[]): Promise<Uint8Array> {
    const h = createHash('sha512');
    for (const p of parts) h.update(p);
    return Promise.resolve(bytes(h.digest()));
  }

  hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array> {
    const h = createHmac('sha256', key);
    for (const p of parts) h.update(p);
    return Promise.resolve(bytes(h.digest()));
  }

  hkdfSha256(ikm: Uint8Array, salt: Uint8Array | undefined, info: Uint8Array, length: number): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(hkdfSync('sha256', ikm, salt ?? ZERO_SALT, info, length)));
  }

  aes256CbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    const c = createCipheriv('aes-256-cbc', key, iv);
    return Promise.resolve(bytes(Buffer.concat([c.update(plaintext), c.final()])));
  }

  aes256CbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array> {
    try {
      const d = createDecipheriv('aes-256-cbc', key, iv);
      return Promise.resolve(bytes(Buffer.concat([d.update(ciphertext), d.final()])));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  createAes256CbcEncryptor(key: Uint8Array, iv: Uint8Array): StreamingCipher {
    return nodeStreamingCipher(createCipheriv('aes-256-cbc', key, iv));
  }

  createAes256CbcDecryptor(key: Uint8Array, iv: Uint8Array): StreamingCipher {
    return nodeStreamingCipher(createDecipheriv('aes-256-cbc', key, iv));
  }

  createHmacSha256(key: Uint8Array): IncrementalHash {
    return nodeIncrementalHash(createHmac('sha256', key));
  }

  createSha256(): IncrementalHash {
    return nodeIncrementalHash(createHash('sha256'));
  }

  x25519GenerateKeyPair(): Promise<{ privateKey: Uint8Array; publicKey: Uint8Array }> {
    // Not generateKeyPairSync: on Node 20 its job objects can deadlock the thread when the garbage
    // collector destroys them (seen here under load). A random clamped scalar imported once is as fast.
    const privateKey = clampX25519(this.randomBytes(32));
    const key = this.#privateKey(privateKey);
    const publicKey = fromB64url(key.export({ format: 'jwk' }).x);
    this.#publicKeys.set(publicKey, createPublicKey(key));
    return Promise.resolve({ privateKey, publicKey });
  }

  x25519PublicKey(privateKey: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(fromB64url(this.#privateKey(privateKey).export({ format: 'jwk' }).x));
  }

  x25519(privateKey: Uint8Array, publicKey: Uint8Array, ourPublicKey?: Uint8Array): Promise<Uint8Array> {
    try {
      const shared = diffieHellman({ privateKey: this.#privateKey(privateKey, ourPublicKey), publicKey: this.#publicKey(publicKey) });
      return Promise.resolve(bytes(shared));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    try {
      let key = this.#ed25519PublicKeys.get(publicKey);
      if (!key) {
        key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKey) }, format: 'jwk' });
        this.#ed25519PublicKeys.set(publicKey, key);
      }
      return Promise.resolve(verify(null, message, key, signature));
    } catch {
      return Promise.resolve(false);
    }
  }

  ed25519Sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
    try {
      let key = this.#ed25519Keys.get(seed);
      if (!key) {
        key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, view(seed)]), format: 'der', type: 'pkcs8' });
        this.#ed25519Keys.set(seed, key);
      }
      return Promise.resolve(bytes(sign(null, message, key)));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #privateKey(raw: Uint8Array, publicKey?: Uint8Array): KeyObject {
    let key = this.#privateKeys.get(raw);
    if (!key) {
      key = importX25519PrivateKey(raw, publicKey);
      this.#privateKeys.set(raw, key);
    }
    return key;
  }

  #publicKey(raw: Uint8Array): KeyObject {
    let key = this.#publicKeys.get(raw);
    if (!key) {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(raw) }, format: 'jwk' });
      this.#publicKeys.set(raw, key);
    }
    return key;
  }
}
