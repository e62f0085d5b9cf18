// The sql tag binds every interpolation as a parameter: hostile strings stay values.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { sql, SqlHandle } from '../../../src/server/storage/sqlite/sql.ts';

describe('sql tagged template', () => {
  it('turns interpolations into placeholders and parameters', () => {
    const q = sql`SELECT * FROM t WHERE a = ${1} AND b = ${'x'}`;
    assert.equal(q.text, 'SELECT * FROM t WHERE a = ? AND b = ?');
    assert.deepEqual(q.params, [1, 'x']);
  });

  it('keeps an injection attempt a plain value, and binds bytes as BLOBs', () => {
    const db = new SqlHandle(new Database(':memory:'));
    db.db.exec('CREATE TABLE t (name TEXT, data BLOB)');
    const hostile = "x'); DROP TABLE t; --";
    db.run(sql`INSERT INTO t (name, data) VALUES (${hostile}, ${new Uint8Array([1, 2, 3])})`);
    const row = db.get<{ name: string; data: Uint8Array }>(sql`SELECT name, data FROM t WHERE name = ${hostile}`);
    assert.equal(row?.name, hostile);
    assert.deepEqual([...(row?.data ?? [])], [1, 2, 3]);
    assert.equal(db.all(sql`SELECT * FROM t`).length, 1);
  });

  it('rolls back a transaction that throws, and nests as savepoints', () => {
    const db = new SqlHandle(new Database(':memory:'));
    db.db.exec('CREATE TABLE t (x INTEGER)');
    db.transaction(() => {
      db.run(sql`INSERT INTO t (x) VALUES (${1})`);
      assert.throws(() =>
        db.transaction(() => {
          db.run(sql`INSERT INTO t (x) VALUES (${2})`);
          throw new Error('inner');
        }),
      );
    });
    assert.deepEqual(db.all<{ x: number }>(sql`SELECT x FROM t`).map((r) => r.x), [1]);
  });
});
