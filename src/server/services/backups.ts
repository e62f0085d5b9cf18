/**
 * Backups (issue #10, docs/backups.md): the metadata of each account's current backup and the password slot.
 *
 * The server never sees a backup's content or key. For a password-protected backup it holds a verifier
 * (SHA-256 of the client's Argon2id-derived auth key) and a random 32-byte share, half of the key that wraps
 * the backup key: it releases the share only for an auth key that matches the verifier, counts wrong ones,
 * and deletes the share after {@link BackupServiceOptions.maxAttempts} of them, so a stolen backup file
 * cannot be attacked offline without the server's help. Unlock attempts are rate limited per account too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { RateLimit, ServerConfig } from '../config.js';
import { badRequest, forbidden, notFound, ServerError, ServerErrorCode } from '../errors.js';
import type { AccountId } from '../ids.js';
import { RateLimiter } from '../rate-limiter.js';
import type { BackupKdf, BackupStore, StoredBackup } from '../storage/backup-store.js';
import type { BlobIndex } from '../storage/stores.js';

/** Wrong passwords before the share is deleted. */
export const DEFAULT_BACKUP_ATTEMPTS = 10;
/** Unlock requests per account: 5 a minute. */
export const DEFAULT_UNLOCK_RATE: RateLimit = { capacity: 5, windowMs: 60_000 };
/** Backup registrations per account: 30 an hour. */
export const DEFAULT_PUT_RATE: RateLimit = { capacity: 30, windowMs: 3600_000 };
/** Backup file format versions the server accepts metadata for. */
export const MAX_BACKUP_FORMAT_VERSION = 1;

/** Response headers of a refused unlock. */
export const ATTEMPTS_LEFT_HEADER = 'x-parley-backup-attempts-left';
export const LOCKED_HEADER = 'x-parley-backup-locked';

export interface BackupServiceOptions {
  /** Default {@link DEFAULT_BACKUP_ATTEMPTS}. */
  readonly maxAttempts?: number | undefined;
  /** Default {@link DEFAULT_UNLOCK_RATE}. */
  readonly unlockRate?: RateLimit | undefined;
  readonly putRate?: RateLimit | undefined;
}

/** What a device registers (`PUT /v1/backups`). */
export interface NewBackup {
  readonly blobId: string;
  readonly size: number;
  readonly createdAt: number;
  readonly formatVersion: number;
  readonly password?: { readonly slotId: string; readonly salt: Uint8Array; readonly kdf: BackupKdf; readonly verifier: Uint8Array; readonly share: Uint8Array } | undefined;
}

/** The metadata a device may read: never the verifier or the share. */
export interface BackupView {
  readonly blobId: string;
  readonly size: number;
  readonly createdAt: number;
  readonly uploadedAt: number;
  readonly formatVersion: number;
  readonly password: { readonly slotId: string; readonly salt: Uint8Array; readonly kdf: BackupKdf; readonly attemptsLeft: number; readonly locked: boolean } | undefined;
}

const BLOB_ID = /^[0-9a-f]{64}$/;
const SLOT_ID = /^[0-9a-f]{32}$/;

function checkKdf(k: BackupKdf): BackupKdf {
  const int = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  if (k?.algorithm !== 'argon2id' || !int(k.memoryKiB, 1024, 1 << 20) || !int(k.iterations, 1, 64) || !int(k.parallelism, 1, 16)) throw badRequest('unsupported KDF parameters');
  return { algorithm: 'argon2id', memoryKiB: k.memoryKiB, iterations: k.iterations, parallelism: k.parallelism };
}

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

export class BackupService {
  readonly #store: BackupStore;
  readonly #blobs: BlobIndex;
  readonly #config: ServerConfig;
  readonly #clock: Clock;
  readonly #maxAttempts: number;
  readonly #unlockLimiter: RateLimiter;
  readonly #putLimiter: RateLimiter;

  constructor(store: BackupStore, blobs: BlobIndex, config: ServerConfig, options: BackupServiceOptions = {}) {
    this.#store = store;
    this.#blobs = blobs;
    this.#config = config;
    this.#clock = config.clock;
    this.#maxAttempts = options.maxAttempts ?? DEFAULT_BACKUP_ATTEMPTS;
    this.#unlockLimiter = new RateLimiter(options.unlockRate ?? DEFAULT_UNLOCK_RATE, this.#clock);
    this.#putLimiter = new RateLimiter(options.putRate ?? DEFAULT_PUT_RATE, this.#clock);
  }

  get maxAttempts(): number {
    return this.#maxAttempts;
  }

