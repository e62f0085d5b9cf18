import type { Migration } from './migration.js';

/**
 * Per-device envelope queues and the idempotency keys of sends. `seq` orders a device's queue and is
 * never reused (AUTOINCREMENT), so a delivery cursor can never skip a newer envelope.
 */
export const migration003: Migration = {
  version: 3,
  name: 'messages',
  up(db) {
    db.exec(`
      CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        device_ref INTEGER NOT NULL REFERENCES devices (ref) ON DELETE CASCADE,
        guid BLOB NOT NULL,
        type INTEGER NOT NULL,
        source_account_id TEXT NOT NULL,
        source_device_id INTEGER NOT NULL,
        destination_device_id INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        server_timestamp INTEGER NOT NULL,
        content BLOB NOT NULL
      ) STRICT;
      CREATE INDEX messages_by_device ON messages (device_ref, seq);
      CREATE INDEX messages_by_time ON messages (server_timestamp);
      CREATE TABLE idempotency_keys (
        scope TEXT NOT NULL,
        key BLOB NOT NULL,
        stored INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (scope, key)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
    `);
  },
};
