import type { AccountId } from '../../ids.js';
import { backupFromRow, PINNED_BLOB_TIME, type BackupRow, type BackupStore, type FailedAttempt, type StoredBackup } from '../backup-store.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

function read(db: SqlHandle, accountId: AccountId): BackupRow | undefined {
  return db.get<BackupRow>(sql`SELECT * FROM backups WHERE account_id = ${accountId}`);
}

/**
 * {@link BackupStore} on SQLite, on the database of the other stores (the `blobs` table is pinned and unpinned
 * in the same write job). Every call, reads included, goes through the group-commit writer: backups are rare,
 * and the failure counter must never be read apart from its update.
 */
export class SqliteBackupStore implements BackupStore {
  readonly #writer: GroupCommitWriter;

  constructor(writer: GroupCommitWriter) {
    this.#writer = writer;
  }

  get(accountId: AccountId): Promise<StoredBackup | undefined> {
    return this.#writer.enqueue((db) => {
      const row = read(db, accountId);
      return row === undefined ? undefined : backupFromRow(row);
    });
  }

  put(b: StoredBackup, unpinnedAt: number): Promise<{ readonly replacedBlobId: string | undefined }> {
    return this.#writer.enqueue((db) => {
      const old = read(db, b.accountId);
      const p = b.password;
      // The same slot keeps its count and, once locked, stays locked.
      const sameSlot = p !== undefined && old?.slot_id === p.slotId;
      const failed = sameSlot ? (old?.failed_attempts ?? 0) : 0;
      const lockedAt = sameSlot ? (old?.locked_at ?? null) : null;
      const share = p === undefined || lockedAt !== null ? null : (p.share ?? null);
      db.run(sql`DELETE FROM backups WHERE account_id = ${b.accountId}`);
      db.run(sql`INSERT INTO backups (account_id, blob_id, size, created_at, uploaded_at, format_version, slot_id, salt, kdf, verifier, share, failed_attempts, locked_at)
                 VALUES (${b.accountId}, ${b.blobId}, ${b.size}, ${b.createdAt}, ${b.uploadedAt}, ${b.formatVersion}, ${p?.slotId ?? null}, ${p?.salt ?? null},
                         ${p === undefined ? null : JSON.stringify(p.kdf)}, ${p?.verifier ?? null}, ${share}, ${failed}, ${lockedAt})`);
      db.run(sql`UPDATE blobs SET created_at = ${PINNED_BLOB_TIME} WHERE id = ${b.blobId}`);
      const replaced = old !== undefined && old.blob_id !== b.blobId ? old.blob_id : undefined;
      if (replaced !== undefined) db.run(sql`UPDATE blobs SET created_at = ${unpinnedAt} WHERE id = ${replaced}`);
      return { replacedBlobId: replaced };
    });
  }

  recordFailure(accountId: AccountId, slotId: string, limit: number, now: number): Promise<FailedAttempt> {
    return this.#writer.enqueue((db): FailedAttempt => {
      const row = read(db, accountId);
      if (row === undefined || row.slot_id !== slotId || row.share === null) return { attemptsLeft: 0, locked: true };
      const failed = row.failed_attempts + 1;
      if (failed >= limit) {
        db.run(sql`UPDATE backups SET failed_attempts = ${failed}, share = NULL, locked_at = ${now} WHERE account_id = ${accountId}`);
        return { attemptsLeft: 0, locked: true };
      }
      db.run(sql`UPDATE backups SET failed_attempts = ${failed} WHERE account_id = ${accountId}`);
      return { attemptsLeft: limit - failed, locked: false };
    });
  }

  resetFailures(accountId: AccountId, slotId: string): Promise<void> {
    return this.#writer.enqueue((db) => {
      db.run(sql`UPDATE backups SET failed_attempts = 0 WHERE account_id = ${accountId} AND slot_id = ${slotId} AND share IS NOT NULL`);
    });
  }

  delete(accountId: AccountId, unpinnedAt: number): Promise<string | undefined> {
    return this.#writer.enqueue((db) => {
      const row = db.get<{ blob_id: string }>(sql`DELETE FROM backups WHERE account_id = ${accountId} RETURNING blob_id`);
      if (row !== undefined) db.run(sql`UPDATE blobs SET created_at = ${unpinnedAt} WHERE id = ${row.blob_id}`);
      return row?.blob_id;
    });
  }
}
