/**
 * Schema migrations: one file per migration in `migrations/`, applied in order, each in its own
 * transaction together with its row in `schema_migrations` (the version table). A database whose
 * version is newer than this release knows is refused rather than misread.
 */
import { MIGRATIONS } from './migrations/index.js';
import type { Migration } from './migrations/migration.js';
import { sql, type SqlHandle } from './sql.js';

/** The schema version this release writes. */
export function latestVersion(migrations: readonly Migration[] = MIGRATIONS): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/** The version of the schema in `db` (0 for an empty database). */
export function currentVersion(db: SqlHandle): number {
  db.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
  return db.get<{ v: number | null }>(sql`SELECT MAX(version) AS v FROM schema_migrations`)?.v ?? 0;
}

/**
 * Applies the migrations newer than the database, up to `target` (default: all). Returns the versions
 * applied. Throws when the database is newer than the known migrations.
 */
export function migrate(db: SqlHandle, migrations: readonly Migration[] = MIGRATIONS, target = latestVersion(migrations)): number[] {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 1..n without gaps; found ${m.version} at position ${i + 1}`);
  });
  const current = currentVersion(db);
  if (current > latestVersion(sorted)) {
    throw new Error(`database schema version ${current} is newer than this server (${latestVersion(sorted)}); upgrade the server`);
  }
  const applied: number[] = [];
  for (const migration of sorted) {
    if (migration.version <= current || migration.version > target) continue;
    db.transaction(() => {
      migration.up(db.db);
      db.run(sql`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${migration.version}, ${migration.name}, ${Date.now()})`);
    });
    applied.push(migration.version);
  }
  return applied;
}
