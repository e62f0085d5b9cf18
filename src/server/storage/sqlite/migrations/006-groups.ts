import type { Migration } from './migration.js';

/**
 * Groups: what fan-out and permission checks need (members, roles, settings as bit flags, a revision, the
 * SHA-256 of the invite link's password or NULL) and the clients' encrypted attributes as an opaque blob.
 * Members are accounts, not devices: re-registration keeps an account's memberships.
 */
export const migration006: Migration = {
  version: 6,
  name: 'groups',
  up(db) {
    db.exec(`
      CREATE TABLE groups (
        id TEXT PRIMARY KEY,
        revision INTEGER NOT NULL,
        settings INTEGER NOT NULL,
        attributes BLOB NOT NULL,
        invite_hash BLOB,
        created_at INTEGER NOT NULL,
        creator TEXT NOT NULL
      ) STRICT;
      CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
        account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        admin INTEGER NOT NULL,
        joined_at INTEGER NOT NULL,
        joined_revision INTEGER NOT NULL,
        PRIMARY KEY (group_id, account_id)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX group_members_by_account ON group_members (account_id, group_id);
    `);
  },
};
