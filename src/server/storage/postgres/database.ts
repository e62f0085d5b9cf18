/**
 * The PostgreSQL connection pool of one server node, and transactions on it.
 *
 * Durability: a transaction's promise resolves only after its COMMIT returned, and PostgreSQL returns a
 * COMMIT once the commit record is flushed to its WAL (with synchronous standbys: once they have it too)
 * under `synchronous_commit = on`, its default. A server configured with `off` would acknowledge commits
 * it can still lose, so the pool then sets `on` for its own sessions (see `openPostgresDatabase`).
 *
 * Errors: a connection that cannot be made or breaks mid-way is SERVER_UNAVAILABLE (`sql.ts`), never an
 * answer: a COMMIT whose reply is lost may or may not have happened, and nobody is told either.
 * Serialization failures and deadlocks (another node's transaction won) are retried a few times with a
 * short random pause; transactions are written to be re-runnable.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ServerError, ServerErrorCode } from '../../errors.js';
import { migratePostgres } from './migrate.js';
import { isConnectionError, PgCode, pgCode, PgHandle, storageError } from './sql.js';

/** Thrown inside a transaction to roll it back and still resolve with `value` (a refusal that stores nothing). */
export class Rollback<T> extends Error {
  readonly value: T;

  constructor(value: T) {
    super('rolled back on purpose');
    this.value = value;
  }
}

/** How often a transaction that lost a serialization conflict or a deadlock is tried in all. */
const MAX_ATTEMPTS = 6;

const INT8_OID = 20;

/**
 * BIGINT columns (times in ms, refs, seqs, counts) as numbers. Every such value stays far below 2^53; one
 * beyond it fails its query instead of being rounded.
 */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError('a BIGINT value is beyond the safe integer range');
  return n;
}

function getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID && format !== 'binary') return parseInt8;
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

const TYPES: pg.CustomTypesConfig = { getTypeParser: getTypeParser as pg.CustomTypesConfig['getTypeParser'] };

/** Options of {@link openPostgresDatabase}. */
export interface PostgresDatabaseOptions {
  /** Most connections of this node (default 10): one for the group-commit writer, the rest in {@link PostgresDatabase.pool}. */
  readonly poolSize?: number;
  /** Longest a statement of the pool may run before PostgreSQL cancels it (ms; default 30 s). */
  readonly statementTimeoutMs?: number;
  /** Longest a transaction of the pool may sit idle before PostgreSQL ends its session (ms; default 60 s). */
  readonly idleInTransactionTimeoutMs?: number;
}

/** Default {@link PostgresDatabaseOptions.statementTimeoutMs}: far above any statement of a healthy node. */
const STATEMENT_TIMEOUT_MS = 30_000;
/** Default {@link PostgresDatabaseOptions.idleInTransactionTimeoutMs}. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;
/** TCP keepalive probes start after this much silence on a connection (ms). */
const KEEPALIVE_DELAY_MS = 10_000;

/**
 * One node's pool: single statements (each its own transaction) through {@link read}, transactions
 * through {@link transaction}.
 */
export class PostgresDatabase {
  readonly pool: pg.Pool;
  /** Runs each statement on its own (autocommit) on some connection of the pool. */
  readonly read: PgHandle;
  #closed = false;
  /** Operations started and not settled yet; `close()` waits for them. */
  #inFlight = 0;
  #drained: Array<() => void> = [];

  /**
   * The connection of the group-commit writer (`group-commit.ts`), apart from {@link pool}: a batch never
   * waits in line behind the reads of the very sends it is about to store.
   */
  readonly #writerPool: pg.Pool;

