/**
 * Opens the SQLite database of a data folder: one writable connection and one read-only connection
 * (kept apart so that reads cannot write by mistake). WAL mode lets reads proceed during writes.
 *
 * Durability: the writer runs with `synchronous = NORMAL`, which on its own is NOT enough (in WAL mode it
 * syncs only at checkpoints, so a power loss could drop committed transactions). It is made enough by
 * explicit group commit (`group-commit.ts` with `wal-sync.ts`): the writes of one event-loop tick are one
 * transaction, and their callers are answered only after an fsync of the WAL that started after that
 * commit has completed. The fsync runs in the thread pool, one at a time, covering every commit made
 * before it. Checkpoints (`checkpointer.ts`) run with `synchronous = FULL` in a worker thread, between
 * commits.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Checkpointer } from './checkpointer.js';
import { migrate } from './migrate.js';
import { SqlHandle } from './sql.js';

/** The two connections of an open database. */
export interface SqliteConnections {
  readonly writer: SqlHandle;
  readonly reader: SqlHandle;
  readonly file: string;
  readonly checkpointer: Checkpointer;
  close(): Promise<void>;
}

/** The database file inside a data folder. */
export function databaseFile(dataDir: string): string {
  return path.join(dataDir, 'parley.sqlite');
}

/** Opens (creating and migrating when needed) the database in `dataDir`. */
export function openDatabase(dataDir: string): SqliteConnections {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = databaseFile(dataDir);
  const writerDb = new Database(file);
  writerDb.pragma('journal_mode = WAL');
  // Durable only together with WalSync: see the comment at the top.
  writerDb.pragma('synchronous = NORMAL');
  writerDb.pragma('foreign_keys = ON');
  writerDb.pragma('busy_timeout = 5000');
  // Truncate the WAL back to 64 MiB after checkpoints, so a burst does not leave a huge file behind.
  writerDb.pragma('journal_size_limit = 67108864');
  // Checkpoints run in a worker thread (checkpointer.ts); this one, at 64 MiB of WAL instead of 4, is
  // only a safety net in case the worker falls behind.
  writerDb.pragma('wal_autocheckpoint = 16384');
  const writer = new SqlHandle(writerDb);
  migrate(writer);
  const readerDb = new Database(file, { readonly: true, fileMustExist: true });
  readerDb.pragma('busy_timeout = 5000');
  readerDb.pragma('query_only = ON');
  const reader = new SqlHandle(readerDb);
  const checkpointer = new Checkpointer(file);
  return {
    writer,
    reader,
    file,
    checkpointer,
    async close(): Promise<void> {
      await checkpointer.close();
      readerDb.close();
      writerDb.close();
    },
  };
}
