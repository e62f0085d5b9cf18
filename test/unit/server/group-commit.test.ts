// Group commit: the jobs of one tick share one transaction, settle only after it committed, keep their
// order, and fail alone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { GroupCommitWriter } from '../../../src/server/storage/sqlite/group-commit.ts';
import { sql, SqlHandle } from '../../../src/server/storage/sqlite/sql.ts';
import { NO_SYNC, type Durability } from '../../../src/server/storage/sqlite/wal-sync.ts';

function setup(durability: Durability = NO_SYNC): { db: SqlHandle; writer: GroupCommitWriter } {
  const db = new SqlHandle(new Database(':memory:'));
  db.db.exec('CREATE TABLE t (x INTEGER PRIMARY KEY)');
  return { db, writer: new GroupCommitWriter(db, durability) };
}

/** A durability whose syncs complete only when the test says so. */
function manualSync(): Durability & { started: number; complete(): void; fail(): void } {
  const waiting: Array<{ resolve(): void; reject(err: Error): void }> = [];
  return {
    started: 0,
    sync() {
      this.started++;
      return new Promise<void>((resolve, reject) => waiting.push({ resolve, reject }));
    },
    async close() {},
    complete() {
      waiting.shift()?.resolve();
    },
    fail() {
      waiting.shift()?.reject(new Error('EIO'));
    },
  };
}

describe('GroupCommitWriter', () => {
  it('commits the jobs of one tick in one transaction, in order', async () => {
    const { db, writer } = setup();
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => writer.enqueue((h) => Number(h.run(sql`INSERT INTO t (x) VALUES (${i})`).lastInsertRowid))));
    assert.equal(writer.commits, 1);
    assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => i));
    assert.equal(db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM t`)?.n, 100);
  });

  it('settles a job only after its transaction committed', async () => {
    const { db, writer } = setup();
    let visibleInside = -1;
    await writer.enqueue((h) => {
      h.run(sql`INSERT INTO t (x) VALUES (${1})`);
      visibleInside = db.db.inTransaction ? 1 : 0;
    });
    assert.equal(visibleInside, 1, 'the job ran inside a transaction');
    assert.equal(db.db.inTransaction, false, 'and it was committed before the promise resolved');
  });

  it('rolls back a failing job alone', async () => {
    const { db, writer } = setup();
    const ok1 = writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${1})`));
    const bad = writer.enqueue((h) => {
      h.run(sql`INSERT INTO t (x) VALUES (${2})`);
      h.run(sql`INSERT INTO t (x) VALUES (${1})`); // primary key violation
    });
    const ok2 = writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${3})`));
    await ok1;
    await assert.rejects(bad, /UNIQUE|PRIMARY/);
    await ok2;
    assert.deepEqual(db.all<{ x: number }>(sql`SELECT x FROM t ORDER BY x`).map((r) => r.x), [1, 3]);
  });

  it('settles jobs only after an fsync that started after their commit, one fsync at a time', async () => {
    const sync = manualSync();
    const { db, writer } = setup(sync);
    let settled = 0;
    const first = writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${1})`)).then(() => settled++);
    await new Promise((r) => setImmediate(r));
    assert.equal(writer.commits, 1);
    assert.equal(db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM t`)?.n, 1, 'committed');
    assert.equal(settled, 0, 'but not acknowledged before the fsync');
    // Jobs queued while the fsync runs wait, and are then committed together in one transaction.
    const second = writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${2})`)).then(() => settled++);
    const third = writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${3})`)).then(() => settled++);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([writer.commits, sync.started], [1, 1], 'one fsync in flight, nothing committed meanwhile');
    sync.complete();
    await first;
    assert.equal(settled, 1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([writer.commits, sync.started], [2, 2], 'the queued jobs went into one commit, with the next fsync');
    assert.equal(settled, 1, 'and wait for it');
    sync.complete();
    await Promise.all([second, third]);
    assert.equal(settled, 3);
  });

  it('fails the jobs of a batch whose fsync fails', async () => {
    const sync = manualSync();
    const { writer } = setup(sync);
    const job = writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${1})`));
    await new Promise((r) => setImmediate(r));
    sync.fail();
    await assert.rejects(job, (err: { code?: string }) => err.code === 'SERVER_UNAVAILABLE');
  });

  it('drains, then refuses jobs once closed', async () => {
    const { writer } = setup();
    const pending = writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${1})`));
    await writer.close();
    await pending;
    await assert.rejects(writer.enqueue(() => 1), (err: { code?: string }) => err.code === 'SERVER_UNAVAILABLE');
  });
});
