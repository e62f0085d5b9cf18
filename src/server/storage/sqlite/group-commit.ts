/**
 * Group commit: writes are batched into one transaction, and one fsync of the WAL makes the batch
 * durable.
 *
 * Ordering and durability: the connection commits with `synchronous = NORMAL` (the frames are written
 * to the WAL, not yet synced), then the batch waits for an fsync of the WAL that starts after its commit
 * (`wal-sync.ts`, in the thread pool, so the event loop never blocks on the disk). Only then do its jobs'
 * promises settle; callers acknowledge a send only after that, so every acknowledged envelope is on disk.
 *
 * Pipelining: one fsync is in flight at a time. While it runs, new jobs only queue up; when it completes,
 * everything queued meanwhile is committed as one transaction and the next fsync starts. Batches thus
 * grow with load by themselves, and few large transactions write far fewer WAL pages than many small
 * ones. Jobs run in the order they were queued; each runs in its own savepoint, so a job that throws
 * rolls back alone and the others still commit.
 *
 * Checkpoints: at most every `checkpointIntervalMs`, after a sync (and after answering its batch), the
 * writer holds its next commit until a passive checkpoint in the worker thread has finished, so the
 * checkpoint sees a quiet WAL, copies all of it, and the next commit restarts the WAL (`checkpointer.ts`).
 */
import { ServerError, ServerErrorCode } from '../../errors.js';
import type { SqlHandle } from './sql.js';
import type { Durability } from './wal-sync.js';

/** Runs a WAL checkpoint; the writer calls it between commits. */
export interface CheckpointHook {
  run(): Promise<unknown>;
  readonly intervalMs: number;
}

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
  readonly #durability: Durability;
  readonly #checkpoint: CheckpointHook | undefined;
  #lastCheckpoint = performance.now();
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;
  #idle: Array<() => void> = [];
  #syncing = false;
  /** Batches committed so far (for metrics and tests). */
  commits = 0;
  /** fsyncs completed so far. */
  syncs = 0;
  /** Jobs committed so far, and the total and longest fsync time in ms (for metrics and benchmarks). */
  jobs = 0;
  syncMsTotal = 0;
  syncMsMax = 0;

  constructor(db: SqlHandle, durability: Durability, checkpoint?: CheckpointHook) {
    this.#db = db;
    this.#durability = durability;
    this.#checkpoint = checkpoint;
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
    // While an fsync runs, jobs wait: its completion commits them all at once.
    if (this.#scheduled || this.#syncing) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#syncing) return;
    const batch = this.#pending.length <= MAX_BATCH ? this.#pending : this.#pending.slice(0, MAX_BATCH);
    this.#pending = this.#pending.length <= MAX_BATCH ? [] : this.#pending.slice(MAX_BATCH);
    if (batch.length === 0) {
      this.#wakeIfIdle();
      return;
    }
    const outcomes = this.#commit(batch);
    if (outcomes === undefined) {
      this.#schedule();
      this.#wakeIfIdle();
      return;
    }
    this.#sync(batch, outcomes);
  }

  #wakeIfIdle(): void {
    if (this.#pending.length > 0 || this.#scheduled || this.#syncing) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const wake of idle) wake();
  }

  /** Runs the batch in one transaction; undefined (and every job rejected) when the COMMIT failed. */
  #commit(batch: readonly Pending[]): Outcome[] | undefined {
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
      return undefined;
    }
    this.commits++;
    this.jobs += batch.length;
    return outcomes;
  }

  /** fsyncs the WAL, then settles the batch; then commits whatever queued up meanwhile. */
  #sync(batch: readonly Pending[], outcomes: readonly Outcome[]): void {
    this.#syncing = true;
    const started = performance.now();
    this.#durability.sync().then(
      () => {
        const ms = performance.now() - started;
        this.syncs++;
        this.syncMsTotal += ms;
        if (ms > this.syncMsMax) this.syncMsMax = ms;
        batch.forEach((item, i) => {
          const outcome = outcomes[i] as Outcome;
          if (outcome.ok) item.resolve(outcome.value);
          else item.reject(outcome.error);
        });
        this.#afterSync();
      },
      (cause: unknown) => {
        // Committed but not known to be durable: nobody may be told it succeeded.
        for (const item of batch) item.reject(new ServerError(ServerErrorCode.Unavailable, 'storage sync failed', { cause, retryAfterMs: 1000 }));
        this.#afterSync();
      },
    );
  }

  #afterSync(): void {
    const checkpoint = this.#checkpoint;
    if (checkpoint !== undefined && performance.now() - this.#lastCheckpoint >= checkpoint.intervalMs) {
      // Still "syncing": nothing commits until the checkpoint is done (see the comment at the top).
      this.#lastCheckpoint = performance.now();
      checkpoint.run().then(
        () => this.#resume(),
        () => this.#resume(),
      );
      return;
    }
    this.#resume();
  }

  #resume(): void {
    this.#syncing = false;
    if (this.#pending.length > 0) this.#flush();
    else this.#wakeIfIdle();
  }

  /** Resolves once every job queued so far has been committed and synced. */
  drain(): Promise<void> {
    return new Promise((resolve) => {
      this.#idle.push(resolve);
      this.#wakeIfIdle();
    });
  }

  /** Commits what is queued, then refuses new jobs. */
  async close(): Promise<void> {
    await this.drain();
    this.#closed = true;
  }
}
