/**
 * Migration 3: linked devices. On a companion the account document is joined by the account key (the
 * primary's identity key, 33 bytes), kept as a column of its own (NULL on a primary, whose own identity key is
 * the account key). The companions of accounts (contacts' and our own), as their verified signed device lists
 * named them, are rows per account and device id.
 */
import type { Migration } from './index.js';

export const migration003: Migration = {
  version: 3,
  name: 'devices',
  up: `
    ALTER TABLE account ADD COLUMN account_identity_key BLOB;
    CREATE TABLE device_identities (
      account_id TEXT NOT NULL,
      device_id INTEGER NOT NULL,
      identity_key BLOB NOT NULL,
      list_version INTEGER NOT NULL,
      first_seen_at INTEGER NOT NULL,
      changed_at INTEGER,
      PRIMARY KEY (account_id, device_id)
    ) WITHOUT ROWID;
  `,
};
