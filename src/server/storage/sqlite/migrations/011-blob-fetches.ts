import type { Migration } from './migration.js';

/**
 * Retention `fetched`: who is still to fetch a blob named in a message's `blob_ids`.
 *
 * `blob_fetch_marks` says a blob was named by a message with at least one destination device, and when it
 * last was (the grace period runs from there). `blob_fetches` holds one row per device that has not
 * reported the blob fetched yet; the report deletes it. Both go with their blob (expiry or deletion), and
 * a device's rows go with the device (removal, re-registration of its account), by cascade inside the
 * transaction that deletes it. A blob with a mark, no pending row and a mark older than the grace period
 * is deleted by the sweeper.
 */
export const migration011: Migration = {
  version: 11,
  name: 'blob-fetches',
  up(db) {
    db.exec(`
      CREATE TABLE blob_fetch_marks (
        blob_id TEXT PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
        last_registered_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX blob_fetch_marks_by_time ON blob_fetch_marks (last_registered_at);
      CREATE TABLE blob_fetches (
        blob_id TEXT NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
        device_ref INTEGER NOT NULL REFERENCES devices (ref) ON DELETE CASCADE,
        registered_at INTEGER NOT NULL,
        PRIMARY KEY (blob_id, device_ref)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX blob_fetches_by_device ON blob_fetches (device_ref);
    `);
  },
};
