/**
 * WAL checkpoints off the event loop. A checkpoint copies the WAL back into the database file and
 * fsyncs it; run by the writer (SQLite's auto-checkpoint) it would happen inside a commit and stall every
 * request for its duration. Instead a worker thread with its own connection runs PASSIVE checkpoints
 * when the group-commit writer asks (`now()`), at a moment when it holds its next commit back: the
 * checkpoint then finds no new frames, copies the whole WAL, and the next commit starts the WAL over,
 * so it stays small. (Checkpoints in the background on a timer never catch the WAL quiet under steady
 * load, and it grows without bound.) The writer keeps a large auto-checkpoint as a safety net.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The worker's code: plain JavaScript, so that it needs no loader for TypeScript. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
db.pragma('synchronous = FULL');
db.pragma('journal_size_limit = 67108864');
const checkpoint = () => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    return { ok: true, log: result.log, checkpointed: result.checkpointed };
  } catch (err) {
    return { ok: false, error: String(err && err.message) };
  }
};
parentPort.on('message', (message) => {
  if (message === 'now') parentPort.postMessage(checkpoint());
  if (message === 'close') {
    db.close();
    parentPort.close();
  }
});
`;

/** Result of one checkpoint: WAL frames in the log and how many of them are in the database file. */
export type CheckpointResult = { ok: true; log: number; checkpointed: number } | { ok: false; error: string };

/** Longest wait for one checkpoint; the writer resumes committing after it either way. */
const CHECKPOINT_TIMEOUT_MS = 10_000;

/**
 * Runs passive checkpoints of `file` in a worker thread. Never leaves a caller waiting: if the worker
 * exits or fails, pending and later checkpoints resolve at once with `ok: false` (the writer's large
 * auto-checkpoint then keeps the WAL bounded), and a checkpoint that takes too long resolves with
 * `ok: false` after a timeout.
 */
export class Checkpointer {
  readonly #worker: Worker;
  readonly #waiting: Array<(result: CheckpointResult) => void> = [];
  #dead: string | undefined;
  #closed: Promise<void> | undefined;
  /** Checkpoints completed (for tests and benchmarks). */
  runs = 0;

  constructor(file: string) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driver } });
    this.#worker.unref();
    this.#worker.on('message', (result: CheckpointResult) => {
      this.runs++;
      this.#waiting.shift()?.(result);
    });
    this.#worker.on('error', (err) => this.#fail(`checkpointer failed: ${err.message}`));
    this.#worker.on('exit', () => this.#fail('checkpointer stopped'));
  }

  #fail(reason: string): void {
    this.#dead ??= reason;
    for (const resolve of this.#waiting.splice(0)) resolve({ ok: false, error: reason });
  }

  /** Runs a passive checkpoint in the worker; resolves when it is done (never rejects). */
  now(): Promise<CheckpointResult> {
    if (this.#dead !== undefined) return Promise.resolve({ ok: false, error: this.#dead });
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: CheckpointResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const timer = setTimeout(() => settle({ ok: false, error: 'checkpoint timed out' }), CHECKPOINT_TIMEOUT_MS);
      timer.unref();
      this.#waiting.push(settle);
      this.#worker.postMessage('now');
    });
  }

  /** Stops the worker and closes its connection. */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      if (this.#dead !== undefined) return resolve();
      // Keep the process alive until the worker has closed its connection (it is unref'd otherwise).
      this.#worker.ref();
      this.#worker.once('exit', () => resolve());
      this.#worker.postMessage('close');
    });
    return this.#closed;
  }

  /** Stops the worker abruptly (tests: a crashed checkpointer must not stall the writer). */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}
