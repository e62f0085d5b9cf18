/**
 * Makes committed WAL frames durable without blocking the event loop: `fdatasync` of the WAL file runs in
 * libuv's thread pool (as SQLite itself syncs on Linux; the file size, which reading the data needs, is
 * included). Linux flushes a file's dirty pages through any descriptor of it, and SQLite writes every
 * frame of a transaction to the WAL (with write(2)) before COMMIT returns, so once a sync that started
 * after a commit has completed, that commit survives a power loss. Crash recovery rebuilds the WAL index
 * from the WAL file itself, so the shared-memory file needs no sync.
 *
 * The WAL file keeps its inode while the database is open: SQLite restarts and truncates it in place and
 * deletes it only when the last connection closes. Each sync still stats the path, in parallel with the
 * sync (one thread-pool round trip, not three), and should the path ever name another file, that file is
 * opened and synced before the sync counts as done.
 */
import { close, fdatasync, fstat, open, stat } from 'node:fs';
import { promisify } from 'node:util';

const openAsync = promisify(open);
const syncAsync = promisify(fdatasync);
const fstatAsync = promisify(fstat);
const statAsync = promisify(stat);
const closeAsync = promisify(close);

/** Something that makes everything committed so far durable. */
export interface Durability {
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** No-op durability for in-memory databases (tests of the writer itself). */
export const NO_SYNC: Durability = { sync: async () => undefined, close: async () => undefined };

interface OpenWal {
  readonly fd: number;
  readonly ino: number;
  readonly dev: number;
}

/** fdatasync of `<database>-wal` in the thread pool. */
export class WalSync implements Durability {
  readonly #path: string;
  #wal: OpenWal | undefined;
  /** Completed syncs (for tests and metrics). */
  syncs = 0;
  /** Times the path named a different file than the open descriptor (expected: never). */
  reopened = 0;

  constructor(databaseFile: string) {
    this.#path = `${databaseFile}-wal`;
  }

  async #open(): Promise<OpenWal> {
    const fd = await openAsync(this.#path, 'r+');
    const { ino, dev } = await fstatAsync(fd);
    return { fd, ino, dev };
  }

  async sync(): Promise<void> {
    this.#wal ??= await this.#open();
    const wal = this.#wal;
    const [, named] = await Promise.all([syncAsync(wal.fd), statAsync(this.#path)]);
    if (named.ino !== wal.ino || named.dev !== wal.dev) {
      this.reopened++;
      this.#wal = await this.#open();
      await closeAsync(wal.fd);
      await syncAsync(this.#wal.fd);
    }
    this.syncs++;
  }

  async close(): Promise<void> {
    if (this.#wal !== undefined) await closeAsync(this.#wal.fd);
    this.#wal = undefined;
  }
}
