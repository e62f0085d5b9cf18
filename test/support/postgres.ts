// PostgreSQL for tests: every test file (or test) gets a database of its own, parley_test_<random>,
// created on the local server and dropped (WITH (FORCE): open connections are cut) when done. Pair
// `createTestDatabase` with an `after`/`afterEach` hook that calls `drop()`, so a failing test leaves no
// database behind:
//
//   const options = await postgresTestOptions();          // skip locally / fail in CI without PostgreSQL
//   describe('...', options, () => {
//     let db: TestDatabase;
//     before(async () => { db = await createTestDatabase(); });
//     after(() => db.drop());
//   });
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { serviceTestOptions, SERVICE_ADDRESS, type ServiceTestOptions } from './services.ts';

const { host, port } = SERVICE_ADDRESS.postgres;

/** The server's maintenance database, as user postgres (trust auth on this machine and in CI). */
export const POSTGRES_ADMIN_URL = `postgres://postgres@${host}:${port}/postgres`;

/** The URL of database `name` on the test server. */
export function postgresUrl(name: string): string {
  return `postgres://postgres@${host}:${port}/${name}`;
}

/** Runs `fn` with a fresh connection to the maintenance database, then closes it. */
async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Throws unless the server accepts a connection and answers a query. */
export async function probePostgres(): Promise<void> {
  await withAdmin((client) => client.query('SELECT 1'));
}

/** `describe`/`test` options: run with PostgreSQL, skip without it locally, fail without it in CI. */
export function postgresTestOptions(): Promise<ServiceTestOptions> {
  return serviceTestOptions('postgres', probePostgres);
}

/** A database created for a test. */
export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops the database, cutting any open connection; safe to call more than once. */
  drop(): Promise<void>;
}

/** Creates an empty, uniquely named database (`parley_test_<16 hex digits>`). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `parley_test_${randomBytes(8).toString('hex')}`;
  // An identifier cannot be a bound parameter; `name` is ours, [a-z0-9_] only.
  await withAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: postgresUrl(name),
    drop(): Promise<void> {
      dropped ??= withAdmin(async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
      return dropped;
    },
  };
}
