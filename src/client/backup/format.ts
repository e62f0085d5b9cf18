/**
 * The backup file (docs/backups.md "Format"): a plaintext header, then the gzip-compressed record stream
 * encrypted in frames.
 *
 * ```
 * "PARLEYBK" (8 bytes) | version u8 (1) | header length u32 BE | header (JSON, UTF-8)
 * frame*: flags u8 (bit 0: final) | length u32 BE | iv (16) | AES-256-CBC ciphertext (length) | HMAC-SHA256 (32)
 * ```
 *
 * Every frame is encrypted under a key derived from the random backup key and the header's salt, and
 * authenticated (encrypt-then-MAC) over the SHA-256 of the header, its index, its flags, its length, IV and
 * ciphertext: a frame that is modified, moved, repeated, or taken from another backup fails its MAC; a file
 * cut at a frame boundary lacks the final frame; bytes after the final frame are refused (STREAM, Hoang,
 * Reyhanitabar, Rogaway, Vizár 2015, with CBC + HMAC from the injected provider instead of an AEAD, as the
 * media scheme). A MAC is checked before its frame is decrypted.
 *
 * The backup key itself is in the header only wrapped ({@link wrapBackupKey}): under a key from the recovery
 * key, and/or under a key from the password and the server's share (keys.ts).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, constantTimeEqual, fromHex, toHex, u32be, utf8, type CryptoProvider } from '../../protocol/index.js';
import { ClientError, ClientErrorCode } from '../errors.js';

/** The file's first bytes. */
export const BACKUP_MAGIC = utf8('PARLEYBK');
/** The version of the file layout (header, frames and record stream) this release writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;
/** Bytes of plaintext (compressed records) per frame, by default. */
export const DEFAULT_FRAME_BYTES = 1 << 20;
/** The largest frame a reader accepts (so a corrupt length cannot make it buffer gigabytes). */
export const MAX_FRAME_BYTES = 8 << 20;
/** The largest header a reader accepts. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Backup keys are 32 random bytes. */
export const BACKUP_KEY_BYTES = 32;

const IV_BYTES = 16;
const MAC_BYTES = 32;
const FRAME_PREFIX = 1 + 4;
const FINAL = 1;
const FRAME_INFO = utf8('Parley backup v1 frames');
const WRAP_INFO = utf8('Parley backup v1 key wrap');
/** Bytes of a wrapped backup key: IV, the key encrypted (32 bytes and a padding block), MAC. */
export const WRAPPED_KEY_BYTES = IV_BYTES + 48 + MAC_BYTES;

