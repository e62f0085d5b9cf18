/**
 * Coalesced reads: lookups by key made in the same event-loop tick run as one query (`WHERE k = ANY($1)`)
 * instead of one round trip each. Every send reads its destination's account and devices first; under
 * load hundreds of sends to a few dozen accounts are in flight, and one query per tick instead of one per
 * send keeps those reads from queueing for the pool (and saves PostgreSQL a statement per send).
 *
 * Freshness: the query runs after every call it answers was made, so a caller sees at least everything
 * committed before its call (a read after one's own write still sees the write). Each caller gets the rows
 * of its own key only; callers of one key in one tick get the same row objects (the stores map them to
 * fresh records).
 */
import type { PgHandle, SqlQuery } from './sql.js';

/** Most keys in one query; more in one tick run as several queries. */
const MAX_KEYS = 500;

interface Waiter<R> {
  readonly resolve: (rows: R[]) => void;
  readonly reject: (err: unknown) => void;
}

/** Batches lookups of rows by one text key (see the comment at the top). */
export class ReadBatcher<R> {
  readonly #db: PgHandle;
  readonly #query: (keys: readonly string[]) => SqlQuery;
  readonly #keyOf: (row: R) => string;
  #waiting = new Map<string, Waiter<R>[]>();
  #scheduled = false;

  /**
   * `query` selects the rows of all `keys` at once (in the order each key's rows should come back);
   * `keyOf` names the key a row belongs to.
   */
  constructor(db: PgHandle, query: (keys: readonly string[]) => SqlQuery, keyOf: (row: R) => string) {
    this.#db = db;
    this.#query = query;
    this.#keyOf = keyOf;
  }

  /** The rows of `key`, read together with the other keys asked for in this tick. */
  load(key: string): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      const waiters = this.#waiting.get(key);
      if (waiters === undefined) this.#waiting.set(key, [{ resolve, reject }]);
      else waiters.push({ resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // After this round of I/O callbacks: the sends that arrived on every socket meanwhile join in.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const waiting = this.#waiting;
    this.#waiting = new Map();
    const keys = [...waiting.keys()];
    for (let i = 0; i < keys.length; i += MAX_KEYS) {
      const chunk = keys.slice(i, i + MAX_KEYS);
      this.#db.all<R>(this.#query(chunk)).then(
        (rows) => {
          const byKey = new Map<string, R[]>();
          for (const row of rows) {
            const k = this.#keyOf(row);
            const list = byKey.get(k);
            if (list === undefined) byKey.set(k, [row]);
            else list.push(row);
          }
          for (const key of chunk) for (const w of waiting.get(key) ?? []) w.resolve(byKey.get(key) ?? []);
        },
        (err: unknown) => {
          for (const key of chunk) for (const w of waiting.get(key) ?? []) w.reject(err);
        },
      );
    }
  }
}
