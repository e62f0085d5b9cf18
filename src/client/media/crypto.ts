/**
 * Streaming encryption of media files (issue #6), WhatsApp's published scheme with Parley's own labels:
 *
 * - every file gets a fresh random 32-byte media key;
 * - `HKDF-SHA256(media key, salt none (32 zero bytes), info, 112)` = iv (16) ‖ AES-256 key (32) ‖
 *   HMAC-SHA256 key (32) ‖ ref key (32, unused, reserved as in WhatsApp's layout). The info string names the
 *   type: "Parley Image Keys", "Parley Video Keys", "Parley Audio Keys", "Parley Document Keys"
 *   ({@link MEDIA_INFO}). Parley's own strings keep its keys apart from WhatsApp's; nothing interoperates
 *   with WhatsApp's files, so there is no reason to reuse theirs;
 * - encrypted file = `AES-256-CBC-PKCS#7(key, iv, plaintext) ‖ HMAC-SHA256(mac key, iv ‖ ciphertext)[0..10)`.
 *   The iv is derived, not sent: the file starts with the first ciphertext block;
 * - the sender records the SHA-256 of the plaintext and of the encrypted file, and the sizes, and sends them
 *   with the media key in the end-to-end encrypted message.
 *
 * Everything streams through the provider's incremental primitives (`node:crypto` in Node; WebCrypto over
 * whole-block runs plus `@noble/hashes` in browsers) and holds at most a chunk or two: files up to 2 GB run in
 * constant memory.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import {
  concatBytes,
  chunkedAes256CbcDecryptor,
  chunkedAes256CbcEncryptor,
  constantTimeEqual,
  utf8,
  type CryptoProvider,
  type IncrementalHash,
  type StreamingCipher,
} from '../../protocol/index.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { MediaHashing } from './types.js';

/** The kinds of media; each has its own HKDF info string. */
export type MediaType = 'image' | 'video' | 'audio' | 'document';

/** The HKDF info string of each media type. */
export const MEDIA_INFO: Readonly<Record<MediaType, string>> = {
  image: 'Parley Image Keys',
  video: 'Parley Video Keys',
  audio: 'Parley Audio Keys',
  document: 'Parley Document Keys',
};

export const MEDIA_KEY_BYTES = 32;
/** Length of the truncated HMAC at the end of an encrypted file. */
export const MEDIA_MAC_BYTES = 10;
const BLOCK = 16;
const EXPANDED_BYTES = 112;

/** The keys HKDF expands a media key into. */
export interface MediaKeys {
  readonly iv: Uint8Array;
  readonly cipherKey: Uint8Array;
  readonly macKey: Uint8Array;
  /** Unused; kept so the layout matches WhatsApp's. */
  readonly refKey: Uint8Array;
}

/** What the sender records about an encrypted file (sent in the message, with the media key). */
export interface EncryptedMediaInfo {
  readonly mediaKey: Uint8Array;
  readonly plaintextSha256: Uint8Array;
  readonly encryptedSha256: Uint8Array;
  /** Plaintext bytes. */
  readonly size: number;
  /** Encrypted bytes (ciphertext and MAC): {@link encryptedMediaSize}(size). */
  readonly encryptedSize: number;
}

/** A running encryption: pull `chunks` (once) to drive it; `result` settles when they are exhausted. */
export interface MediaEncryption {
  /** The fresh media key (known before the first chunk). */
  readonly mediaKey: Uint8Array;
  /** The encrypted file, chunk by chunk; the MAC is in the last chunk. Iterate once. */
  readonly chunks: AsyncIterable<Uint8Array>;
  /**
   * Resolves after the last chunk was taken; rejects with the source's error, or `CLIENT_ABORTED` when the
   * consumer stopped early. Never settles if `chunks` is never iterated.
   */
  readonly result: Promise<EncryptedMediaInfo>;
}

/** What the receiver knows about a file from the message that announced it. */
export interface ExpectedMedia {
  /** SHA-256 of the encrypted file (required: checked before the last plaintext is released). */
  readonly encryptedSha256: Uint8Array;
  /** Plaintext size; also bounds the download early (a longer file fails as soon as it exceeds it). */
  readonly size?: number;
  /** SHA-256 of the plaintext, checked too when given. */
  readonly plaintextSha256?: Uint8Array;
}

