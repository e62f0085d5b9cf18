import type { Migration } from './migration.js';

/** Presence: who may see an account's online state (0 everyone, 1 nobody, 2 allowed list) and last seen. */
export const migration005: Migration = {
  version: 5,
  name: 'presence',
  up(db) {
    db.exec(`
      CREATE TABLE presence (
        account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        visibility INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE presence_allowed (
        account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        allowed_account_id TEXT NOT NULL,
        PRIMARY KEY (account_id, allowed_account_id)
      ) STRICT, WITHOUT ROWID;
    `);
  },
};
