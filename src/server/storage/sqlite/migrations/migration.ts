import type BetterSqlite3 from 'better-sqlite3';

/**
 * One schema migration. `up` runs DDL only (fixed text, no values), inside a transaction that also
 * records the version; it never edits a previous migration's file.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: BetterSqlite3.Database): void;
}