/** Options of {@link decryptMedia}. */
export interface DecryptOptions {
  /**
   * The encrypted file was verified already (SHA-256 and MAC, by a {@link createMediaVerifier} pass over the
   * same bytes): skip those two checks. The plaintext SHA-256 and size must then be given and are checked,
   * which still catches any change to the bytes between the passes (the plaintext is a function of them).
   */
  readonly verified?: boolean | undefined;
  /** Where the SHA-256s run (default: inline, on this thread). */
  readonly hashing?: MediaHashing | undefined;
}

/** What a completed, verified decryption reports. */
export interface DecryptedMediaInfo {
  readonly size: number;
  readonly plaintextSha256: Uint8Array;
}

/**
 * A running decryption: pull `chunks` (once) to drive it.
 *
 * The plaintext chunks are NOT authenticated when they come out: the hash and MAC cover the whole file and
 * are checked at its end. Only the last part of the plaintext (the last decrypted chunk and the final block)
 * is held back until the SHA-256 of the encrypted file, the MAC, the padding and the announced size and
 * plaintext hash are verified; on any mismatch the iteration throws `CLIENT_BAD_MEDIA` instead of yielding
 * it. A caller must therefore treat everything it received as provisional until the iteration ends without
 * an error (or `result` resolves): write it to a temporary file and rename it into place only then, and
 * delete it on an error. Never show, parse or forward released plaintext before that.
 * {@link decryptMediaToSink} wraps this pattern.
 */
export interface MediaDecryption {
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Resolves after the whole file was verified and the last chunk taken; rejects like the iteration. */
  readonly result: Promise<DecryptedMediaInfo>;
}

/** Encrypted size of a `size`-byte file: PKCS#7 always adds 1 to 16 bytes, then the 10-byte MAC. */
export function encryptedMediaSize(size: number): number {
  return size - (size % BLOCK) + BLOCK + MEDIA_MAC_BYTES;
}

/** Expands a media key for a media type (HKDF-SHA256, 112 bytes). */
export async function expandMediaKey(crypto: CryptoProvider, type: MediaType, mediaKey: Uint8Array): Promise<MediaKeys> {
  if (mediaKey.length !== MEDIA_KEY_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, 'a media key is 32 bytes');
  const info = MEDIA_INFO[type] as string | undefined;
  if (info === undefined) throw new ClientError(ClientErrorCode.InvalidArgument, 'unknown media type');
  const okm = await crypto.hkdfSha256(mediaKey, undefined, utf8(info), EXPANDED_BYTES);
  return { iv: okm.slice(0, 16), cipherKey: okm.slice(16, 48), macKey: okm.slice(48, 80), refKey: okm.slice(80, 112) };
}

/** The provider's incremental primitives, or fallbacks over its one-shot calls and `@noble/hashes`. */
function primitives(crypto: CryptoProvider): {
  encryptor(key: Uint8Array, iv: Uint8Array): StreamingCipher;
  decryptor(key: Uint8Array, iv: Uint8Array): StreamingCipher;
  hmac(key: Uint8Array): IncrementalHash;
  sha256(): IncrementalHash;
} {
  const oneShot = (key: Uint8Array) => ({
    encrypt: (iv: Uint8Array, data: Uint8Array) => crypto.aes256CbcEncrypt(key, iv, data),
    decrypt: (iv: Uint8Array, data: Uint8Array) => crypto.aes256CbcDecrypt(key, iv, data),
  });
  return {
    encryptor: (key, iv) => crypto.createAes256CbcEncryptor?.(key, iv) ?? chunkedAes256CbcEncryptor(oneShot(key), iv),
    decryptor: (key, iv) => crypto.createAes256CbcDecryptor?.(key, iv) ?? chunkedAes256CbcDecryptor(oneShot(key), iv),
    hmac: (key) => crypto.createHmacSha256?.(key) ?? nobleHmac.create(nobleSha256, key),
    sha256: () => crypto.createSha256?.() ?? nobleSha256.create(),
  };
}

/** A promise with its settle functions, marked handled (the caller may only iterate the chunks). */
function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(err: unknown): void; settled(): boolean } {
  let done = false;
  let res!: (value: T) => void;
  let rej!: (err: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    res = resolve;
    rej = reject;
  });
  promise.catch(() => undefined);
  return {
    promise,
    resolve(value) {
      done = true;
      res(value);
    },
    reject(err) {
      done = true;
      rej(err);
    },
    settled: () => done,
  };
}

/** A SHA-256 that may run elsewhere ({@link MediaHashing}) or inline: `update` returns a promise only to wait. */
interface Sha256Job {
  update(bytes: Uint8Array): Promise<void> | undefined;
  digest(): Promise<Uint8Array>;
  discard(): void;
}

