/**
 * Migration 6: an index of unread messages (issue 7: the chats list and markRead without reading histories).
 * A partial index, so it holds only the unread rows: counting a conversation's unread messages, or finding
 * them to mark read, costs what is unread, not the history. Its condition is `isUnread` of
 * src/client/store/unread.ts in SQL; the store's queries repeat it word for word so that SQLite uses the index.
 */
import type { Migration } from './index.js';

export const migration006: Migration = {
  version: 6,
  name: 'unread',
  up: `
    CREATE INDEX messages_unread ON messages (conversation_id, timestamp, id)
      WHERE direction = 'incoming' AND status = 'received' AND kind <> 'group-update';
  `,
};
