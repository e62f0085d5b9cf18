/**
 * Opens the SQLite database of a data folder: one writable connection and one read-only connection
 * (kept apart so that reads cannot write by mistake). WAL mode lets reads proceed during writes.
 *
 * Durability: `synchronous = FULL` makes every commit fsync the WAL before it returns. The message store
 * batches the inserts of concurrent senders into one transaction per event-loop tick (group commit,
 * `group-commit.ts`), so the fsync is paid once per batch and a sender is acknowledged only after the
 * commit that holds its envelope returned, that is after the fsync. (`synchronous = NORMAL` would not be
 * enough: in WAL mode it syncs only at checkpoints, so a power loss could drop acknowledged envelopes.)
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from './migrate.js';
import { SqlHandle } from './sql.js';

/** The two connections of an open database. */
export interface SqliteConnections {
  readonly writer: SqlHandle;
  readonly reader: SqlHandle;
  readonly file: string;
  close(): void;
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
  writerDb.pragma('synchronous = FULL');
  writerDb.pragma('foreign_keys = ON');
  writerDb.pragma('busy_timeout = 5000');
  // Truncate the WAL back to 64 MiB after checkpoints, so a burst does not leave a huge file behind.
  writerDb.pragma('journal_size_limit = 67108864');
  const writer = new SqlHandle(writerDb);
  migrate(writer);
  const readerDb = new Database(file, { readonly: true, fileMustExist: true });
  readerDb.pragma('busy_timeout = 5000');
  readerDb.pragma('query_only = ON');
  const reader = new SqlHandle(readerDb);
  return {
    writer,
    reader,
    file,
    close(): void {
      readerDb.close();
      writerDb.close();
    },
  };
}
