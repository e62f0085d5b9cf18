// The push store contract (push-store-contract.ts) on SQLite, in a fresh data folder deleted afterwards
// (migration 14 itself is tested in migrations.test.ts). SQLite is owned by one process, so the "second node" is the same Storage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStorage, type SqliteStorage } from '../../../src/server/storage/sqlite/index.ts';
import { pushStoreContract } from './push-store-contract.ts';

pushStoreContract('sqlite', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-push-store-'));
  let storage: SqliteStorage = openSqliteStorage(dir);
  return {
    get storage() {
      return storage;
    },
    async reopen() {
      await storage.close();
      storage = openSqliteStorage(dir);
      return storage;
    },
    async peer() {
      return storage;
    },
    async cleanup() {
      await storage.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
