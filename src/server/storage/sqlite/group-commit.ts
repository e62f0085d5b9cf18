/**
 * Group commit: writes queued during one event-loop tick run in one transaction, so that one fsync
 * (`synchronous = FULL`) covers the envelopes of many concurrent senders.
 *
 * Ordering and durability: a job's promise settles only after the COMMIT of its batch returned, and with
 * `synchronous = FULL` COMMIT returns after the WAL is fsync'd. Callers acknowledge a send only after the
 * promise resolved, so every acknowledged envelope is on disk. Jobs run in the order they were queued;
 * each runs in its own savepoint, so a job that throws rolls back alone and the others still commit.
 */
import { ServerError, ServerErrorCode } from '../../errors.js';
import type { SqlHandle } from './sql.js';

interface Pending {
  readonly job: (db: SqlHandle) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Most jobs in one transaction; the rest wait for the next tick so one batch cannot stall the loop. */
const MAX_BATCH = 4096;

/** Batches writes into one transaction per event-loop tick. */
export class GroupCommitWriter {
  readonly #db: SqlHandle;
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;
  #idle: Array<() => void> = [];
  /** Batches committed so far (for metrics and tests). */
  commits = 0;

  constructor(db: SqlHandle) {
    this.#db = db;
  }

  /** Queues `job` for the next commit; resolves with its result once the commit is durable. */
  enqueue<T>(job: (db: SqlHandle) => T): Promise<T> {
    if (this.#closed) return Promise.reject(new ServerError(ServerErrorCode.Unavailable, 'storage is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ job, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending.length <= MAX_BATCH ? this.#pending : this.#pending.slice(0, MAX_BATCH);
    this.#pending = this.#pending.length <= MAX_BATCH ? [] : this.#pending.slice(MAX_BATCH);
    if (this.#pending.length > 0) this.#schedule();
    if (batch.length > 0) this.#commit(batch);
    if (this.#pending.length === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const wake of idle) wake();
    }
  }

  #commit(batch: readonly Pending[]): void {
    const outcomes: Outcome[] = [];
    try {
      this.#db.transaction(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: this.#db.transaction(() => item.job(this.#db)) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      // The COMMIT itself failed (disk full, I/O error): nothing of this batch is stored.
      for (const item of batch) item.reject(new ServerError(ServerErrorCode.Unavailable, 'storage write failed', { cause: error, retryAfterMs: 1000 }));
      return;
    }
    this.commits++;
    batch.forEach((item, i) => {
      const outcome = outcomes[i] as Outcome;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }

  /** Resolves once every job queued so far has been committed. */
  drain(): Promise<void> {
    if (this.#pending.length === 0 && !this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Commits what is queued, then refuses new jobs. */
  async close(): Promise<void> {
    await this.drain();
    this.#closed = true;
  }
}
