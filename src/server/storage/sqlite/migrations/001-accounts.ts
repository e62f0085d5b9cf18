import type { Migration } from './migration.js';

/** Accounts (one per phone number) and their devices. `ref` is never reused (AUTOINCREMENT). */
export const migration001: Migration = {
  version: 1,
  name: 'accounts',
  up(db) {
    db.exec(`
      CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        number TEXT NOT NULL UNIQUE,
        identity_key BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        registered_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE devices (
        ref INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        device_id INTEGER NOT NULL,
        registration_id INTEGER NOT NULL,
        password_hash BLOB NOT NULL,
        name BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (account_id, device_id)
      ) STRICT;
    `);
  },
};
