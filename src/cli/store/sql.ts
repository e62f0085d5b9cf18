/**
 * SQL through parameter binding only (after Signal-Desktop's `sql` tagged template): values never become
 * SQL text, so a phone number or a message body cannot change a statement. Statements are prepared once
 * per connection and cached by their text.
 */
import type Database from 'better-sqlite3';

/** A value SQLite binds. */
export type SqlValue = string | number | bigint | Uint8Array | null;

/** A statement: its text with `?` placeholders and the values to bind. */
export interface Sql {
  readonly text: string;
  readonly params: readonly SqlValue[];
}

/** `sql\`SELECT * FROM t WHERE id = ${id}\`` -> `{ text: 'SELECT * FROM t WHERE id = ?', params: [id] }`. */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): Sql {
  return { text: strings.join('?'), params: values };
}

/** better-sqlite3 binds Buffers, not plain Uint8Arrays: wrap them (no copy). */
function bindable(values: readonly SqlValue[]): unknown[] {
  return values.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v));
}

/** Runs statements on one connection with a cache of prepared statements. */
export class Queries {
  readonly #db: Database.Database;
  readonly #cache = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.#db = db;
  }

  #prepare(text: string): Database.Statement {
    let stmt = this.#cache.get(text);
    if (!stmt) {
      stmt = this.#db.prepare(text);
      this.#cache.set(text, stmt);
    }
    return stmt;
  }

  /** Runs a statement that returns no rows; resolves to the number of rows changed. */
  run(q: Sql): number {
    return this.#prepare(q.text).run(...bindable(q.params)).changes;
  }

  /** The first row, or undefined. */
  get<T>(q: Sql): T | undefined {
    return this.#prepare(q.text).get(...bindable(q.params)) as T | undefined;
  }

  /** All rows. */
  all<T>(q: Sql): T[] {
    return this.#prepare(q.text).all(...bindable(q.params)) as T[];
  }

  /** Executes SQL text without parameters (schema statements, transaction control). */
  exec(text: string): void {
    this.#db.exec(text);
  }
}
