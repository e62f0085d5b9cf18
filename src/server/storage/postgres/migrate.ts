/**
 * PostgreSQL schema migrations: `migrations/` in order, each in its own transaction together with its row
 * in `schema_migrations` (the version table). Several nodes may start at once: the whole check-and-apply
 * runs under a session-level advisory lock, so one node migrates while the others wait and then find
 * nothing left to do. A database whose version is newer than this release knows is refused rather than
 * misread.
 */
import type pg from 'pg';
import { POSTGRES_MIGRATIONS } from './migrations/index.js';
import type { PostgresMigration } from './migrations/migration.js';

/** The advisory lock key of migrations ('parley' in ASCII); other locks of this backend use the two-key form. */
export const MIGRATION_LOCK_KEY = 0x7061726c6579;

/** The schema version this release writes. */
export function latestPostgresVersion(migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/**
 * Applies the migrations newer than the database, up to `target` (default: all), on one connection.
 * Returns the versions applied. Throws when the database is newer than the known migrations.
 */
export async function migratePostgres(
  client: pg.ClientBase,
  migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS,
  target = latestPostgresVersion(migrations),
): Promise<number[]> {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 1..n without gaps; found ${m.version} at position ${i + 1}`);
  });
  await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const { rows } = await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    const current = rows[0]?.v ?? 0;
    if (current > latestPostgresVersion(sorted)) {
      throw new Error(`database schema version ${current} is newer than this server (${latestPostgresVersion(sorted)}); upgrade the server`);
    }
    const applied: number[] = [];
    for (const migration of sorted) {
      if (migration.version <= current || migration.version > target) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.up);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      applied.push(migration.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
  }
}
