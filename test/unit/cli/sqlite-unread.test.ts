// Migration 6 of the profile database: the partial index of unread messages, and that the store's unread
// queries go through it (SQLite uses a partial index only when the query's condition implies the index's).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate } from '../../../src/cli/store/migrations/index.ts';
import { Queries, sql } from '../../../src/cli/store/sql.ts';

describe('migration 6 (unread index)', () => {
  it('adds messages_unread over the unread rows only, used by the queries of unread messages', () => {
    const db = new Database(':memory:');
    const q = new Queries(db);
    migrate(q, 1, MIGRATIONS, 5);
    assert.equal(q.get(sql`SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'messages_unread'`), undefined);
    assert.deepEqual(migrate(q, 2), [6]);
    const index = q.get<{ sql: string }>(sql`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'messages_unread'`);
    assert.match(index?.sql ?? '', /WHERE direction = 'incoming' AND status = 'received' AND kind <> 'group-update'/);
    const plan = (text: string): string =>
      (db.prepare(`EXPLAIN QUERY PLAN ${text}`).all('c') as Array<{ detail: string }>).map((r) => r.detail).join(' / ');
    // The statements of SqliteClientStore's `unread` and `summaries` (their conditions word for word).
    assert.match(
      plan(`SELECT * FROM messages WHERE conversation_id = ? AND direction = 'incoming' AND status = 'received' AND kind <> 'group-update' ORDER BY timestamp, id LIMIT -1`),
      /messages_unread/,
    );
    assert.match(
      db
        .prepare(
          `EXPLAIN QUERY PLAN SELECT conversation_id AS c, COUNT(*) AS n FROM messages WHERE direction = 'incoming' AND status = 'received' AND kind <> 'group-update' GROUP BY conversation_id`,
        )
        .all()
        .map((r) => (r as { detail: string }).detail)
        .join(' / '),
      /messages_unread/,
    );
    db.close();
  });
});
