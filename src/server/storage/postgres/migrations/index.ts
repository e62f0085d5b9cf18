import { migration001 } from './001-initial.js';
import { migration002 } from './002-backups.js';
import { migration003 } from './003-push.js';
import type { PostgresMigration } from './migration.js';

/** Every PostgreSQL migration, in order. Append new ones; never edit or reorder applied ones. */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [migration001, migration002, migration003];
