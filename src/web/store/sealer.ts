/**
 * Encryption at rest of the browser store's records under one non-extractable AES-GCM-256 `CryptoKey`.
 *
 * What this protects, precisely:
 * - The key is created by WebCrypto with `extractable: false` and kept in IndexedDB as a `CryptoKey` object
 *   (structured clone keeps it non-extractable): no script can read its bytes (`exportKey` rejects), so the
 *   records (identity private key, account password, prekeys, sessions, sender keys, group master keys,
 *   media keys, message bodies, ...) cannot be decrypted outside this origin's pages. A copy of the records
 *   taken out of IndexedDB through script (devtools export, a leaked backup of the records, a bug that
 *   logs a raw record) holds no private key bytes and no plaintext.
 * - Every record is sealed with its object store and key as additional data, so a record moved to another
 *   key or store (or altered) fails to open (`CLIENT_STORE_CORRUPT`) instead of being used.
 *
 * What it does not protect:
 * - Script running in the origin (XSS, a compromised dependency, an extension with page access) can use the
 *   key to decrypt everything, exactly as the app does; and while the app runs, the protocol core holds the
 *   raw private keys in memory (the Signal Protocol code works on key bytes, not CryptoKeys).
 * - The browser keeps the CryptoKey's material inside its own IndexedDB files: someone with a copy of the
 *   browser profile folder (the disk, not the page) can in principle recover the key and then the records.
 *   Against that, only the operating system's disk or profile encryption helps.
 * - Saved attachments (the media cache) are stored as plain Blobs; their media keys, in the messages, are sealed.
 * - Metadata stays readable: the primary keys and the few index fields of ./schema.ts (account ids of peers and
 *   their device ids, group ids, message ids with their conversation and timestamps, outbox recipients, states
 *   and times, prekey ids, settings names, processed envelope guids). Who talked with whom and when is visible
 *   to whoever reads the raw database; what was said, and every key, is not.
 *
 * Format of a sealed record: version byte (1) ‖ 12-byte random IV ‖ AES-GCM ciphertext and 16-byte tag.
 * Random 96-bit IVs stay far below the 2^32 encryptions per key that NIST SP 800-38D allows.
 */
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import { decodeValue, encodeValue } from './codec.js';

const SEAL_VERSION = 1;
const IV_BYTES = 12;

/** Creates the store's key: AES-GCM-256, non-extractable, for encrypt and decrypt only. */
export function createStoreKey(): Promise<CryptoKey> {
  return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

const text = new TextEncoder();

/** Seals and opens records under one key. */
export class Sealer {
  readonly #key: CryptoKey;

  constructor(key: CryptoKey) {
    if (key.algorithm.name !== 'AES-GCM' || key.extractable) {
      throw new ClientError(ClientErrorCode.StoreCorrupt, 'the stored record key is not a non-extractable AES-GCM key');
    }
    this.#key = key;
  }

  /** The sealed bytes of `value` (plain data: see ./codec.ts), bound to `where` (store and key). */
  async seal(where: string, value: unknown): Promise<Uint8Array> {
    return this.sealEncoded(where, encodeValue(value));
  }

  /** Seals a value already encoded with `encodeValue`. */
  async sealEncoded(where: string, plain: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: text.encode(where) }, this.#key, plain));
    const out = new Uint8Array(1 + IV_BYTES + ct.length);
    out[0] = SEAL_VERSION;
    out.set(iv, 1);
    out.set(ct, 1 + IV_BYTES);
    return out;
  }

  /** The value sealed in `sealed` for `where`; `CLIENT_STORE_CORRUPT` when it fails authentication or does not decode. */
  async open(where: string, sealed: unknown): Promise<unknown> {
    return decodeSealed(where, await this.openEncoded(where, sealed));
  }

  /** The encoded value (./codec.ts) sealed in `sealed` for `where`; `CLIENT_STORE_CORRUPT` when it fails authentication. */
  async openEncoded(where: string, sealed: unknown): Promise<Uint8Array<ArrayBuffer>> {
    if (!(sealed instanceof Uint8Array) || sealed.length < 1 + IV_BYTES + 16 || sealed[0] !== SEAL_VERSION) {
      throw new ClientError(ClientErrorCode.StoreCorrupt, `a stored record (${storeOf(where)}) is not sealed in a known format`);
    }
    const bytes = new Uint8Array(sealed);
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: bytes.subarray(1, 1 + IV_BYTES), additionalData: text.encode(where) },
          this.#key,
          bytes.subarray(1 + IV_BYTES),
        ),
      );
    } catch (cause) {
      throw new ClientError(ClientErrorCode.StoreCorrupt, `a stored record (${storeOf(where)}) fails authentication: altered, moved or sealed under another key`, { cause });
    }
  }
}

/** The value of an opened record's bytes; `CLIENT_STORE_CORRUPT` when they do not decode. */
export function decodeSealed(where: string, plain: Uint8Array): unknown {
  try {
    return decodeValue(plain);
  } catch (cause) {
    throw new ClientError(ClientErrorCode.StoreCorrupt, `a stored record (${storeOf(where)}) does not decode`, { cause });
  }
}

/** The store name of a `where` (never the key: keys can name accounts). */
function storeOf(where: string): string {
  return where.slice(0, where.indexOf('/'));
}
