import type { Migration } from './migration.js';

/**
 * Fan-out stored once: the content of an envelope queued for many devices (a group message, a group
 * update) lives in one `payloads` row that the queue rows reference (`payload_id`, their own `content`
 * left empty). `refs` counts the queue rows referencing a payload; a trigger decrements it whenever such a
 * row is deleted, however (ack, expiry, the cascade of a device deletion), and deletes the payload with
 * its last reference, in the same transaction. 1:1 envelopes keep their content inline (`payload_id`
 * NULL). `group_id` marks the envelopes of a group.
 */
export const migration007: Migration = {
  version: 7,
  name: 'payloads',
  up(db) {
    db.exec(`
      CREATE TABLE payloads (
        id INTEGER PRIMARY KEY,
        refs INTEGER NOT NULL,
        content BLOB NOT NULL
      ) STRICT;
      ALTER TABLE messages ADD COLUMN payload_id INTEGER;
      ALTER TABLE messages ADD COLUMN group_id TEXT;
      CREATE TRIGGER messages_release_payload AFTER DELETE ON messages
      WHEN old.payload_id IS NOT NULL
      BEGIN
        UPDATE payloads SET refs = refs - 1 WHERE id = old.payload_id;
        DELETE FROM payloads WHERE id = old.payload_id AND refs <= 0;
      END;
    `);
  },
};