/** Argon2id parameters of a password slot. */
export interface KdfParams {
  readonly algorithm: 'argon2id';
  /** Memory, KiB. */
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/** How the backup key is protected: the recovery key's slot, the password's slot, or both. */
export type KeySlot =
  | { readonly kind: 'recovery'; readonly salt: Uint8Array; readonly wrapped: Uint8Array }
  | {
      readonly kind: 'password';
      /** Names the server-side share this slot needs (the account's current password slot). */
      readonly slotId: string;
      readonly salt: Uint8Array;
      readonly kdf: KdfParams;
      readonly wrapped: Uint8Array;
    };

/** The plaintext header of a backup file. */
export interface BackupHeader {
  readonly version: number;
  readonly createdAt: number;
  readonly compression: 'gzip';
  readonly frameBytes: number;
  /** Salt of the frame keys (32 bytes). */
  readonly salt: Uint8Array;
  readonly slots: readonly KeySlot[];
}

export const badBackup = (message: string, cause?: unknown): ClientError =>
  new ClientError(ClientErrorCode.BadBackup, message, { retryable: false, cause });

/** The bounds a reader holds KDF parameters to (a header must not make a device allocate gigabytes). */
export function checkKdfParams(kdf: unknown): KdfParams {
  const k = kdf as Partial<KdfParams> | undefined;
  const int = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  if (!k || k.algorithm !== 'argon2id' || !int(k.memoryKiB, 1024, 1 << 20) || !int(k.iterations, 1, 64) || !int(k.parallelism, 1, 16)) {
    throw badBackup('unsupported password KDF parameters');
  }
  return { algorithm: 'argon2id', memoryKiB: k.memoryKiB as number, iterations: k.iterations as number, parallelism: k.parallelism as number };
}

function hexField(v: unknown, bytes: number | undefined, what: string): Uint8Array {
  if (typeof v !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(v) || (bytes !== undefined && v.length !== bytes * 2)) throw badBackup(`malformed ${what} in the backup header`);
  return fromHex(v);
}

/** Serializes the header (magic, version, length, JSON). */
export function encodeHeader(h: BackupHeader): Uint8Array {
  const json = utf8(
    JSON.stringify({
      version: h.version,
      createdAt: h.createdAt,
      compression: h.compression,
      frameBytes: h.frameBytes,
      salt: toHex(h.salt),
      slots: h.slots.map((s) =>
        s.kind === 'recovery'
          ? { kind: s.kind, salt: toHex(s.salt), wrapped: toHex(s.wrapped) }
          : { kind: s.kind, slotId: s.slotId, salt: toHex(s.salt), kdf: s.kdf, wrapped: toHex(s.wrapped) },
      ),
    }),
  );
  return concatBytes(BACKUP_MAGIC, Uint8Array.of(BACKUP_FORMAT_VERSION), u32be(json.length), json);
}

/** Parses the header JSON (after magic, version and length). */
function parseHeaderJson(json: Uint8Array): BackupHeader {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json)) as Record<string, unknown>;
  } catch (cause) {
    throw badBackup('the backup header does not parse', cause);
  }
  if (typeof o !== 'object' || o === null) throw badBackup('the backup header is not an object');
  if (o.version !== BACKUP_FORMAT_VERSION) throw badBackup(`backup format ${String(o.version)} is not supported by this release`);
  if (o.compression !== 'gzip') throw badBackup('unsupported backup compression');
  const frameBytes = o.frameBytes;
  if (typeof frameBytes !== 'number' || !Number.isInteger(frameBytes) || frameBytes < 1024 || frameBytes > MAX_FRAME_BYTES) throw badBackup('unsupported frame size');
  if (typeof o.createdAt !== 'number' || !Number.isSafeInteger(o.createdAt)) throw badBackup('malformed creation time in the backup header');
  if (!Array.isArray(o.slots) || o.slots.length === 0 || o.slots.length > 4) throw badBackup('the backup header has no key slot');
  const slots = o.slots.map((raw): KeySlot => {
    const s = raw as Record<string, unknown>;
    if (s?.kind === 'recovery') return { kind: 'recovery', salt: hexField(s.salt, 16, 'salt'), wrapped: hexField(s.wrapped, WRAPPED_KEY_BYTES, 'wrapped key') };
    if (s?.kind === 'password') {
      if (typeof s.slotId !== 'string' || !/^[0-9a-f]{32}$/.test(s.slotId)) throw badBackup('malformed password slot id');
      return { kind: 'password', slotId: s.slotId, salt: hexField(s.salt, 16, 'salt'), kdf: checkKdfParams(s.kdf), wrapped: hexField(s.wrapped, WRAPPED_KEY_BYTES, 'wrapped key') };
    }
    throw badBackup('unknown key slot in the backup header');
  });
  return { version: BACKUP_FORMAT_VERSION, createdAt: o.createdAt, compression: 'gzip', frameBytes, salt: hexField(o.salt, 32, 'salt'), slots };
}

/** Keys of the frames of one backup. */
export interface FrameKeys {
  readonly enc: Uint8Array;
  readonly mac: Uint8Array;
  /** SHA-256 of the encoded header: every frame's MAC covers it. */
  readonly headerHash: Uint8Array;
}