function sha256Job(p: ReturnType<typeof primitives>, hashing: MediaHashing | undefined): Sha256Job {
  if (hashing !== undefined) return hashing.sha256();
  const h = p.sha256();
  return {
    update(bytes) {
      h.update(bytes);
      return undefined;
    },
    digest: async () => h.digest(),
    discard: () => undefined,
  };
}

const stoppedEarly = (): ClientError => new ClientError(ClientErrorCode.Aborted, 'the media stream was not read to its end');

/**
 * Encrypts a file as it is read. `source` may yield chunks of any size; the encrypted chunks come out as the
 * whole cipher blocks they complete, so memory stays at a chunk. `options.mediaKey` is for tests only (a
 * media key must never be reused).
 */
export function encryptMedia(
  crypto: CryptoProvider,
  type: MediaType,
  source: AsyncIterable<Uint8Array>,
  options: { mediaKey?: Uint8Array; hashing?: MediaHashing | undefined } = {},
): MediaEncryption {
  const mediaKey = options.mediaKey ?? crypto.randomBytes(MEDIA_KEY_BYTES);
  const done = deferred<EncryptedMediaInfo>();
  const p = primitives(crypto);
  /** The hashes, discarded at the end (a no-op for those digested). */
  const hashes: Sha256Job[] = [];

  async function* run(): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      const keys = await expandMediaKey(crypto, type, mediaKey);
      const cipher = p.encryptor(keys.cipherKey, keys.iv);
      const mac = p.hmac(keys.macKey);
      mac.update(keys.iv);
      hashes.push(sha256Job(p, options.hashing), sha256Job(p, options.hashing));
      const [plainHash, encHash] = hashes as [Sha256Job, Sha256Job];
      let size = 0;
      let encryptedSize = 0;
      for await (const chunk of source) {
        const hashed = plainHash.update(chunk);
        if (hashed) await hashed;
        size += chunk.length;
        const out = await cipher.update(chunk);
        if (out.length === 0) continue;
        mac.update(out);
        const hashedOut = encHash.update(out);
        if (hashedOut) await hashedOut;
        encryptedSize += out.length;
        yield out;
      }
      const last = await cipher.final();
      mac.update(last);
      const tail = new Uint8Array(last.length + MEDIA_MAC_BYTES);
      tail.set(last);
      tail.set(mac.digest().subarray(0, MEDIA_MAC_BYTES), last.length);
      await encHash.update(tail);
      encryptedSize += tail.length;
      const [plaintextSha256, encryptedSha256] = await Promise.all([plainHash.digest(), encHash.digest()]);
      const info: EncryptedMediaInfo = { mediaKey, plaintextSha256, encryptedSha256, size, encryptedSize };
      yield tail;
      done.resolve(info);
    } catch (err) {
      done.reject(err);
      throw err;
    } finally {
      for (const h of hashes) h.discard();
      if (!done.settled()) done.reject(stoppedEarly());
    }
  }

  return { mediaKey, chunks: run(), result: done.promise };
}

/**
 * Holds back the last {@link MEDIA_MAC_BYTES} bytes seen (the MAC, if the file ends there): given the bytes
 * held so far and the next chunk, returns what precedes the new tail (in order) and the new tail.
 */
function holdBackMac(tail: Uint8Array, chunk: Uint8Array): { ready: Uint8Array[]; tail: Uint8Array } {
  if (chunk.length >= MEDIA_MAC_BYTES) {
    return { ready: [tail, chunk.subarray(0, chunk.length - MEDIA_MAC_BYTES)], tail: chunk.slice(chunk.length - MEDIA_MAC_BYTES) };
  }
  const joined = concatBytes(tail, chunk);
  const cut = Math.max(0, joined.length - MEDIA_MAC_BYTES);
  return { ready: [joined.subarray(0, cut)], tail: joined.slice(cut) };
}

const bad = (message: string, cause?: unknown): ClientError =>
  new ClientError(ClientErrorCode.BadMedia, message, cause === undefined ? {} : { cause });

/**
 * Decrypts a file as it is downloaded, verifying it at the end. Read {@link MediaDecryption} for how released
 * plaintext must be treated. Throws `CLIENT_INVALID_ARGUMENT` at once for a key or hash of the wrong length;
 * the iteration throws `CLIENT_BAD_MEDIA` for a file that fails verification (tampered, truncated, too long,
 * or under another key), and passes the source's own errors through.
 */
