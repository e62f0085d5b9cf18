/**
 * SQL only through parameter binding: queries are written with the {@link sql} tagged template, which
 * turns every interpolation into a `?` placeholder and a bound value (as Signal-Desktop's `sql` tag).
 * There is no way to splice a string into the text. {@link SqlHandle} runs such queries with a cache of
 * prepared statements; the text of a call site is constant, so the cache stays small.
 */
import type BetterSqlite3 from 'better-sqlite3';

/** A value SQLite can bind. Bytes are bound as BLOBs. */
export type SqlValue = string | number | bigint | Uint8Array | null;

/** A query: text with `?` placeholders and the values to bind. */
export interface SqlQuery {
  readonly text: string;
  readonly params: readonly SqlValue[];
}

/** Builds a {@link SqlQuery}: `sql\`SELECT x FROM t WHERE id = ${id}\``. */
export function sql(strings: TemplateStringsArray, ...values: readonly SqlValue[]): SqlQuery {
  return { text: strings.join('?'), params: values };
}

function bindable(value: SqlValue): SqlValue | Buffer {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return value;
}

/** A database connection that runs {@link SqlQuery} values with cached prepared statements. */
export class SqlHandle {
  readonly db: BetterSqlite3.Database;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();
  readonly #transaction: (fn: () => unknown) => unknown;

  constructor(db: BetterSqlite3.Database) {
    this.db = db;
    this.#transaction = db.transaction((fn: () => unknown) => fn());
  }

  #prepare(text: string): BetterSqlite3.Statement {
    let statement = this.#statements.get(text);
    if (statement === undefined) {
      statement = this.db.prepare(text);
      if (this.#statements.size >= 500) this.#statements.clear();
      this.#statements.set(text, statement);
    }
    return statement;
  }

  /** Runs a statement that returns no rows. */
  run(query: SqlQuery): BetterSqlite3.RunResult {
    return this.#prepare(query.text).run(...query.params.map(bindable));
  }

  /** The first row, or undefined. */
  get<T>(query: SqlQuery): T | undefined {
    return this.#prepare(query.text).get(...query.params.map(bindable)) as T | undefined;
  }

  /** All rows. */
  all<T>(query: SqlQuery): T[] {
    return this.#prepare(query.text).all(...query.params.map(bindable)) as T[];
  }

  /** Runs `fn` in a transaction (a savepoint when already inside one); rolls back when it throws. */
  transaction<T>(fn: () => T): T {
    return this.#transaction(fn) as T;
  }

  /** True while a transaction is open on this connection. */
  get inTransaction(): boolean {
    return this.db.inTransaction;
  }
}
