/**
 * The authenticated encryption of Parley's own small payloads (group attributes, provisioning messages,
 * device names, history blobs): AES-256-CBC with a random IV, then HMAC-SHA256 over all that precedes the
 * MAC (encrypt-then-MAC), as `0x01 ‖ iv (16) ‖ ciphertext ‖ HMAC (32)`. The MAC is checked in constant time
 * before anything is decrypted. Media files use WhatsApp's own layout instead (media/crypto.ts).
 */
import { concatBytes, constantTimeEqual, type CryptoProvider } from '../protocol/index.js';
import { ClientError, type ClientErrorCode } from './errors.js';

const VERSION = 0x01;
const IV_BYTES = 16;
const MAC_BYTES = 32;

/** An AES-256 key and an HMAC-SHA256 key. */
export interface SealKeys {
  readonly cipherKey: Uint8Array;
  readonly macKey: Uint8Array;
}

/** The two keys of a 64-byte key: AES-256 key ‖ HMAC-SHA256 key. */
export function splitSealKey(key: Uint8Array): SealKeys {
  return { cipherKey: key.slice(0, 32), macKey: key.slice(32, 64) };
}

/** The two keys derived from `ikm`: HKDF-SHA256(ikm, salt, info, 64 bytes), split as {@link splitSealKey}. */
export async function deriveSealKeys(crypto: CryptoProvider, ikm: Uint8Array, salt: Uint8Array | undefined, info: Uint8Array): Promise<SealKeys> {
  return splitSealKey(await crypto.hkdfSha256(ikm, salt, info, 64));
}

/** Encrypts and authenticates `plaintext`. */
export async function seal(crypto: CryptoProvider, keys: SealKeys, plaintext: Uint8Array): Promise<Uint8Array> {
  const iv = crypto.randomBytes(IV_BYTES);
  const ciphertext = await crypto.aes256CbcEncrypt(keys.cipherKey, iv, plaintext);
  const head = concatBytes(Uint8Array.of(VERSION), iv, ciphertext);
  return concatBytes(head, await crypto.hmacSha256(keys.macKey, head));
}

/**
 * Checks and decrypts a body made by {@link seal}; a body that is malformed, fails its MAC (tampered with, or
 * another key) or does not decrypt is refused with `code`, the message naming `what`.
 */
export async function open(crypto: CryptoProvider, keys: SealKeys, body: Uint8Array, code: ClientErrorCode, what: string): Promise<Uint8Array> {
  const cipherBytes = body.length - 1 - IV_BYTES - MAC_BYTES;
  if (cipherBytes < 16 || cipherBytes % 16 !== 0 || body[0] !== VERSION) throw new ClientError(code, `${what}: not an encrypted body of a known version`);
  const head = body.subarray(0, body.length - MAC_BYTES);
  if (!constantTimeEqual(await crypto.hmacSha256(keys.macKey, head), body.subarray(body.length - MAC_BYTES))) {
    throw new ClientError(code, `${what}: authentication failed (tampered with, or another key)`);
  }
  try {
    return await crypto.aes256CbcDecrypt(keys.cipherKey, head.subarray(1, 1 + IV_BYTES), head.subarray(1 + IV_BYTES));
  } catch (cause) {
    throw new ClientError(code, `${what}: does not decrypt`, { cause });
  }
}