export function decryptMedia(
  crypto: CryptoProvider,
  type: MediaType,
  mediaKey: Uint8Array,
  expected: ExpectedMedia,
  source: AsyncIterable<Uint8Array>,
  options: DecryptOptions = {},
): MediaDecryption {
  if (mediaKey.length !== MEDIA_KEY_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, 'a media key is 32 bytes');
  if (expected.encryptedSha256.length !== 32 || (expected.plaintextSha256 !== undefined && expected.plaintextSha256.length !== 32)) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'a SHA-256 is 32 bytes');
  }
  if (expected.size !== undefined && !(Number.isSafeInteger(expected.size) && expected.size >= 0)) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'a media size is a non-negative integer');
  }
  const verified = options.verified === true;
  if (verified && (expected.plaintextSha256 === undefined || expected.size === undefined)) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'decrypting a verified file needs the plaintext SHA-256 and size');
  }
  const limit = expected.size === undefined ? undefined : encryptedMediaSize(expected.size);
  const done = deferred<DecryptedMediaInfo>();
  const p = primitives(crypto);

  /** The hashes, discarded at the end (a no-op for those digested). */
  const hashes: Sha256Job[] = [];

  async function* run(): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      const keys = await expandMediaKey(crypto, type, mediaKey);
      const cipher = p.decryptor(keys.cipherKey, keys.iv);
      const mac = p.hmac(keys.macKey);
      mac.update(keys.iv);
      // A verified file's encrypted hash is not computed again: that job is inline and never fed.
      hashes.push(sha256Job(p, options.hashing), sha256Job(p, verified ? undefined : options.hashing));
      const [plainHash, encHash] = hashes as [Sha256Job, Sha256Job];
      let received = 0;
      let size = 0;
      // The last MEDIA_MAC_BYTES bytes seen so far: the MAC, if the file ends here.
      let tail: Uint8Array = new Uint8Array(0);
      // The latest decrypted output, yielded only when the next one arrives (or after verification).
      let held: Uint8Array | undefined;

      const decrypt = async (ciphertext: Uint8Array): Promise<Uint8Array> => {
        if (ciphertext.length === 0) return ciphertext;
        if (!verified) mac.update(ciphertext);
        const out = await cipher.update(ciphertext);
        await plainHash.update(out);
        size += out.length;
        if (expected.size !== undefined && size > expected.size) throw bad('the media file is longer than announced');
        return out;
      };

      for await (const chunk of source) {
        received += chunk.length;
        if (limit !== undefined && received > limit) throw bad('the media file is longer than announced');
        if (!verified) await encHash.update(chunk);
        const parts: Uint8Array[] = [];
        const split = holdBackMac(tail, chunk);
        for (const ready of split.ready) parts.push(await decrypt(ready));
        tail = split.tail;
        for (const out of parts) {
          if (out.length === 0) continue;
          if (held) yield held;
          held = out;
        }
      }

      if (received < BLOCK + MEDIA_MAC_BYTES) throw bad('the media file is truncated');
      if (!verified) {
        if (!constantTimeEqual(await encHash.digest(), expected.encryptedSha256)) throw bad('the SHA-256 of the encrypted media file does not match');
        if (!constantTimeEqual(mac.digest().subarray(0, MEDIA_MAC_BYTES), tail)) throw bad('the MAC of the media file does not match');
      }
      let last: Uint8Array;
      try {
        last = await cipher.final();
      } catch (cause) {
        throw bad('the media file has bad padding', cause);
      }
      await plainHash.update(last);
      size += last.length;
      if (expected.size !== undefined && size !== expected.size) throw bad('the media file has another size than announced');
      const plaintextSha256 = await plainHash.digest();
      if (expected.plaintextSha256 !== undefined && !constantTimeEqual(plaintextSha256, expected.plaintextSha256)) {
        throw bad('the SHA-256 of the decrypted media does not match');
      }
      if (held) yield held;
      if (last.length > 0) yield last;
      done.resolve({ size, plaintextSha256 });
    } catch (err) {
      done.reject(err);
      throw err;
    } finally {
      for (const h of hashes) h.discard();
      if (!done.settled()) done.reject(stoppedEarly());
    }
  }

  return { chunks: run(), result: done.promise };
}

/**
 * Decrypts into `write` and resolves only when the whole file is verified. On a rejection, everything
 * `write` received is unauthenticated and must be discarded (the sink should be a temporary file that the
 * caller renames into place only after this resolves).
 */
