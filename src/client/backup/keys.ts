/**
 * What protects a backup key (docs/backups.md "Keys"):
 *
 * - a recovery key: 64 random decimal digits (log2(10^64) = 212.6 bits), shown once; the wrapping key is
 *   HKDF-SHA256(digits, slot salt, "Parley backup v1 recovery key");
 * - a password: Argon2id(password, salt, m, t, p) stretched into an auth key and a key part (HKDF). The server
 *   stores SHA-256(auth key) (the verifier) and a random 32-byte share, and releases the share only for the
 *   auth key, counting wrong ones; the wrapping key is HKDF(key part || share). Without the share a stolen
 *   backup file cannot be attacked offline; the server (or whoever holds its database) can, at Argon2id speed.
 */
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, toHex, utf8, type CryptoProvider } from '../../protocol/index.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { KdfParams } from './format.js';

/** Digits of a recovery key. */
export const RECOVERY_KEY_DIGITS = 64;
/**
 * Default Argon2id parameters: 7 MiB, 5 passes, 1 lane (one of OWASP's equivalent Argon2id settings), about
 * 0.8 s in pure JavaScript on the 2-core test machine; the parameters travel with each slot, so they can grow.
 */
export const DEFAULT_KDF: KdfParams = { algorithm: 'argon2id', memoryKiB: 7168, iterations: 5, parallelism: 1 };
/** Shortest password accepted. */
export const MIN_PASSWORD_LENGTH = 8;

const RECOVERY_INFO = utf8('Parley backup v1 recovery key');
const AUTH_INFO = utf8('Parley backup v1 password auth');
const KEY_PART_INFO = utf8('Parley backup v1 password key');
const PASSWORD_WRAP_INFO = utf8('Parley backup v1 password wrap');

/** A fresh recovery key: 64 uniformly random digits (rejection sampling of random bytes). */
export function generateRecoveryKey(crypto: CryptoProvider): string {
  let digits = '';
  while (digits.length < RECOVERY_KEY_DIGITS) {
    for (const b of crypto.randomBytes(48)) {
      // 250 = 25 * 10: bytes above it would favour the low digits.
      if (b < 250 && digits.length < RECOVERY_KEY_DIGITS) digits += String(b % 10);
    }
  }
  return digits;
}

/** The recovery key in 16 groups of 4 digits, as it is shown. */
export function formatRecoveryKey(key: string): string {
  return (parseRecoveryKey(key).match(/.{4}/g) ?? []).join(' ');
}

/** The 64 digits of a recovery key as typed (spaces and dashes ignored); `CLIENT_INVALID_ARGUMENT` otherwise. */
export function parseRecoveryKey(text: string): string {
  const digits = text.replace(/[\s-]/g, '');
  if (!/^[0-9]{64}$/.test(digits)) throw new ClientError(ClientErrorCode.InvalidArgument, 'a recovery key is 64 digits');
  return digits;
}

/** The wrapping key of a recovery-key slot. */
export function recoveryWrapKey(crypto: CryptoProvider, recoveryKey: string, salt: Uint8Array): Promise<Uint8Array> {
  return crypto.hkdfSha256(utf8(parseRecoveryKey(recoveryKey)), salt, RECOVERY_INFO, 32);
}

/** What a password gives: the proof the server checks, and the client's half of the wrapping key. */
export interface PasswordKeys {
  /** Sent to the server to unlock the share (never stored by it: it keeps only {@link verifierOf}). */
  readonly authKey: Uint8Array;
  readonly keyPart: Uint8Array;
}

/** Checks a password's shape (`CLIENT_INVALID_ARGUMENT`): at least 8 characters, at most 1,024. */
export function checkPassword(password: string): string {
  const p = password.normalize('NFKC');
  if ([...p].length < MIN_PASSWORD_LENGTH) throw new ClientError(ClientErrorCode.InvalidArgument, `a backup password has at least ${MIN_PASSWORD_LENGTH} characters`);
  if (p.length > 1024) throw new ClientError(ClientErrorCode.InvalidArgument, 'a backup password has at most 1,024 characters');
  return p;
}

/** Argon2id of the password (NFKC), then HKDF into the auth key and the key part. Takes about {@link DEFAULT_KDF}'s time. */
export async function derivePasswordKeys(crypto: CryptoProvider, password: string, salt: Uint8Array, kdf: KdfParams): Promise<PasswordKeys> {
  const stretched = await argon2idAsync(utf8(checkPassword(password)), salt, { m: kdf.memoryKiB, t: kdf.iterations, p: kdf.parallelism, dkLen: 32 });
  const [authKey, keyPart] = await Promise.all([crypto.hkdfSha256(stretched, salt, AUTH_INFO, 32), crypto.hkdfSha256(stretched, salt, KEY_PART_INFO, 32)]);
  stretched.fill(0);
  return { authKey, keyPart };
}

/** What the server stores to check an auth key: its SHA-256. */
export function verifierOf(authKey: Uint8Array): Uint8Array {
  return sha256(authKey);
}

/** The wrapping key of a password slot: HKDF(key part || server share). */
export function passwordWrapKey(crypto: CryptoProvider, keyPart: Uint8Array, share: Uint8Array, salt: Uint8Array): Promise<Uint8Array> {
  return crypto.hkdfSha256(concatBytes(keyPart, share), salt, PASSWORD_WRAP_INFO, 32);
}

/** A random 128-bit id (32 hex digits). */
export function randomId(crypto: CryptoProvider): string {
  return toHex(crypto.randomBytes(16));
}