  constructor(pool: pg.Pool, writerPool: pg.Pool = pool) {
    this.pool = pool;
    this.#writerPool = writerPool;
    this.read = new PgHandle({
      query: ((text: string, values: unknown[]) =>
        this.#track(async () => {
          // A single statement that lost a deadlock or serialization conflict was rolled back whole: run it again.
          for (let attempt = 1; ; attempt++) {
            try {
              return await pool.query(text, values);
            } catch (err) {
              const code = pgCode(err);
              if ((code !== PgCode.SerializationFailure && code !== PgCode.DeadlockDetected) || attempt >= MAX_ATTEMPTS) throw err;
              await sleep(Math.random() * 5 * 2 ** attempt);
            }
          }
        })) as pg.Pool['query'],
    });
  }

  /**
   * Runs `fn` in one transaction (READ COMMITTED; the stores take the row and advisory locks they need)
   * and resolves with its result once the COMMIT returned. A {@link Rollback} thrown by `fn` rolls back and
   * resolves with its value; any other throw rolls back and rejects. Retried on serialization failures
   * and deadlocks, so `fn` must have no effects outside the transaction.
   */
  transaction<T>(fn: (db: PgHandle) => Promise<T>): Promise<T> {
    return this.#track(() => this.#transaction(this.pool, fn));
  }

  /** {@link transaction} on the writer's own connection (for the group-commit writer only). */
  writerTransaction<T>(fn: (db: PgHandle) => Promise<T>): Promise<T> {
    return this.#track(() => this.#transaction(this.#writerPool, fn));
  }

  /** Runs `operation` unless the database is closed, counting it until it settles. */
  async #track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ServerError(ServerErrorCode.Unavailable, 'storage is closed');
    this.#inFlight++;
    try {
      return await operation();
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) for (const wake of this.#drained.splice(0)) wake();
    }
  }

  async #transaction<T>(pool: pg.Pool, fn: (db: PgHandle) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw storageError(err);
      }
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const value = await fn(new PgHandle(client));
        await client.query('COMMIT');
        return value;
      } catch (err) {
        if (isConnectionError(err) || (err instanceof ServerError && isConnectionError(err.cause))) {
          broken = err instanceof Error ? err : new Error('connection lost');
          throw storageError(err);
        }
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError instanceof Error ? rollbackError : new Error('rollback failed');
          if (!(err instanceof Rollback)) throw storageError(rollbackError);
        }
        if (err instanceof Rollback) return err.value as T;
        const code = pgCode(err);
        if ((code === PgCode.SerializationFailure || code === PgCode.DeadlockDetected) && attempt < MAX_ATTEMPTS) {
          await sleep(Math.random() * 5 * 2 ** attempt);
          continue;
        }
        throw storageError(err);
      } finally {
        // A client whose connection broke is destroyed instead of going back to the pool.
        client.release(broken);
      }
    }
  }

  /** Refuses new operations, waits for those under way, then closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Refuse new operations, let the ones under way finish (they may still be waiting for a connection),
    // then end the pool.
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
    await this.pool.end();
    if (this.#writerPool !== this.pool) await this.#writerPool.end();
  }
}

/**
 * Connects to `url`, migrates the schema (under an advisory lock, see `migrate.ts`) and returns the pool.
 * Rejects when the database cannot be reached or its schema is newer than this release.
 */
export async function openPostgresDatabase(url: string, options: PostgresDatabaseOptions = {}): Promise<PostgresDatabase> {
  // TCP keepalive: a connection whose peer vanished (a failover, a dropped NAT entry) errors out instead
  // of hanging a transaction for the kernel's two hours.
  const base: pg.ClientConfig = {
    connectionString: url,
    types: TYPES,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    connectionTimeoutMillis: 10_000,
    application_name: 'parley',
  };
  const setup = new pg.Client(base);
  await setup.connect();
  let synchronousCommit: string;
  try {
    await migratePostgres(setup);
    synchronousCommit = (await setup.query<{ value: string }>("SELECT current_setting('synchronous_commit') AS value")).rows[0]?.value ?? 'on';
  } finally {
    await setup.end();
  }
  const poolSize = options.poolSize ?? 10;
  const sessions: pg.PoolConfig = {
    ...base,
    idleTimeoutMillis: 30_000,
    // Server-side limits of the pool's sessions (not of the migration above, which may take long): a
    // statement stuck behind a lock, or a transaction whose node stalled between statements while holding
    // locks, is ended by PostgreSQL rather than blocking the other nodes' writes indefinitely. Its caller
    // gets an error; a session ended for idling is SERVER_UNAVAILABLE (`sql.ts`).
    statement_timeout: options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS,
    idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? IDLE_IN_TRANSACTION_TIMEOUT_MS,
    // See the comment at the top: acknowledged writes must be flushed.
    ...(synchronousCommit === 'off' ? { options: '-c synchronous_commit=on' } : {}),
  };
  // One connection of `poolSize` is the group-commit writer's own; the rest serve reads and the other
  // stores' transactions (at least one each, so a pool size of 1 opens 2).
  const pool = new pg.Pool({ ...sessions, max: Math.max(1, poolSize - 1) });
  const writerPool = new pg.Pool({ ...sessions, max: 1 });
  // An idle connection that breaks is dropped by the pool; without a listener its error would be thrown
  // out of the event loop. The next query opens a fresh connection (or reports SERVER_UNAVAILABLE).
  pool.on('error', () => undefined);
  writerPool.on('error', () => undefined);
  return new PostgresDatabase(pool, writerPool);
}
