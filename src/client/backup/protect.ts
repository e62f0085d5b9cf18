/**
 * Turning a recovery key or a password into the protections a backup is written with (export.ts) and the
 * unlockers it is read with (import.ts).
 */
import type { CryptoProvider } from '../../protocol/index.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { BackupProtection } from './export.js';
import { checkKdfParams, unwrapBackupKey, type BackupHeader, type KdfParams } from './format.js';
import type { BackupUnlocker } from './import.js';
import { DEFAULT_KDF, derivePasswordKeys, passwordWrapKey, randomId, recoveryWrapKey, verifierOf } from './keys.js';

/** The recovery-key protection: a fresh salt and the wrapping key. */
export async function recoveryProtection(crypto: CryptoProvider, recoveryKey: string): Promise<NonNullable<BackupProtection['recovery']>> {
  const salt = crypto.randomBytes(16);
  return { salt, wrapKey: await recoveryWrapKey(crypto, recoveryKey, salt) };
}

/** A password slot as the server keeps it (the share and verifier) and the device keeps it (the wrapping key). */
export interface PasswordSlot {
  readonly slotId: string;
  readonly salt: Uint8Array;
  readonly kdf: KdfParams;
  /** SHA-256 of the auth key: the server checks proofs against it. */
  readonly verifier: Uint8Array;
  /** The server's half of the wrapping key (32 random bytes), released only for the right password. */
  readonly share: Uint8Array;
  readonly wrapKey: Uint8Array;
}

/** A new password slot: a fresh salt, Argon2id, a random share. */
export async function createPasswordSlot(crypto: CryptoProvider, password: string, kdf: KdfParams = DEFAULT_KDF): Promise<PasswordSlot> {
  const checked = checkKdfParams(kdf);
  const salt = crypto.randomBytes(16);
  const { authKey, keyPart } = await derivePasswordKeys(crypto, password, salt, checked);
  const share = crypto.randomBytes(32);
  return { slotId: randomId(crypto), salt, kdf: checked, verifier: verifierOf(authKey), share, wrapKey: await passwordWrapKey(crypto, keyPart, share, salt) };
}

/** Unlocks a header's recovery slot; `CLIENT_WRONG_BACKUP_KEY` when the key does not open it. */
export function recoveryUnlocker(crypto: CryptoProvider, recoveryKey: string): BackupUnlocker {
  return async (header: BackupHeader) => {
    const slot = header.slots.find((s) => s.kind === 'recovery');
    if (!slot) throw new ClientError(ClientErrorCode.WrongBackupKey, 'this backup has no recovery key: use its password');
    const key = await unwrapBackupKey(crypto, await recoveryWrapKey(crypto, recoveryKey, slot.salt), slot.wrapped, 'recovery');
    if (!key) throw new ClientError(ClientErrorCode.WrongBackupKey, 'the recovery key does not open this backup');
    return key;
  };
}

/**
 * Asks the server for the share of password slot `slotId`, proving the password with `authKey`. Throws
 * `CLIENT_WRONG_BACKUP_KEY` (attempts left in the message), `CLIENT_BACKUP_LOCKED` or `CLIENT_NO_BACKUP`.
 */
export type ShareFetcher = (slotId: string, authKey: Uint8Array) => Promise<Uint8Array>;

/** Unlocks a header's password slot with the server's share. */
export function passwordUnlocker(crypto: CryptoProvider, password: string, fetchShare: ShareFetcher): BackupUnlocker {
  return async (header: BackupHeader) => {
    const slot = header.slots.find((s) => s.kind === 'password');
    if (!slot || slot.kind !== 'password') throw new ClientError(ClientErrorCode.WrongBackupKey, 'this backup has no password: use its recovery key');
    const { authKey, keyPart } = await derivePasswordKeys(crypto, password, slot.salt, slot.kdf);
    const share = await fetchShare(slot.slotId, authKey);
    const key = await unwrapBackupKey(crypto, await passwordWrapKey(crypto, keyPart, share, slot.salt), slot.wrapped, 'password');
    // The server accepted the password, so the slot in this file was altered (or the server lied).
    if (!key) throw new ClientError(ClientErrorCode.BadBackup, 'the password slot of this backup does not open with the server\'s share (tampered?)');
    return key;
  };
}
