/**
 * The PostgreSQL backend: every store on one database that several server nodes share. Open it with
 * {@link openPostgresStorage}; the schema is migrated at open (one node at a time, see `migrate.ts`).
 *
 * Nothing here caches rows in memory: another node may change them at any time. Each method is one
 * statement or one transaction, committed (and so durable) before its promise resolves; the locking that
 * makes concurrent nodes safe is described on each store and in docs/server.md.
 */
import type pg from 'pg';
import type { Storage } from '../stores.js';
import { PostgresBackupStore } from './backup-store.js';
import { PostgresAccountStore } from './account-store.js';
import { PostgresBlobIndex } from './blob-index.js';
import { openPostgresDatabase, type PostgresDatabaseOptions } from './database.js';
import { PostgresDeviceStore } from './device-store.js';
import { PostgresGroupStore } from './group-store.js';
import { PostgresKeyStore } from './key-store.js';
import { PostgresGroupCommit } from './group-commit.js';
import { messageBatch, type MessageJob, type MessageJobResult } from './message-batch.js';
import { PostgresMessageStore } from './message-store.js';
import { PostgresPresenceStore } from './presence-store.js';
import { PostgresProvisioningStore } from './provisioning-store.js';
import { PostgresPushStore } from './push-store.js';
import { PostgresVerificationStore } from './verification-store.js';

/**
 * The PostgreSQL {@link Storage}, plus its connection pool (for metrics and tests) and the backup metadata
 * store (kept apart from `Storage` until every backend has one, as `storage/backup-store.ts` says).
 */
export interface PostgresStorage extends Storage {
  readonly pool: pg.Pool;
  readonly backups: PostgresBackupStore;
  /** The group-commit writer of sends and acks (its counters are for metrics and tests). */
  readonly messageWriter: PostgresGroupCommit<MessageJob, MessageJobResult>;
}

/**
 * Connects to the database at `url` (`postgres://user@host:port/db`), migrates its schema and returns the
 * stores. `poolSize` is the most connections this node opens (default 10). Sends and acks of this node go
 * through one group-commit writer (`group-commit.ts`). `close()` commits the writes queued in the writer,
 * waits for the connections in use, then ends the pool.
 */
export async function openPostgresStorage(url: string, options: PostgresDatabaseOptions = {}): Promise<PostgresStorage> {
  const db = await openPostgresDatabase(url, options);
  const writer = new PostgresGroupCommit(db, messageBatch);
  return {
    pool: db.pool,
    messageWriter: writer,
    accounts: new PostgresAccountStore(db),
    keys: new PostgresKeyStore(db),
    messages: new PostgresMessageStore(db, writer),
    verification: new PostgresVerificationStore(db),
    presence: new PostgresPresenceStore(db),
    groups: new PostgresGroupStore(db),
    devices: new PostgresDeviceStore(db),
    provisioning: new PostgresProvisioningStore(db),
    blobs: new PostgresBlobIndex(db),
    backups: new PostgresBackupStore(db),
    push: new PostgresPushStore(db),
    async close() {
      // Queued writes first (their callers are waiting for the commit), then the pool.
      await writer.close();
      await db.close();
    },
  };
}
