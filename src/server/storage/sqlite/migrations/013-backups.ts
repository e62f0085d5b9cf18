import type { Migration } from './migration.js';

/**
 * Backups (issue #10): each account's current backup (the blob of its encrypted file) and its password slot.
 * The row belongs to the account, not to a device, so it survives re-registration of the number (which
 * deletes the devices); it goes with the account. `share` is NULL once too many wrong passwords deleted it.
 */
export const migration013: Migration = {
  version: 13,
  name: 'backups',
  up(db) {
    db.exec(`
      CREATE TABLE backups (
        account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        blob_id TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        uploaded_at INTEGER NOT NULL,
        format_version INTEGER NOT NULL,
        slot_id TEXT,
        salt BLOB,
        kdf TEXT,
        verifier BLOB,
        share BLOB,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        locked_at INTEGER
      ) STRICT, WITHOUT ROWID;
    `);
  },
};
