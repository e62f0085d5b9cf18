import type { Migration } from './migration.js';

/**
 * Resumable uploads whose blob id is not known when they start (the client learns the SHA-256 of what it
 * encrypts only at the end): `blob_uploads.blob_id` becomes nullable; the completing chunk names the id.
 * SQLite cannot relax a NOT NULL constraint in place, so the table is rebuilt with its rows and indexes.
 */
export const migration012: Migration = {
  version: 12,
  name: 'blob-uploads-without-id',
  up(db) {
    db.exec(`
      CREATE TABLE blob_uploads_new (
        id TEXT PRIMARY KEY,
        blob_id TEXT,
        account_id TEXT NOT NULL,
        length INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      INSERT INTO blob_uploads_new (id, blob_id, account_id, length, updated_at) SELECT id, blob_id, account_id, length, updated_at FROM blob_uploads;
      DROP TABLE blob_uploads;
      ALTER TABLE blob_uploads_new RENAME TO blob_uploads;
      CREATE INDEX blob_uploads_by_account ON blob_uploads (account_id, blob_id);
      CREATE INDEX blob_uploads_by_time ON blob_uploads (updated_at);
    `);
  },
};
