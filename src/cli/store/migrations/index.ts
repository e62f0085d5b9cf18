/**
 * Schema migrations of the profile database, one per file, applied in order inside one transaction each and
 * recorded in `schema_migrations`. A database that has a migration this release does not know was written by
 * a newer release: it is refused rather than guessed at.
 */
import { ClientError, ClientErrorCode } from '../../../client/errors.js';
import { sql, type Queries } from '../sql.js';
import { migration001 } from './001-initial.js';
import { migration002 } from './002-groups.js';
import { migration003 } from './003-devices.js';
import { migration004 } from './004-media.js';
import { migration005 } from './005-calls.js';
import { migration006 } from './006-unread.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** Schema statements (no parameters). */
  readonly up: string;
}

/** Every migration, oldest first. */
export const MIGRATIONS: readonly Migration[] = [migration001, migration002, migration003, migration004, migration005, migration006];

/** The schema version this release writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The versions applied so far. */
export function appliedVersions(q: Queries): number[] {
  q.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  return q.all<{ version: number }>(sql`SELECT version FROM schema_migrations ORDER BY version`).map((r) => r.version);
}

/** Brings the schema up to {@link SCHEMA_VERSION} (or to `target`); returns the versions applied now. */
export function migrate(q: Queries, now: number, migrations: readonly Migration[] = MIGRATIONS, target = migrations.length): number[] {
  const applied = new Set(appliedVersions(q));
  const newest = Math.max(0, ...applied);
  if (newest > migrations.length) {
    throw new ClientError(ClientErrorCode.StoreCorrupt, `the profile database has schema version ${newest}; this release knows ${migrations.length}: upgrade Parley`);
  }
  const done: number[] = [];
  for (const m of migrations) {
    if (m.version > target || applied.has(m.version)) continue;
    q.exec('BEGIN IMMEDIATE');
    try {
      q.exec(m.up);
      q.run(sql`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${m.version}, ${m.name}, ${now})`);
      q.exec('COMMIT');
    } catch (err) {
      q.exec('ROLLBACK');
      throw err;
    }
    done.push(m.version);
  }
  return done;
}
