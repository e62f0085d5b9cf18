/**
 * Backup metadata (issue #10, docs/backups.md): one current backup per account, the blob that holds its
 * encrypted file, and the password slot whose share the server releases only for the right password.
 *
 * `Storage.backups`: `sqlite/backup-store.ts` and `postgres/backup-store.ts`. An implementation keeps the current backup's blob from expiring ("pins" it) and
 * lets a replaced or deleted backup's blob expire, in the same transaction that changes the metadata.
 */
import type { AccountId } from '../ids.js';

/** Argon2id parameters of a password slot, as the client chose them (opaque to the server apart from bounds). */
export interface BackupKdf {
  readonly algorithm: 'argon2id';
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/** The password slot of a backup. */
export interface BackupPasswordSlot {
  /** 32 hex digits; the same slot (same salt, share and verifier) stays across backups until the password changes. */
  readonly slotId: string;
  readonly salt: Uint8Array;
  readonly kdf: BackupKdf;
  /** SHA-256 of the client's auth key. */
  readonly verifier: Uint8Array;
  /** 32 bytes, released for the right proof; undefined once deleted after too many wrong ones (locked). */
  readonly share: Uint8Array | undefined;
  readonly failedAttempts: number;
  /** When the share was deleted, ms. */
  readonly lockedAt: number | undefined;
}

/** An account's current backup. */
export interface StoredBackup {
  readonly accountId: AccountId;
  /** Hex SHA-256 of the encrypted file (its blob). */
  readonly blobId: string;
  readonly size: number;
  /** When the client made it, ms. */
  readonly createdAt: number;
  /** When it was registered here, ms. */
  readonly uploadedAt: number;
  readonly formatVersion: number;
  readonly password: BackupPasswordSlot | undefined;
}

/** The blob's `created_at` while it is a current backup: far after any expiry cut-off, so it never expires. */
export const PINNED_BLOB_TIME = 8_640_000_000_000_000;

/** Outcome of a wrong proof. */
export interface FailedAttempt {
  readonly attemptsLeft: number;
  /** True when this failure used up the last attempt (the share is gone) or the slot was locked already. */
  readonly locked: boolean;
}

export interface BackupStore {
  get(accountId: AccountId): Promise<StoredBackup | undefined>;
  /**
   * Makes `backup` the account's current one, in one transaction: a password slot with the slot id of the
   * previous one keeps its failure count and its locked state (a locked share is not taken again); the new
   * blob is pinned ({@link PINNED_BLOB_TIME}); the replaced blob, when another, gets `created_at = unpinnedAt`
   * (so the sweeper deletes it as expired). Returns the replaced blob id, if any.
   */
  put(backup: StoredBackup, unpinnedAt: number): Promise<{ readonly replacedBlobId: string | undefined }>;
  /** Counts a wrong proof for slot `slotId`; at `limit` failures the share is deleted. */
  recordFailure(accountId: AccountId, slotId: string, limit: number, now: number): Promise<FailedAttempt>;
  /** A right proof: the failure count of the slot starts again. */
  resetFailures(accountId: AccountId, slotId: string): Promise<void>;
  /** Deletes the account's backup metadata and unpins its blob; returns its blob id, if there was one. */
  delete(accountId: AccountId, unpinnedAt: number): Promise<string | undefined>;
}

/** The `backups` table's row, as both backends store it (bytes as BLOB/BYTEA, times as ms, kdf as JSON text). */
export interface BackupRow {
  account_id: string;
  blob_id: string;
  size: number;
  created_at: number;
  uploaded_at: number;
  format_version: number;
  slot_id: string | null;
  salt: Uint8Array | null;
  kdf: string | null;
  verifier: Uint8Array | null;
  share: Uint8Array | null;
  failed_attempts: number;
  locked_at: number | null;
}

const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);

/** A stored row as a {@link StoredBackup} (bytes copied out of the driver's buffers). */
export function backupFromRow(row: BackupRow): StoredBackup {
  const password =
    row.slot_id === null || row.salt === null || row.kdf === null || row.verifier === null
      ? undefined
      : {
          slotId: row.slot_id,
          salt: copy(row.salt),
          kdf: JSON.parse(row.kdf) as BackupKdf,
          verifier: copy(row.verifier),
          share: row.share === null ? undefined : copy(row.share),
          failedAttempts: row.failed_attempts,
          lockedAt: row.locked_at ?? undefined,
        };
  return {
    accountId: row.account_id as AccountId,
    blobId: row.blob_id,
    size: row.size,
    createdAt: row.created_at,
    uploadedAt: row.uploaded_at,
    formatVersion: row.format_version,
    password,
  };
}
