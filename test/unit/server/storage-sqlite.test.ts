// The storage contract (storage-contract.ts) and the push store contract (push-store-contract.ts) on SQLite:
// a fresh data folder each, deleted afterwards. SQLite is owned by one process, so the "second node" of the
// concurrency cases is the same Storage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteBackupStore } from '../../../src/server/storage/sqlite/backup-store.ts';
import { openSqliteStorage, type SqliteStorage } from '../../../src/server/storage/sqlite/index.ts';
import { pushStoreContract } from './push-store-contract.ts';
import { storageContract, type StorageHarness } from './storage-contract.ts';

async function sqliteHarness(): Promise<StorageHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-store-test-'));
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
    backups() {
      return new SqliteBackupStore(storage.writer);
    },
    async payloads() {
      const db = new Database(path.join(dir, 'parley.sqlite'), { readonly: true, fileMustExist: true });
      try {
        return (db.prepare('SELECT COUNT(*) AS n FROM payloads').get() as { n: number }).n;
      } finally {
        db.close();
      }
    },
    async cleanup() {
      await storage.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

storageContract('sqlite', sqliteHarness);
pushStoreContract('sqlite', sqliteHarness);
