import type { PostgresMigration } from './migration.js';

/**
 * Backups (issue #10; SQLite's migration 13): each account's current backup (the blob of its encrypted file)
 * and its password slot. The row belongs to the account, not to a device, so it survives re-registration
 * of the number; it goes with the account. `share` is NULL once too many wrong passwords deleted it; `kdf`
 * is the slot's parameters as JSON text.
 */
export const migration002: PostgresMigration = {
  version: 2,
  name: 'backups',
  up: `
    CREATE TABLE backups (
      account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
      blob_id TEXT NOT NULL,
      size BIGINT NOT NULL,
      created_at BIGINT NOT NULL,
      uploaded_at BIGINT NOT NULL,
      format_version INTEGER NOT NULL,
      slot_id TEXT,
      salt BYTEA,
      kdf TEXT,
      verifier BYTEA,
      share BYTEA,
      failed_attempts INTEGER NOT NULL DEFAULT 0,
      locked_at BIGINT
    );
  `,
};
