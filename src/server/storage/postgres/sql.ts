/**
 * SQL for PostgreSQL only through parameter binding: the {@link sql} tagged template turns every
 * interpolation into a `$n` placeholder and a bound value (as the SQLite backend's `sql` tag does with
 * `?`). There is no way to splice a string into the text. {@link PgHandle} runs such queries on the pool
 * (each statement its own transaction) or on the client of a transaction.
 */
import type pg from 'pg';
import { ServerError, ServerErrorCode } from '../../errors.js';

/** A value PostgreSQL can bind. Bytes are bound as BYTEA; arrays as PostgreSQL arrays. */
export type SqlValue = string | number | bigint | boolean | Uint8Array | null | readonly (string | number | Uint8Array | null)[];

/** A query: text with `$n` placeholders and the values to bind. */
export interface SqlQuery {
  readonly text: string;
  readonly params: readonly SqlValue[];
}

/** Builds a {@link SqlQuery}: `sql\`SELECT x FROM t WHERE id = ${id}\``. */
export function sql(strings: TemplateStringsArray, ...values: readonly SqlValue[]): SqlQuery {
  let text = strings[0] ?? '';
  for (let i = 1; i < strings.length; i++) text += `$${i}${strings[i] ?? ''}`;
  return { text, params: values };
}

/** SQLSTATE codes this backend reacts to. */
export const PgCode = {
  UniqueViolation: '23505',
  ForeignKeyViolation: '23503',
  SerializationFailure: '40001',
  DeadlockDetected: '40P01',
} as const;

/** The SQLSTATE of a PostgreSQL error, or undefined for any other error. */
export function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * True when `err` means the database could not be reached or the connection broke (so the outcome of a
 * statement in flight is unknown): socket errors, pg's own "Connection terminated", and the SQLSTATE
 * classes 08 (connection exception), 53 (insufficient resources), 57P (operator intervention: shutdown,
 * cannot connect now) and 58 (system error).
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (/^(08|53|57P|58)/.test(code)) return true;
    if (/^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, ...
  }
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Client was closed/i.test(message);
}

/**
 * Turns an error of the driver into what the server reports: a lost or refused connection becomes
 * SERVER_UNAVAILABLE with a retry hint (the caller is never told that something succeeded or failed
 * when it cannot know); everything else passes through unchanged.
 */
export function storageError(err: unknown): unknown {
  if (err instanceof ServerError) return err;
  if (isConnectionError(err)) return new ServerError(ServerErrorCode.Unavailable, 'storage unavailable', { cause: err, retryAfterMs: 1000 });
  return err;
}

/** Something that runs queries: the pool, or the client of an open transaction. */
type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

function bindable(value: SqlValue): unknown {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map((v: unknown) => (v instanceof Uint8Array ? bindable(v) : v));
  return value;
}

/** Runs {@link SqlQuery} values on a pool or a transaction's client. */
export class PgHandle {
  readonly #target: Queryable;

  constructor(target: Queryable) {
    this.#target = target;
  }

  async #query<T>(query: SqlQuery): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
    try {
      return await (this.#target as pg.Pool).query<T & pg.QueryResultRow>(query.text, query.params.map(bindable));
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Runs a statement; resolves to the number of rows it touched. */
  async run(query: SqlQuery): Promise<number> {
    return (await this.#query(query)).rowCount ?? 0;
  }

  /** The first row, or undefined. */
  async get<T>(query: SqlQuery): Promise<T | undefined> {
    return (await this.#query<T>(query)).rows[0];
  }

  /** All rows. */
  async all<T>(query: SqlQuery): Promise<T[]> {
    return (await this.#query<T>(query)).rows;
  }
}
