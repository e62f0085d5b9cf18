import type { Migration } from './migration.js';

/**
 * Linked devices. Every device gets its own identity key (`identity_key`; existing devices are all
 * primaries, so they take the account's) and, for a companion, the serialized `DeviceIdentity` the account
 * and the device signed (`identity`). `listed` marks the companions the account's current signed device
 * list names (device 1 is always required, whatever its flag): only those are required and reachable.
 * `provisioning_codes` are the one-time codes that let a companion register (SHA-256 of the code, the
 * reserved device id, expiry, used); `provisioning_envelopes` the encrypted provisioning messages left for
 * a companion by link id (deleted when read or expired); `device_lists` the newest signed device list of
 * each account.
 */
export const migration008: Migration = {
  version: 8,
  name: 'linked-devices',
  up(db) {
    db.exec(`
      ALTER TABLE devices ADD COLUMN identity_key BLOB NOT NULL DEFAULT x'';
      UPDATE devices SET identity_key = (SELECT a.identity_key FROM accounts a WHERE a.id = devices.account_id);
      ALTER TABLE devices ADD COLUMN identity BLOB;
      ALTER TABLE devices ADD COLUMN listed INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE provisioning_codes (
        code_hash BLOB PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        device_id INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX provisioning_codes_by_account ON provisioning_codes (account_id);
      CREATE INDEX provisioning_codes_by_expiry ON provisioning_codes (expires_at);
      CREATE TABLE provisioning_envelopes (
        link_id TEXT PRIMARY KEY,
        body BLOB NOT NULL,
        expires_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX provisioning_envelopes_by_expiry ON provisioning_envelopes (expires_at);
      CREATE TABLE device_lists (
        account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        signed_list BLOB NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `);
  },
};
