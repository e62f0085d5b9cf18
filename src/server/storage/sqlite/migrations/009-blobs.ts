import type { Migration } from './migration.js';

/**
 * Blobs (encrypted attachments, history bundles): the metadata of the files in `<data dir>/blobs/`, named
 * by the hex SHA-256 of their bytes. `account_id` is the uploader whose quota the blob counts against;
 * `created_at` starts the 30-day expiry (an upload of an existing blob restarts it).
 */
export const migration009: Migration = {
  version: 9,
  name: 'blobs',
  up(db) {
    db.exec(`
      CREATE TABLE blobs (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX blobs_by_account ON blobs (account_id);
      CREATE INDEX blobs_by_time ON blobs (created_at);
    `);
  },
};
