import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import {
  chunkedAes256CbcDecryptor,
  chunkedAes256CbcEncryptor,
  clampX25519,
  type AesCbcOneShot,
  type CryptoProvider,
  type IncrementalHash,
  type StreamingCipher,
} from './crypto.js';
import { concatBytes } from './bytes.js';

/** The part of the standard Web Crypto object the provider needs (`globalThis.crypto` in browsers and Node). */
export interface WebCryptoLike {
  readonly subtle: SubtleCrypto;
  getRandomValues<T extends ArrayBufferView>(array: T): T;
}

type Bytes = Uint8Array<ArrayBuffer>;
const own = (b: Uint8Array): Bytes => (b.buffer instanceof ArrayBuffer ? (b as Bytes) : new Uint8Array(b));

const PKCS8_ED25519_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
const PKCS8_X25519_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

/**
 * A {@link CryptoProvider} over the Web Crypto API, for browsers (and usable in Node). SHA-512 uses
 * `@noble/hashes` synchronously: the fingerprint runs it 10,400 times and an awaited WebCrypto digest
 * costs tens of microseconds each. Imported key handles are cached per key array.
 *
 * Streaming: Web Crypto has no incremental AES-CBC, so the streaming ciphers run WebCrypto's one-shot
 * AES-CBC over whole-block runs ({@link chunkedAes256CbcEncryptor}, {@link chunkedAes256CbcDecryptor}),
 * with the key imported once per stream; incremental SHA-256 and HMAC-SHA256 use `@noble/hashes`.
 */
export class WebCryptoProvider implements CryptoProvider {
  readonly #crypto: WebCryptoLike;
  readonly #hmacKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>();
  readonly #x25519Private = new WeakMap<Uint8Array, Promise<CryptoKey>>();
  readonly #x25519Public = new WeakMap<Uint8Array, Promise<CryptoKey>>();
  readonly #ed25519Private = new WeakMap<Uint8Array, Promise<CryptoKey>>();

  constructor(crypto: WebCryptoLike = globalThis.crypto) {
    this.#crypto = crypto;
  }

  randomBytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    // getRandomValues fills at most 65,536 bytes per call.
    for (let offset = 0; offset < length; offset += 65536) {
      this.#crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + 65536)));
    }
    return out;
  }

  sha512(...parts: Uint8Array[]): Promise<Uint8Array> {
    const h = nobleSha512.create();
    for (const p of parts) h.update(p);
    return Promise.resolve(h.digest());
  }

  async hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array> {
    let handle = this.#hmacKeys.get(key);
    if (!handle) {
      handle = this.#crypto.subtle.importKey('raw', own(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      this.#hmacKeys.set(key, handle);
    }
    const data = parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(...parts);
    return new Uint8Array(await this.#crypto.subtle.sign('HMAC', await handle, own(data)));
  }

  async hkdfSha256(ikm: Uint8Array, salt: Uint8Array | undefined, info: Uint8Array, length: number): Promise<Uint8Array> {
    const key = await this.#crypto.subtle.importKey('raw', own(ikm), 'HKDF', false, ['deriveBits']);
    const bits = await this.#crypto.subtle.deriveBits(
      { name: 'HKDF', hash: 'SHA-256', salt: own(salt ?? new Uint8Array(32)), info: own(info) },
      key,
      length * 8,
    );
    return new Uint8Array(bits);
  }

  async aes256CbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    const k = await this.#crypto.subtle.importKey('raw', own(key), 'AES-CBC', false, ['encrypt']);
    return new Uint8Array(await this.#crypto.subtle.encrypt({ name: 'AES-CBC', iv: own(iv) }, k, own(plaintext)));
  }

  async aes256CbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array> {
    const k = await this.#crypto.subtle.importKey('raw', own(key), 'AES-CBC', false, ['decrypt']);
    return new Uint8Array(await this.#crypto.subtle.decrypt({ name: 'AES-CBC', iv: own(iv) }, k, own(ciphertext)));
  }

  createAes256CbcEncryptor(key: Uint8Array, iv: Uint8Array): StreamingCipher {
    return chunkedAes256CbcEncryptor(this.#aesOneShot(key), iv);
  }

  createAes256CbcDecryptor(key: Uint8Array, iv: Uint8Array): StreamingCipher {
    return chunkedAes256CbcDecryptor(this.#aesOneShot(key), iv);
  }

  createHmacSha256(key: Uint8Array): IncrementalHash {
    return nobleHmac.create(nobleSha256, key);
  }

  createSha256(): IncrementalHash {
    return nobleSha256.create();
  }

  /** One-shot AES-CBC under `key`, imported once (lazily, so a bad key rejects the first call). */
  #aesOneShot(key: Uint8Array): AesCbcOneShot {
    const subtle = this.#crypto.subtle;
    let handle: Promise<CryptoKey> | undefined;
    const get = (): Promise<CryptoKey> => (handle ??= subtle.importKey('raw', own(key.slice()), 'AES-CBC', false, ['encrypt', 'decrypt']));
    return {
      encrypt: async (iv, plaintext) => new Uint8Array(await subtle.encrypt({ name: 'AES-CBC', iv: own(iv) }, await get(), own(plaintext))),
      decrypt: async (iv, ciphertext) => new Uint8Array(await subtle.decrypt({ name: 'AES-CBC', iv: own(iv) }, await get(), own(ciphertext))),
    };
  }

  async x25519GenerateKeyPair(): Promise<{ privateKey: Uint8Array; publicKey: Uint8Array }> {
    const privateKey = clampX25519(this.randomBytes(32));
    return { privateKey, publicKey: await this.x25519PublicKey(privateKey) };
  }

  x25519PublicKey(privateKey: Uint8Array): Promise<Uint8Array> {
    // Deriving a public key is a single base-point multiplication; noble does it without a key import.
    return Promise.resolve(nobleX25519.getPublicKey(privateKey));
  }

  async x25519(privateKey: Uint8Array, publicKey: Uint8Array, _ourPublicKey?: Uint8Array): Promise<Uint8Array> {
    let priv = this.#x25519Private.get(privateKey);
    if (!priv) {
      priv = this.#crypto.subtle.importKey('pkcs8', own(concatBytes(PKCS8_X25519_PREFIX, privateKey)), { name: 'X25519' }, false, ['deriveBits']);
      this.#x25519Private.set(privateKey, priv);
    }
    let pub = this.#x25519Public.get(publicKey);
    if (!pub) {
      pub = this.#crypto.subtle.importKey('raw', own(publicKey), { name: 'X25519' }, false, []);
      this.#x25519Public.set(publicKey, pub);
    }
    const bits = await this.#crypto.subtle.deriveBits({ name: 'X25519', public: await pub }, await priv, 256);
    return new Uint8Array(bits);
  }

  async ed25519Sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
    let key = this.#ed25519Private.get(seed);
    if (!key) {
      key = this.#crypto.subtle.importKey('pkcs8', own(concatBytes(PKCS8_ED25519_PREFIX, seed)), { name: 'Ed25519' }, false, ['sign']);
      this.#ed25519Private.set(seed, key);
    }
    return new Uint8Array(await this.#crypto.subtle.sign({ name: 'Ed25519' }, await key, own(message)));
  }

  async ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    try {
      const key = await this.#crypto.subtle.importKey('raw', own(publicKey), { name: 'Ed25519' }, false, ['verify']);
      return await this.#crypto.subtle.verify({ name: 'Ed25519' }, key, own(signature), own(message));
    } catch {
      return false;
    }
  }
}