export async function decryptMediaToSink(
  crypto: CryptoProvider,
  type: MediaType,
  mediaKey: Uint8Array,
  expected: ExpectedMedia,
  source: AsyncIterable<Uint8Array>,
  write: (chunk: Uint8Array) => void | Promise<void>,
  options: DecryptOptions = {},
): Promise<DecryptedMediaInfo> {
  const decryption = decryptMedia(crypto, type, mediaKey, expected, source, options);
  for await (const chunk of decryption.chunks) await write(chunk);
  return decryption.result;
}

/**
 * Checks an encrypted file without decrypting it: feed it the file in order, then {@link MediaVerifier.verify}.
 * A download verifies the whole staged file this way before a single block is decrypted (docs/media.md). The
 * SHA-256 may run in parallel ({@link MediaHashing}); the MAC is computed inline. `update` returns a promise
 * only when the caller must wait; `discard` frees the hash after a failure.
 */
export interface MediaVerifier {
  readonly received: number;
  update(chunk: Uint8Array): Promise<void> | undefined;
  verify(): Promise<void>;
  discard(): void;
}

/**
 * A {@link MediaVerifier} for a file announced with `expected` (its size bounds the file when given; its
 * SHA-256 on `hashing`, or inline without).
 */
export async function createMediaVerifier(
  crypto: CryptoProvider,
  type: MediaType,
  mediaKey: Uint8Array,
  expected: ExpectedMedia,
  hashing?: MediaHashing,
): Promise<MediaVerifier> {
  if (expected.encryptedSha256.length !== 32) throw new ClientError(ClientErrorCode.InvalidArgument, 'a SHA-256 is 32 bytes');
  if (expected.size !== undefined && !(Number.isSafeInteger(expected.size) && expected.size >= 0)) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'a media size is a non-negative integer');
  }
  const keys = await expandMediaKey(crypto, type, mediaKey);
  const p = primitives(crypto);
  const limit = expected.size === undefined ? undefined : encryptedMediaSize(expected.size);
  // With the length known and a `hashing` that offers it, the SHA-256 and the MAC (of all but the last
  // MEDIA_MAC_BYTES bytes) run elsewhere, in one pass over the bytes. Else the SHA-256 runs on `hashing` (or
  // inline) and the MAC inline, fed what precedes the bytes that may turn out to be the MAC.
  const both = limit !== undefined && hashing?.sha256AndHmac !== undefined ? hashing.sha256AndHmac(keys.macKey, keys.iv, limit - MEDIA_MAC_BYTES) : undefined;
  const hash: Sha256Job | undefined = both === undefined ? sha256Job(p, hashing) : undefined;
  const mac = both === undefined ? p.hmac(keys.macKey) : undefined;
  mac?.update(keys.iv);
  const discard = (): void => {
    both?.discard();
    hash?.discard();
  };
  let received = 0;
  // The last MEDIA_MAC_BYTES bytes seen: the MAC, if the file ends here; everything before them is MACed.
  let tail: Uint8Array = new Uint8Array(0);
  let done = false;
  return {
    get received() {
      return received;
    },
    update(chunk) {
      if (done) throw new ClientError(ClientErrorCode.InvalidArgument, 'the verifier has finished');
      received += chunk.length;
      if (limit !== undefined && received > limit) throw bad('the media file is longer than announced');
      const split = holdBackMac(tail, chunk);
      tail = split.tail;
      if (mac !== undefined) for (const ready of split.ready) if (ready.length > 0) mac.update(ready);
      return (both ?? (hash as Sha256Job)).update(chunk);
    },
    async verify() {
      if (done) throw new ClientError(ClientErrorCode.InvalidArgument, 'the verifier has finished');
      done = true;
      try {
        if (received < BLOCK + MEDIA_MAC_BYTES || (limit !== undefined && received !== limit) || (received - MEDIA_MAC_BYTES) % BLOCK !== 0) {
          throw bad('the media file is truncated');
        }
        const digests = both !== undefined ? await both.digest() : { sha256: await (hash as Sha256Job).digest(), mac: (mac as IncrementalHash).digest() };
        if (!constantTimeEqual(digests.sha256, expected.encryptedSha256)) throw bad('the SHA-256 of the encrypted media file does not match');
        if (!constantTimeEqual(digests.mac.subarray(0, MEDIA_MAC_BYTES), tail)) throw bad('the MAC of the media file does not match');
      } finally {
        discard();
      }
    },
    discard() {
      done = true;
      discard();
    },
  };
}