  /**
   * Makes `b` the account's current backup. Its blob must be stored, unexpired, uploaded by this account and
   * of the declared size; it is then kept for as long as it is current, and the previous one expires.
   */
  async put(accountId: AccountId, b: NewBackup): Promise<BackupView> {
    this.#putLimiter.check(accountId, 'backup registrations');
    if (!BLOB_ID.test(b.blobId)) throw badRequest('malformed blob id');
    if (!Number.isSafeInteger(b.size) || b.size <= 0) throw badRequest('malformed backup size');
    if (!Number.isSafeInteger(b.createdAt) || b.createdAt < 0) throw badRequest('malformed creation time');
    if (!Number.isInteger(b.formatVersion) || b.formatVersion < 1 || b.formatVersion > MAX_BACKUP_FORMAT_VERSION) throw badRequest('unsupported backup format version');
    const p = b.password;
    if (p !== undefined) {
      if (!SLOT_ID.test(p.slotId) || p.salt.length !== 16 || p.verifier.length !== 32 || p.share.length !== 32) throw badRequest('malformed password slot');
      checkKdf(p.kdf);
    }
    const now = this.#clock.now();
    const blob = await this.#blobs.get(b.blobId, now - this.#config.blobTtlMs);
    if (blob === undefined) throw notFound('backup blob');
    if (blob.accountId !== accountId) throw forbidden('the backup blob was uploaded by another account');
    if (blob.size !== b.size) throw badRequest('the backup blob has another size');
    await this.#store.put(
      {
        accountId,
        blobId: b.blobId,
        size: b.size,
        createdAt: b.createdAt,
        uploadedAt: now,
        formatVersion: b.formatVersion,
        password: p === undefined ? undefined : { slotId: p.slotId, salt: p.salt, kdf: checkKdf(p.kdf), verifier: p.verifier, share: p.share, failedAttempts: 0, lockedAt: undefined },
      },
      // The replaced blob expires at the next sweep.
      0,
    );
    return this.#current(accountId);
  }

  /** The account's current backup (404 when none). */
  async current(accountId: AccountId): Promise<BackupView> {
    return this.#current(accountId);
  }

  async #current(accountId: AccountId): Promise<BackupView> {
    const b = await this.#store.get(accountId);
    if (b === undefined) throw notFound('backup');
    return this.#view(b);
  }

  #view(b: StoredBackup): BackupView {
    const p = b.password;
    return {
      blobId: b.blobId,
      size: b.size,
      createdAt: b.createdAt,
      uploadedAt: b.uploadedAt,
      formatVersion: b.formatVersion,
      password:
        p === undefined
          ? undefined
          : { slotId: p.slotId, salt: p.salt, kdf: p.kdf, attemptsLeft: p.share === undefined ? 0 : Math.max(0, this.#maxAttempts - p.failedAttempts), locked: p.share === undefined },
    };
  }

  /**
   * Releases the share of password slot `slotId` for `proof` (the auth key). A wrong proof is counted:
   * 403 SERVER_FORBIDDEN with the attempts left in {@link ATTEMPTS_LEFT_HEADER}; the last one deletes the
   * share, and from then on every unlock is refused with {@link LOCKED_HEADER} set.
   */
  async unlock(accountId: AccountId, slotId: string, proof: Uint8Array): Promise<Uint8Array> {
    this.#unlockLimiter.check(accountId, 'backup unlock attempts');
    if (!SLOT_ID.test(slotId) || proof.length !== 32) throw badRequest('malformed unlock request');
    const b = await this.#store.get(accountId);
    const p = b?.password;
    if (p === undefined || p.slotId !== slotId) throw notFound('backup password slot');
    if (p.share === undefined) throw locked();
    if (timingSafeEqual(sha256(proof), p.verifier)) {
      await this.#store.resetFailures(accountId, slotId);
      return p.share;
    }
    const failure = await this.#store.recordFailure(accountId, slotId, this.#maxAttempts, this.#clock.now());
    if (failure.locked) throw locked();
    throw new ServerError(ServerErrorCode.Forbidden, 'wrong backup password', { headers: { [ATTEMPTS_LEFT_HEADER]: String(failure.attemptsLeft) } });
  }

  /** Deletes the account's backup metadata; its blob expires. 404 when there is none. */
  async delete(accountId: AccountId): Promise<void> {
    const blobId = await this.#store.delete(accountId, 0);
    if (blobId === undefined) throw notFound('backup');
  }
}

function locked(): ServerError {
  return new ServerError(ServerErrorCode.Forbidden, 'too many wrong passwords: the backup password slot is locked', { headers: { [LOCKED_HEADER]: 'true', [ATTEMPTS_LEFT_HEADER]: '0' } });
}