export async function frameKeys(crypto: CryptoProvider, backupKey: Uint8Array, header: BackupHeader, encodedHeader: Uint8Array): Promise<FrameKeys> {
  if (backupKey.length !== BACKUP_KEY_BYTES) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup key is 32 bytes');
  const k = await crypto.hkdfSha256(backupKey, header.salt, FRAME_INFO, 64);
  return { enc: k.slice(0, 32), mac: k.slice(32), headerHash: sha256(encodedHeader) };
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

async function frameMac(crypto: CryptoProvider, keys: FrameKeys, index: number, flags: number, iv: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array> {
  return crypto.hmacSha256(keys.mac, keys.headerHash, u64be(index), Uint8Array.of(flags), u32be(ciphertext.length), iv, ciphertext);
}

/** Encrypts frame `index` of `plaintext`. */
export async function sealFrame(crypto: CryptoProvider, keys: FrameKeys, index: number, plaintext: Uint8Array, final: boolean): Promise<Uint8Array> {
  const iv = crypto.randomBytes(IV_BYTES);
  const ciphertext = await crypto.aes256CbcEncrypt(keys.enc, iv, plaintext);
  const flags = final ? FINAL : 0;
  const mac = await frameMac(crypto, keys, index, flags, iv, ciphertext);
  return concatBytes(Uint8Array.of(flags), u32be(ciphertext.length), iv, ciphertext, mac);
}

/**
 * Encrypts a byte stream into frames of `frameBytes` plaintext each; the last (possibly empty) one is marked
 * final. Holds at most one frame.
 */
export async function* encryptFrames(crypto: CryptoProvider, keys: FrameKeys, source: AsyncIterable<Uint8Array>, frameBytes: number): AsyncGenerator<Uint8Array, void, undefined> {
  let parts: Uint8Array[] = [];
  let held = 0;
  let index = 0;
  for await (const chunk of source) {
    parts.push(chunk);
    held += chunk.length;
    // A full frame goes once more bytes follow it (the last frame must carry the final flag).
    while (held > frameBytes) {
      const all = concatBytes(...parts);
      yield await sealFrame(crypto, keys, index++, all.subarray(0, frameBytes), false);
      const rest = all.slice(frameBytes);
      parts = [rest];
      held = rest.length;
    }
  }
  yield await sealFrame(crypto, keys, index, concatBytes(...parts), true);
}

/** Reads exact byte counts from a chunked stream. */
export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #ended = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes, or fewer when the stream ends first. */
  async read(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n && !this.#ended) {
      const next = await this.#it.next();
      if (next.done === true) this.#ended = true;
      else if (next.value.length > 0) this.#buf = this.#buf.length === 0 ? next.value : concatBytes(this.#buf, next.value);
    }
    const out = this.#buf.subarray(0, Math.min(n, this.#buf.length));
    this.#buf = this.#buf.subarray(out.length);
    this.position += out.length;
    return out;
  }

  /** True once nothing is left. */
  async atEnd(): Promise<boolean> {
    if (this.#buf.length > 0) return false;
    const more = await this.read(1);
    if (more.length === 0) return true;
    this.#buf = more;
    this.position -= 1;
    return false;
  }

  /** Stops the underlying stream. */
  async close(): Promise<void> {
    await this.#it.return?.();
  }
}

/** Reads and parses the header of a backup stream; the reader is left at the first frame. */
export async function readHeader(reader: ByteReader): Promise<{ header: BackupHeader; encoded: Uint8Array }> {
  const prefix = await reader.read(BACKUP_MAGIC.length + 1 + 4);
  if (prefix.length < BACKUP_MAGIC.length || !constantTimeEqual(prefix.subarray(0, BACKUP_MAGIC.length), BACKUP_MAGIC)) throw badBackup('not a Parley backup file');
  if (prefix.length < BACKUP_MAGIC.length + 5) throw badBackup('the backup is truncated (in its header)');
  const version = prefix[BACKUP_MAGIC.length] as number;
  if (version !== BACKUP_FORMAT_VERSION) throw badBackup(`backup format ${version} is not supported by this release`);
  const length = new DataView(prefix.buffer, prefix.byteOffset + BACKUP_MAGIC.length + 1, 4).getUint32(0);
  if (length > MAX_HEADER_BYTES) throw badBackup('the backup header is too large');
  const json = await reader.read(length);
  if (json.length < length) throw badBackup('the backup is truncated (in its header)');
  const header = parseHeaderJson(json);
  return { header, encoded: concatBytes(prefix, json) };
}

/**
 * Decrypts the frames that follow the header: yields each frame's plaintext once its MAC checked out.
 * Throws `CLIENT_BAD_BACKUP` on a failed MAC (tampered, reordered, or another backup's frame), a stream that
 * ends before the final frame (truncated), or bytes after it.
 */
export async function* decryptFrames(crypto: CryptoProvider, keys: FrameKeys, reader: ByteReader, frameBytes: number): AsyncGenerator<Uint8Array, void, undefined> {
  const maxCiphertext = frameBytes + 16;
  for (let index = 0; ; index++) {
    const prefix = await reader.read(FRAME_PREFIX);
    if (prefix.length < FRAME_PREFIX) throw badBackup('the backup is truncated (its final frame is missing)');
    const flags = prefix[0] as number;
    const length = new DataView(prefix.buffer, prefix.byteOffset + 1, 4).getUint32(0);
    if ((flags & ~FINAL) !== 0 || length < 16 || length % 16 !== 0 || length > maxCiphertext) throw badBackup(`malformed frame ${index}`);
    const iv = await reader.read(IV_BYTES);
    const ciphertext = await reader.read(length);
    const mac = await reader.read(MAC_BYTES);
    if (mac.length < MAC_BYTES) throw badBackup('the backup is truncated (in a frame)');
    const expected = await frameMac(crypto, keys, index, flags, iv, ciphertext);
    if (!constantTimeEqual(expected, mac)) throw badBackup(`frame ${index} failed authentication (tampered, reordered or from another backup)`);
    let plaintext: Uint8Array;
    try {
      plaintext = await crypto.aes256CbcDecrypt(keys.enc, iv, ciphertext);
    } catch (cause) {
      throw badBackup(`frame ${index} does not decrypt`, cause);
    }
    if (plaintext.length > frameBytes) throw badBackup(`frame ${index} is larger than the header allows`);
    if (plaintext.length > 0) yield plaintext;
    if ((flags & FINAL) !== 0) {
      if (!(await reader.atEnd())) throw badBackup('bytes after the final frame');
      return;
    }
  }
}

async function wrapKeys(crypto: CryptoProvider, wrapKey: Uint8Array): Promise<{ enc: Uint8Array; mac: Uint8Array }> {
  const k = await crypto.hkdfSha256(wrapKey, undefined, WRAP_INFO, 64);
  return { enc: k.slice(0, 32), mac: k.slice(32) };
}

/** Encrypts the backup key under a 32-byte wrapping key (AES-256-CBC + HMAC-SHA256 bound to the slot kind). */
export async function wrapBackupKey(crypto: CryptoProvider, wrapKey: Uint8Array, backupKey: Uint8Array, kind: KeySlot['kind']): Promise<Uint8Array> {
  const k = await wrapKeys(crypto, wrapKey);
  const iv = crypto.randomBytes(IV_BYTES);
  const ciphertext = await crypto.aes256CbcEncrypt(k.enc, iv, backupKey);
  const mac = await crypto.hmacSha256(k.mac, utf8(kind), iv, ciphertext);
  return concatBytes(iv, ciphertext, mac);
}

/** The backup key of a slot, or undefined when `wrapKey` is not the slot's (a wrong recovery key or password). */
export async function unwrapBackupKey(crypto: CryptoProvider, wrapKey: Uint8Array, wrapped: Uint8Array, kind: KeySlot['kind']): Promise<Uint8Array | undefined> {
  if (wrapped.length !== WRAPPED_KEY_BYTES) return undefined;
  const k = await wrapKeys(crypto, wrapKey);
  const iv = wrapped.subarray(0, IV_BYTES);
  const ciphertext = wrapped.subarray(IV_BYTES, IV_BYTES + 48);
  const mac = wrapped.subarray(IV_BYTES + 48);
  if (!constantTimeEqual(await crypto.hmacSha256(k.mac, utf8(kind), iv, ciphertext), mac)) return undefined;
  const key = await crypto.aes256CbcDecrypt(k.enc, iv, ciphertext);
  return key.length === BACKUP_KEY_BYTES ? key : undefined;
}
