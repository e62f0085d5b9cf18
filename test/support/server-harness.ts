// Starts the real server for a test: port 0 on 127.0.0.1, a temporary data folder, an injectable manual
// clock, and every log line captured. On close the harness checks the captured log: no error-level
// lines (those are for bugs), no phone number (any +1555... test number) and none of the secrets the
// test client recorded (passwords, identity keys, envelope contents, as text, base64, base64url or hex).
// Every server of every test goes through this check, so a leak anywhere in the suite fails it.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/main.ts';
import { sqliteStorage } from '../../src/server/app.ts';

/** A clock that moves only when told. */
export class ManualClock {
  #now: number;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  advance(ms: number): void {
    this.#now += ms;
  }
}

/** Secrets that must never reach a log: recorded by the test client as it uses them. */
const secretStrings = new Set<string>();

/** Records a secret string (a password, a number) or bytes (a key, an envelope's content). */
export function recordSecret(secret: string | Uint8Array): void {
  if (typeof secret === 'string') {
    if (secret.length >= 8) secretStrings.add(secret);
    return;
  }
  if (secret.length < 12) return; // too short to be recognisable without false positives
  const b = Buffer.from(secret);
  secretStrings.add(b.toString('base64'));
  secretStrings.add(b.toString('base64url'));
  secretStrings.add(b.toString('hex'));
  // Hex dumps are lowercase here, but scan for the uppercase form too.
  secretStrings.add(b.toString('hex').toUpperCase());
}

/** Test numbers look like +1555 then 7 digits; none may appear whole in a log. */
const PHONE_NUMBER = /\+?1555[0-9]{7}/;

/** Asserts that `log` leaks no number, no recorded secret and has no error-level line. */
export function assertCleanLog(log: string, label = 'server log'): void {
  const number = PHONE_NUMBER.exec(log);
  assert.equal(number, null, `${label} contains a phone number: ...${number === null ? '' : log.slice(Math.max(0, number.index - 80), number.index + 20)}`);
  for (const secret of secretStrings) {
    const at = log.indexOf(secret);
    assert.equal(at, -1, `${label} contains a secret (password, key or message bytes) near: ${log.slice(Math.max(0, at - 80), at)}`);
  }
  for (const line of log.split('\n')) {
    if (line.length === 0) continue;
    const level = (JSON.parse(line) as { level?: number }).level ?? 0;
    assert.ok(level < 50, `${label} has an error-level line (errors are for bugs): ${line.slice(0, 300)}`);
  }
}

/** A running test server. */
export interface TestServer {
  readonly server: RunningServer;
  readonly url: string;
  readonly wsUrl: string;
  readonly dataDir: string;
  readonly clock: ManualClock;
  /** Everything logged so far. */
  log(): string;
  /** Closes the server, checks the log, deletes the data folder (unless `keepData`). */
  close(options?: { keepData?: boolean }): Promise<void>;
}

/** Default test options: test numbers +1555010000N (N = 1..9) with code N repeated six times. */
export const TEST_NUMBERS = new Map(Array.from({ length: 9 }, (_, i) => [`+1555010000${i + 1}`, String(i + 1).repeat(6)]));

/** Starts a server for a test. */
export async function startTestServer(options: ServerOptions & { dataDir?: string } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'parley-server-test-'));
  const clock = options.clock instanceof ManualClock ? options.clock : new ManualClock();
  const lines: string[] = [];
  const server = await startServer({
    testNumbers: TEST_NUMBERS,
    logLevel: 'debug',
    heartbeatIntervalMs: 0,
    ...options,
    port: 0,
    host: '127.0.0.1',
    dataDir,
    clock,
    logDestination: { write: (line: string) => void lines.push(line) },
  });
  let closed = false;
  return {
    server,
    url: server.url,
    wsUrl: `${server.url.replace(/^http/, 'ws')}/v1/websocket`,
    dataDir,
    clock,
    log: () => lines.join(''),
    async close({ keepData = false } = {}): Promise<void> {
      if (closed) return;
      closed = true;
      await server.close();
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
      assertCleanLog(lines.join(''));
    },
  };
}

/** Rows in `table` of the test server's database, read through a separate read-only connection. */
const COUNT_QUERIES = {
  messages: 'SELECT COUNT(*) AS n FROM messages',
  pre_keys: 'SELECT COUNT(*) AS n FROM pre_keys',
  kyber_pre_keys: 'SELECT COUNT(*) AS n FROM kyber_pre_keys',
  devices: 'SELECT COUNT(*) AS n FROM devices',
  accounts: 'SELECT COUNT(*) AS n FROM accounts',
  idempotency_keys: 'SELECT COUNT(*) AS n FROM idempotency_keys',
  payloads: 'SELECT COUNT(*) AS n FROM payloads',
} as const;

export async function countRows(t: TestServer, table: keyof typeof COUNT_QUERIES): Promise<number> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(sqliteStorage(t.server.app).file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(COUNT_QUERIES[table]).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Every byte the server has on disk in its data folder (database, WAL, shared memory). */
export function dataFolderBytes(dataDir: string): Buffer {
  return Buffer.concat(readdirSync(dataDir).map((name) => readFileSync(path.join(dataDir, name))));
}
