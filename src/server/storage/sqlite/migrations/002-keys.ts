import type { Migration } from './migration.js';

/** The key directory: per device a signed prekey, a Kyber last-resort key, one-time EC and Kyber keys. */
export const migration002: Migration = {
  version: 2,
  name: 'keys',
  up(db) {
    db.exec(`
      CREATE TABLE signed_pre_keys (
        device_ref INTEGER PRIMARY KEY REFERENCES devices (ref) ON DELETE CASCADE,
        key_id INTEGER NOT NULL,
        public_key BLOB NOT NULL,
        signature BLOB NOT NULL,
        uploaded_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE kyber_last_resort_keys (
        device_ref INTEGER PRIMARY KEY REFERENCES devices (ref) ON DELETE CASCADE,
        key_id INTEGER NOT NULL,
        public_key BLOB NOT NULL,
        signature BLOB NOT NULL,
        uploaded_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE pre_keys (
        device_ref INTEGER NOT NULL REFERENCES devices (ref) ON DELETE CASCADE,
        key_id INTEGER NOT NULL,
        public_key BLOB NOT NULL,
        PRIMARY KEY (device_ref, key_id)
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE kyber_pre_keys (
        device_ref INTEGER NOT NULL REFERENCES devices (ref) ON DELETE CASCADE,
        key_id INTEGER NOT NULL,
        public_key BLOB NOT NULL,
        signature BLOB NOT NULL,
        PRIMARY KEY (device_ref, key_id)
      ) STRICT, WITHOUT ROWID;
    `);
  },
};
