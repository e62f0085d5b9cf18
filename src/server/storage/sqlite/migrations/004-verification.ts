import type { Migration } from './migration.js';

/** Pending verification codes (SHA-256 of the code), with expiry and the count of wrong attempts. */
export const migration004: Migration = {
  version: 4,
  name: 'verification',
  up(db) {
    db.exec(`
      CREATE TABLE verification_codes (
        number TEXT PRIMARY KEY,
        code_hash BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX verification_codes_by_expiry ON verification_codes (expires_at);
    `);
  },
};
