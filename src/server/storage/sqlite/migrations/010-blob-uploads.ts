import type { Migration } from './migration.js';

/**
 * Resumable blob uploads in progress: the partial file is `<data dir>/blobs/uploads/<id>` (its size is the
 * upload's offset). `length` is reserved against the uploader's quota until the upload completes, is
 * cancelled or expires (`updated_at`, the last chunk, starts the 24-hour expiry).
 */
export const migration010: Migration = {
  version: 10,
  name: 'blob-uploads',
  up(db) {
    db.exec(`
      CREATE TABLE blob_uploads (
        id TEXT PRIMARY KEY,
        blob_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        length INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX blob_uploads_by_account ON blob_uploads (account_id, blob_id);
      CREATE INDEX blob_uploads_by_time ON blob_uploads (updated_at);
    `);
  },
};
