// WAL checkpoints between commits: the writer holds commits while a checkpoint runs, a checkpoint of a
// quiet WAL copies all of it (so the WAL restarts and stays small under steady writes), and a crashed
// checkpoint worker never stalls the writer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AccountId, DeviceId, DeviceRef } from '../../../src/server/ids.ts';
import { Checkpointer } from '../../../src/server/storage/sqlite/checkpointer.ts';
import { GroupCommitWriter } from '../../../src/server/storage/sqlite/group-commit.ts';
import { openSqliteStorage } from '../../../src/server/storage/sqlite/index.ts';
import { sql, SqlHandle } from '../../../src/server/storage/sqlite/sql.ts';
import { NO_SYNC } from '../../../src/server/storage/sqlite/wal-sync.ts';

describe('WAL checkpoints', () => {
  it('hold commits while a checkpoint runs', async () => {
    const db = new SqlHandle(new Database(':memory:'));
    db.db.exec('CREATE TABLE t (x INTEGER)');
    let release: () => void = () => undefined;
    let runs = 0;
    const hook = { intervalMs: 0, run: () => new Promise<void>((resolve) => ((runs++, (release = resolve)))) };
    const writer = new GroupCommitWriter(db, NO_SYNC, hook);
    await writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${1})`));
    assert.equal(runs, 1, 'a checkpoint started after the first sync');
    const second = writer.enqueue((h) => h.run(sql`INSERT INTO t (x) VALUES (${2})`));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(writer.commits, 1, 'no commit while the checkpoint runs');
    release();
    await second;
    assert.equal(writer.commits, 2);
    release();
  });

  /** The WAL header's checkpoint sequence number: SQLite increments it each time it restarts the WAL. */
  function walRestarts(file: string): number {
    const fd = openSync(`${file}-wal`, 'r');
    const header = Buffer.alloc(16);
    readSync(fd, header, 0, 16, 0);
    closeSync(fd);
    return header.readUInt32BE(12);
  }

  it('let the WAL restart under steady writes, instead of growing', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-wal-test-'));
    const storage = openSqliteStorage(dir);
    try {
      const r = await storage.accounts.register({
        newAccountId: '00000000-0000-4000-8000-000000000001' as AccountId,
        number: '+15550100001' as never,
        identityKey: new Uint8Array(33),
        registrationId: 1,
        passwordHash: new Uint8Array(32),
        deviceName: new Uint8Array(),
        signedPreKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) },
        kyberLastResortKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) },
        now: 1,
      });
      const ref: DeviceRef = r.device.ref;
      const content = new Uint8Array(300).fill(7);
      const restartsBefore = walRestarts(storage.file);
      const started = Date.now();
      // 2 s of steady writes, never pausing longer than one commit and sync.
      for (let round = 0; Date.now() - started < 2000; round++) {
        const sends = Array.from({ length: 50 }, (_, i) =>
          storage.messages.insert(
            [{ ref, guid: new Uint8Array(16), type: 2, sourceAccountId: r.account.id, sourceDeviceId: 1 as DeviceId, destinationDeviceId: 1 as DeviceId, timestamp: 1, serverTimestamp: round * 50 + i, content }],
            { maxQueueDepth: 1_000_000, now: 1 },
          ),
        );
        await Promise.all(sends);
        await storage.messages.expire(round * 50, 0);
      }
      assert.ok(storage.checkpointer.runs >= 2, `checkpoints ran (${storage.checkpointer.runs})`);
      const restarts = walRestarts(storage.file) - restartsBefore;
      assert.ok(restarts >= 2, `the WAL restarted after checkpoints (${restarts} restarts)`);
    } finally {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never stall the writer when the checkpoint worker dies', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-wal-test-'));
    const storage = openSqliteStorage(dir);
    try {
      await storage.checkpointer.terminate();
      assert.deepEqual(await storage.checkpointer.now(), { ok: false, error: 'checkpointer stopped' });
      const c = new Checkpointer(storage.file);
      const result = await c.now();
      assert.equal(result.ok, true);
      await c.close();
      for (let i = 0; i < 3; i++) await storage.verification.expire(i);
    } finally {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
