import type { AccountId } from '../../ids.js';
import { backupFromRow, PINNED_BLOB_TIME, type BackupRow, type BackupStore, type FailedAttempt, type StoredBackup } from '../backup-store.js';
import type { PostgresDatabase } from './database.js';
import { LockClass, lockExclusive } from './locks.js';
import { sql, type PgHandle } from './sql.js';

/** The account's backup row; `lock` keeps it locked (`FOR UPDATE`) to the end of the transaction. */
async function read(db: PgHandle, accountId: AccountId, lock: boolean): Promise<BackupRow | undefined> {
  return db.get<BackupRow>(
    lock
      ? sql`SELECT account_id, blob_id, size, created_at, uploaded_at, format_version, slot_id, salt, kdf, verifier, share, failed_attempts, locked_at
            FROM backups WHERE account_id = ${accountId} FOR UPDATE`
      : sql`SELECT account_id, blob_id, size, created_at, uploaded_at, format_version, slot_id, salt, kdf, verifier, share, failed_attempts, locked_at
            FROM backups WHERE account_id = ${accountId}`,
  );
}

/**
 * {@link BackupStore} on PostgreSQL (the semantics of `sqlite/backup-store.ts`), on the database of the
 * other stores: the `blobs` row is pinned and unpinned in the transaction that changes the backup. Changes
 * of one account's backup hold its advisory backup lock (there may be no row yet), and a wrong proof is
 * counted on the row locked `FOR UPDATE`: proofs sent to several nodes at once cannot pass the limit.
 */
export class PostgresBackupStore implements BackupStore {
  readonly #db: PostgresDatabase;

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  async get(accountId: AccountId): Promise<StoredBackup | undefined> {
    const row = await read(this.#db.read, accountId, false);
    return row === undefined ? undefined : backupFromRow(row);
  }

  put(b: StoredBackup, unpinnedAt: number): Promise<{ readonly replacedBlobId: string | undefined }> {
    return this.#db.transaction(async (db) => {
      await lockExclusive(db, LockClass.Backup, b.accountId);
      const old = await read(db, b.accountId, true);
      const p = b.password;
      // The same slot keeps its count and, once locked, stays locked.
      const sameSlot = p !== undefined && old?.slot_id === p.slotId;
      const failed = sameSlot ? (old?.failed_attempts ?? 0) : 0;
      const lockedAt = sameSlot ? (old?.locked_at ?? null) : null;
      const share = p === undefined || lockedAt !== null ? null : (p.share ?? null);
      await db.run(sql`DELETE FROM backups WHERE account_id = ${b.accountId}`);
      await db.run(sql`
        INSERT INTO backups (account_id, blob_id, size, created_at, uploaded_at, format_version, slot_id, salt, kdf, verifier, share, failed_attempts, locked_at)
        VALUES (${b.accountId}, ${b.blobId}, ${b.size}, ${b.createdAt}, ${b.uploadedAt}, ${b.formatVersion}, ${p?.slotId ?? null}, ${p?.salt ?? null},
                ${p === undefined ? null : JSON.stringify(p.kdf)}, ${p?.verifier ?? null}, ${share}, ${failed}, ${lockedAt})`);
      await db.run(sql`UPDATE blobs SET created_at = ${PINNED_BLOB_TIME} WHERE id = ${b.blobId}`);
      const replaced = old !== undefined && old.blob_id !== b.blobId ? old.blob_id : undefined;
      if (replaced !== undefined) await db.run(sql`UPDATE blobs SET created_at = ${unpinnedAt} WHERE id = ${replaced}`);
      return { replacedBlobId: replaced };
    });
  }

  recordFailure(accountId: AccountId, slotId: string, limit: number, now: number): Promise<FailedAttempt> {
    return this.#db.transaction(async (db): Promise<FailedAttempt> => {
      const row = await read(db, accountId, true);
      if (row === undefined || row.slot_id !== slotId || row.share === null) return { attemptsLeft: 0, locked: true };
      const failed = row.failed_attempts + 1;
      if (failed >= limit) {
        await db.run(sql`UPDATE backups SET failed_attempts = ${failed}, share = NULL, locked_at = ${now} WHERE account_id = ${accountId}`);
        return { attemptsLeft: 0, locked: true };
      }
      await db.run(sql`UPDATE backups SET failed_attempts = ${failed} WHERE account_id = ${accountId}`);
      return { attemptsLeft: limit - failed, locked: false };
    });
  }

  async resetFailures(accountId: AccountId, slotId: string): Promise<void> {
    await this.#db.read.run(sql`UPDATE backups SET failed_attempts = 0 WHERE account_id = ${accountId} AND slot_id = ${slotId} AND share IS NOT NULL`);
  }

  delete(accountId: AccountId, unpinnedAt: number): Promise<string | undefined> {
    return this.#db.transaction(async (db) => {
      await lockExclusive(db, LockClass.Backup, accountId);
      const row = await db.get<{ blob_id: string }>(sql`DELETE FROM backups WHERE account_id = ${accountId} RETURNING blob_id`);
      if (row !== undefined) await db.run(sql`UPDATE blobs SET created_at = ${unpinnedAt} WHERE id = ${row.blob_id}`);
      return row?.blob_id;
    });
  }
}
