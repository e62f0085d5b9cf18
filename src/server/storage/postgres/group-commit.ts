/**
 * Group commit for PostgreSQL: the writes of one node that arrive while its previous batch is committing
 * are run together, set-based, in one transaction, and one COMMIT (one WAL flush) makes all of them durable.
 *
 * Why: a transaction per send pays its own WAL flush, several round trips and a lock on the destination's
 * `device_queues` row held until that flush is done; concurrent sends to one device then queue up behind
 * each other's fsyncs. In a batch, the node takes each counter row once, for every send of the batch.
 *
 * Durability: a job's promise settles only after the COMMIT of its batch returned (`database.ts`: with
 * `synchronous_commit = on` that means the commit record is flushed), so callers still acknowledge only
 * what is durable. A batch that fails on a connection error settles every job with SERVER_UNAVAILABLE
 * (the outcome is unknown; nobody is told it succeeded).
 *
 * Connection: batches run on a connection of their own (`PostgresDatabase.writerTransaction`), so under
 * load a batch does not wait in the pool's queue behind the reads of the sends it is about to store.
 *
 * Order: one batch is in flight at a time, and batches take jobs in the order they were queued; the
 * executor handles a batch's jobs in that order too. So a node's writes to one queue commit (and get
 * their `seq`s) in the order they were made, and their promises settle in that order.
 *
 * Isolation of jobs: the executor validates every job against the rows it locked (a missing device, a
 * full queue, a seen idempotency key are answers, not errors). Should a batch still fail on an error of
 * the database (a value it refuses), its transaction rolled back whole and every job is run again alone,
 * each in its own transaction: only the job that fails alone is rejected.
 */
import { ServerError, ServerErrorCode } from '../../errors.js';
import type { PostgresDatabase } from './database.js';
import { isConnectionError, type PgHandle } from './sql.js';

/** Runs the jobs of one batch inside its transaction. */
export interface BatchExecutor<J, R> {
  /**
   * Runs `jobs` (in order) in the open transaction `db` and returns one result per job, in the same order.
   * May be called again with the same jobs (after a deadlock or a serialization failure), so it must have
   * no effects outside the transaction.
   */
  run(db: PgHandle, jobs: readonly J[]): Promise<R[]>;
}

interface Pending<J, R> {
  readonly job: J;
  readonly resolve: (value: R) => void;
  readonly reject: (err: unknown) => void;
}

/** Most jobs in one transaction; the rest wait for the next batch, so one batch stays short. */
const MAX_BATCH = 1024;

/** Batches the writes of one node into one transaction per batch (see the comment at the top). */
export class PostgresGroupCommit<J, R> {
  readonly #db: PostgresDatabase;
  readonly #executor: BatchExecutor<J, R>;
  #pending: Pending<J, R>[] = [];
  #running = false;
  #closed = false;
  #idle: Array<() => void> = [];
  /** Batches committed so far (for metrics and tests). */
  commits = 0;
  /** Jobs settled by committed batches so far. */
  jobs = 0;
  /** Batches that failed and were run again job by job. */
  splits = 0;

  constructor(db: PostgresDatabase, executor: BatchExecutor<J, R>) {
    this.#db = db;
    this.#executor = executor;
  }

  /** Queues `job` for the next batch; resolves with its result once the batch has committed. */
  enqueue(job: J): Promise<R> {
    if (this.#closed) return Promise.reject(new ServerError(ServerErrorCode.Unavailable, 'storage is closed'));
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ job, resolve, reject });
      if (!this.#running) {
        this.#running = true;
        // The rest of this tick's jobs join the batch.
        setImmediate(() => void this.#loop());
      }
    });
  }

  /** Commits batches until nothing is queued. Never rejects: every outcome goes to its job. */
  async #loop(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.length <= MAX_BATCH ? this.#pending : this.#pending.slice(0, MAX_BATCH);
      this.#pending = this.#pending.length <= MAX_BATCH ? [] : this.#pending.slice(MAX_BATCH);
      await this.#commit(batch);
    }
    this.#running = false;
    for (const wake of this.#idle.splice(0)) wake();
  }

  async #commit(batch: readonly Pending<J, R>[]): Promise<void> {
    let results: R[];
    try {
      results = await this.#db.writerTransaction((db) => this.#executor.run(db, batch.map((p) => p.job)));
    } catch (err) {
      if (batch.length === 1 || isUnavailable(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      // A value the database refused (or a bug): find the job alone, let the others through.
      this.splits++;
      for (const p of batch) {
        try {
          const [result] = await this.#db.writerTransaction((db) => this.#executor.run(db, [p.job]));
          p.resolve(result as R);
        } catch (error) {
          p.reject(error);
        }
      }
      return;
    }
    this.commits++;
    this.jobs += batch.length;
    batch.forEach((p, i) => p.resolve(results[i] as R));
  }

  /** Resolves once every job queued so far has been committed (or failed). */
  drain(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Commits what is queued, then refuses new jobs. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.drain();
  }
}

/** True for an error that says the database is unreachable (or closed): running jobs alone would not help. */
function isUnavailable(err: unknown): boolean {
  return (err instanceof ServerError && err.is(ServerErrorCode.Unavailable)) || isConnectionError(err);
}
