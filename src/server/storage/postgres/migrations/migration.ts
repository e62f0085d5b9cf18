/**
 * One PostgreSQL schema migration: fixed DDL text (no values; several statements allowed), run in a
 * transaction that also records its version in `schema_migrations`. Applied migrations are never edited:
 * a change is a new file.
 */
export interface PostgresMigration {
  readonly version: number;
  readonly name: string;
  readonly up: string;
}
