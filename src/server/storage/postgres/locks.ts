/**
 * Transaction-level advisory locks of this backend, in PostgreSQL's two-key form `(class, hashtext(id))`
 * (a keyspace apart from the single-key migration lock). They serialize what has no row to lock yet: a
 * group that two nodes create at once, or the quota of an account whose next blob is not stored yet. Two
 * ids whose hashes collide only wait for each other.
 */
import { sql, type PgHandle } from './sql.js';

/** The lock classes. */
export const LockClass = {
  /** A group's state: `apply` takes it exclusive, `send` shared. */
  Group: 1,
  /** An account's blob quota: checks and the inserts they allow. */
  BlobQuota: 2,
  /** An account's backup metadata: replacing or deleting it. */
  Backup: 3,
} as const;

/** Takes the exclusive lock of `id` in `lockClass` until the transaction ends. */
export async function lockExclusive(db: PgHandle, lockClass: number, id: string): Promise<void> {
  await db.run(sql`SELECT pg_advisory_xact_lock(${lockClass}::integer, hashtext(${id}))`);
}

/** Takes the shared lock of `id` in `lockClass` until the transaction ends. */
export async function lockShared(db: PgHandle, lockClass: number, id: string): Promise<void> {
  await db.run(sql`SELECT pg_advisory_xact_lock_shared(${lockClass}::integer, hashtext(${id}))`);
}
