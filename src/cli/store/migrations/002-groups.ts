/**
 * Migration 2: groups. A group is kept whole as one versioned document (the record encoded by
 * json-codec.ts: bytes as base64), with its name as a column for ordering; sender keys are rows per sender
 * device and distribution id, findable by group; messages gain per-member receipts (outgoing group
 * messages) and the details of group system messages.
 */
import type { Migration } from './index.js';

export const migration002: Migration = {
  version: 2,
  name: 'groups',
  up: `
    CREATE TABLE groups (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      format INTEGER NOT NULL,
      data TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX groups_by_name ON groups (name, id);
    CREATE TABLE sender_keys (
      sender TEXT NOT NULL,
      device INTEGER NOT NULL,
      distribution_id TEXT NOT NULL,
      group_id TEXT NOT NULL,
      record BLOB NOT NULL,
      PRIMARY KEY (sender, device, distribution_id)
    ) WITHOUT ROWID;
    CREATE INDEX sender_keys_by_group ON sender_keys (group_id, sender);
    ALTER TABLE messages ADD COLUMN receipts TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE messages ADD COLUMN group_update TEXT;
  `,
};
