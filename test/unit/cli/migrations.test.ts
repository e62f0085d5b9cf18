// The profile database's migrations: each applies to the schema before it, is recorded once, and a database
// from a newer release is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION, appliedVersions, migrate } from '../../../src/cli/store/migrations/index.ts';
import { Queries, sql } from '../../../src/cli/store/sql.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';

function tables(db: Database.Database): string[] {
  return (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{ name: string }>).map((r) => r.name);
}

describe('profile database migrations', () => {
  it('numbers the migrations 1..n in order', () => {
    assert.deepEqual(MIGRATIONS.map((m) => m.version), Array.from({ length: MIGRATIONS.length }, (_, i) => i + 1));
    assert.equal(SCHEMA_VERSION, MIGRATIONS.length);
  });

  it('001-initial creates the tables and is recorded once', () => {
    const db = new Database(':memory:');
    const q = new Queries(db);
    assert.deepEqual(migrate(q, 1, MIGRATIONS, 1), [1]);
    for (const t of ['account', 'settings', 'identities', 'pre_keys', 'signed_pre_keys', 'kyber_pre_keys', 'sessions', 'contacts', 'messages', 'outbox', 'processed_envelopes', 'schema_migrations']) {
      assert.ok(tables(db).includes(t), `table ${t}`);
    }
    assert.deepEqual(migrate(q, 2, MIGRATIONS, 1), [], 'a second run applies nothing');
    assert.deepEqual(appliedVersions(q), [1]);
    db.close();
  });

  it('002-groups adds groups, sender keys and the message columns to a schema-1 database', () => {
    const db = new Database(':memory:');
    const q = new Queries(db);
    migrate(q, 1, MIGRATIONS, 1);
    assert.deepEqual(migrate(q, 2, MIGRATIONS, 2), [2]);
    for (const t of ['groups', 'sender_keys']) assert.ok(tables(db).includes(t), `table ${t}`);
    const columns = (db.prepare(`SELECT name, dflt_value FROM pragma_table_info('messages')`).all() as Array<{ name: string; dflt_value: string | null }>);
    assert.equal(columns.find((c) => c.name === 'receipts')?.dflt_value, `'[]'`);
    assert.ok(columns.some((c) => c.name === 'group_update'));
    assert.deepEqual(migrate(q, 3), MIGRATIONS.slice(2).map((m) => m.version), 'a later run applies only what is newer');
    assert.deepEqual(migrate(q, 4), []);
    assert.deepEqual(appliedVersions(q), MIGRATIONS.map((m) => m.version));
    db.close();
  });

  it('refuses a database written by a newer release', () => {
    const db = new Database(':memory:');
    const q = new Queries(db);
    migrate(q, 1);
    q.run(sql`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${SCHEMA_VERSION + 1}, ${'future'}, ${2})`);
    assert.throws(() => migrate(q, 3), (e: unknown) => ClientError.is(e, ClientErrorCode.StoreCorrupt));
    db.close();
  });

  it('rolls back a migration that fails, leaving the version unrecorded', () => {
    const db = new Database(':memory:');
    const q = new Queries(db);
    const broken = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'broken', up: 'CREATE TABLE t1 (a); CREATE TABLE t1 (a);' }];
    assert.throws(() => migrate(q, 1, broken));
    assert.deepEqual(appliedVersions(q), MIGRATIONS.map((m) => m.version));
    assert.equal(tables(db).includes('t1'), false);
    db.close();
  });
});
