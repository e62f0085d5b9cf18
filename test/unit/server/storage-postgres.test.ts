// The storage contract (storage-contract.ts) and the push store contract (push-store-contract.ts) on
// PostgreSQL, and what only this backend has: migrations
// under an advisory lock, several nodes (Storage instances with their own pools) on one database, and a
// lost connection reported as an error. Every suite creates its own database (parley_test_<random>) and
// drops it in an `after` hook. Without PostgreSQL at 127.0.0.1:5432 the file skips locally and fails in CI.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { ServerError } from '../../../src/server/errors.ts';
import type { AccountId, DeviceId, PhoneNumber } from '../../../src/server/ids.ts';
import { openPostgresStorage, type PostgresStorage } from '../../../src/server/storage/postgres/index.ts';
import { latestPostgresVersion } from '../../../src/server/storage/postgres/migrate.ts';
import type { Storage } from '../../../src/server/storage/stores.ts';
import { createTestDatabase, postgresTestOptions, type TestDatabase } from '../../support/postgres.ts';
import { pushStoreContract } from './push-store-contract.ts';
import { storageContract, type StorageHarness } from './storage-contract.ts';

const options = await postgresTestOptions();

/** Runs `fn` on a connection of its own to `url` (the test's view of the database, apart from the pools). */
async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function postgresHarness(): Promise<StorageHarness> {
  const database = await createTestDatabase();
  const open: Storage[] = [];
  try {
    let storage: PostgresStorage = await openPostgresStorage(database.url);
    open.push(storage);
    let peer: PostgresStorage | undefined;
    return {
      get storage() {
        return storage;
      },
      async reopen() {
        await storage.close();
        storage = await openPostgresStorage(database.url);
        open.push(storage);
        return storage;
      },
      async peer() {
        if (peer === undefined) {
          peer = await openPostgresStorage(database.url, { poolSize: 4 });
          open.push(peer);
        }
        return peer;
      },
      backups: () => storage.backups,
      payloads: () => withClient(database.url, async (c) => Number((await c.query<{ n: string }>('SELECT COUNT(*) AS n FROM payloads')).rows[0]?.n)),
      async cleanup() {
        await Promise.all(open.map((s) => s.close().catch(() => undefined)));
        await database.drop();
      },
    };
  } catch (err) {
    await Promise.all(open.map((s) => s.close().catch(() => undefined)));
    await database.drop();
    throw err;
  }
}

storageContract('postgres', postgresHarness, options);
pushStoreContract('postgres', postgresHarness, options);

describe('postgres storage: migrations, nodes, connections', options, () => {
  let database: TestDatabase | undefined;
  const opened: Storage[] = [];
  const track = <T extends Storage>(s: T): T => {
    opened.push(s);
    return s;
  };
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    await Promise.all(opened.map((s) => s.close().catch(() => undefined)));
    await database?.drop();
  });
  const url = (): string => {
    assert.ok(database !== undefined);
    return database.url;
  };

  it('migrates once when several nodes start at once, and records the version', async () => {
    const nodes = await Promise.all([1, 2, 3].map(() => openPostgresStorage(url(), { poolSize: 2 }).then(track)));
    const versions = await withClient(url(), async (c) => (await c.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version')).rows);
    assert.deepEqual(versions, [{ version: 1, name: 'initial' }, { version: 2, name: 'backups' }, { version: 3, name: 'push' }]);
    assert.equal(latestPostgresVersion(), 3);
    // The three share one database: what one writes, the others read.
    const registered = await nodes[0]?.accounts.register({
      newAccountId: '00000000-0000-4000-8000-000000000001' as AccountId, number: '+15550109001' as PhoneNumber, identityKey: new Uint8Array(33).fill(5),
      registrationId: 1, passwordHash: new Uint8Array(32), deviceName: new Uint8Array(), signedPreKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) },
      kyberLastResortKey: { id: 2, publicKey: new Uint8Array(33), signature: new Uint8Array(64) }, now: 1000,
    });
    assert.equal((await nodes[2]?.accounts.byNumber('+15550109001' as PhoneNumber))?.id, registered?.account.id);
  });

  it('refuses a database whose schema is newer than this server', async () => {
    const newer = await createTestDatabase();
    try {
      await track(await openPostgresStorage(newer.url)).close();
      await withClient(newer.url, (c) => c.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)"));
      await assert.rejects(openPostgresStorage(newer.url), /schema version 99 is newer than this server/);
    } finally {
      await newer.drop();
    }
  });

  it('reports a connection lost in the middle of a transaction as SERVER_UNAVAILABLE and stores nothing', async () => {
    const storage = track(await openPostgresStorage(url(), { poolSize: 2 }));
    const id = '00000000-0000-4000-8000-000000000001' as AccountId;
    await withClient(url(), async (blocker) => {
      // Hold the account row, so the reservation below waits inside its transaction; then cut its connection.
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [id]);
      const reserving = storage.devices.reserve(id, new Uint8Array(32).fill(3), 10_000, 4, 0);
      const outcome = reserving.then(
        () => 'resolved',
        (err: unknown) => err,
      );
      let waiting: number[] = [];
      for (let i = 0; i < 100 && waiting.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        // Inside a transaction, pg_stat_activity is read from a snapshot taken once: drop it before each look.
        await blocker.query('SELECT pg_stat_clear_snapshot()');
        waiting = (await blocker.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows.map((r) => r.pid);
      }
      assert.equal(waiting.length, 1, 'the reservation waits for the lock');
      await blocker.query('SELECT pg_terminate_backend($1)', [waiting[0]]);
      const err = await outcome;
      assert.ok(err instanceof ServerError, `rejected with a ServerError, got ${String(err)}`);
      assert.equal(err.code, 'SERVER_UNAVAILABLE');
      assert.ok(err.retryAfterMs > 0);
      await blocker.query('ROLLBACK');
    });
    assert.equal(await storage.devices.pendingCode(new Uint8Array(32).fill(3), 0), undefined, 'nothing stored');
    // The pool replaced the broken connection: the next call works.
    assert.deepEqual(await storage.devices.reserve(id, new Uint8Array(32).fill(3), 10_000, 4, 0), { kind: 'reserved', deviceId: 2 });
  });

  it('close waits for the operations under way, and what they stored is there afterwards', async () => {
    const storage = await openPostgresStorage(url(), { poolSize: 1 });
    const registered = await storage.accounts.register({
      newAccountId: '00000000-0000-4000-8000-000000000002' as AccountId, number: '+15550109002' as PhoneNumber, identityKey: new Uint8Array(33).fill(5),
      registrationId: 1, passwordHash: new Uint8Array(32), deviceName: new Uint8Array(), signedPreKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) },
      kyberLastResortKey: { id: 2, publicKey: new Uint8Array(33), signature: new Uint8Array(64) }, now: 1000,
    });
    const { ref } = registered.device;
    const envelope = (n: number) => ({
      ref, guid: new Uint8Array(16).fill(n), type: 1, sourceAccountId: registered.account.id, sourceDeviceId: 1 as DeviceId, destinationDeviceId: 1 as DeviceId,
      timestamp: 1000, serverTimestamp: 1000, content: new Uint8Array(8).fill(n),
    });
    // Five sends queue for the pool's one connection; close() comes while they wait.
    const sends = [1, 2, 3, 4, 5].map((n) => storage.messages.insert([envelope(n)], { maxQueueDepth: 100, now: 1000 }));
    const closing = storage.close();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('a send or close() did not settle within 20 s')), 20_000);
    });
    try {
      const results = await Promise.race([Promise.all(sends), limit]);
      await Promise.race([closing, limit]);
      assert.deepEqual(results.map((r) => r.kind), ['stored', 'stored', 'stored', 'stored', 'stored']);
    } finally {
      clearTimeout(timer);
    }
    const reopened = track(await openPostgresStorage(url(), { poolSize: 1 }));
    assert.deepEqual((await reopened.messages.page(ref, 0, 100, 0)).map((e) => e.content[0]), [1, 2, 3, 4, 5]);
  });

  it('group commit: sends and acks made at once share transactions; a refused send splits only its own batch', async () => {
    const storage = track(await openPostgresStorage(url(), { poolSize: 4 }));
    const registered = await storage.accounts.register({
      newAccountId: '00000000-0000-4000-8000-000000000003' as AccountId, number: '+15550109003' as PhoneNumber, identityKey: new Uint8Array(33).fill(5),
      registrationId: 1, passwordHash: new Uint8Array(32), deviceName: new Uint8Array(), signedPreKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) },
      kyberLastResortKey: { id: 2, publicKey: new Uint8Array(33), signature: new Uint8Array(64) }, now: 1000,
    });
    const { ref } = registered.device;
    const envelope = (n: number, timestamp = 1000) => ({
      ref, guid: new Uint8Array(16).fill(n), type: 1, sourceAccountId: registered.account.id, sourceDeviceId: 1 as DeviceId, destinationDeviceId: 1 as DeviceId,
      timestamp, serverTimestamp: 1000, content: new Uint8Array(8).fill(n),
    });
    const writer = storage.messageWriter;
    const before = { commits: writer.commits, jobs: writer.jobs, splits: writer.splits };
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => storage.messages.insert([envelope(i % 256)], { maxQueueDepth: 1000, now: 1000 })));
    assert.ok(results.every((r) => r.kind === 'stored'));
    assert.equal(writer.jobs - before.jobs, 200);
    assert.ok(writer.commits - before.commits <= 4, `200 sends in ${writer.commits - before.commits} commits`);
    const seqs = results.flatMap((r) => (r.kind === 'stored' ? r.envelopes.map((e) => e.seq) : []));
    await Promise.all(seqs.map((seq) => storage.messages.remove(ref, seq)));
    assert.ok(writer.commits - before.commits <= 8, `and 200 acks in ${writer.commits - before.commits} commits in all`);
    assert.equal(await storage.messages.depth(ref), 0);
    // One refused row (NaN is no BIGINT) makes its batch run again job by job: the others are stored.
    const mixed = await Promise.allSettled([1, 2, 3].map((n) => storage.messages.insert([envelope(n, n === 2 ? Number.NaN : 1000)], { maxQueueDepth: 1000, now: 1000 })));
    assert.deepEqual(mixed.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.equal(writer.splits - before.splits, 1);
    assert.deepEqual((await storage.messages.page(ref, 0, 10, 0)).map((e) => e.content[0]), [1, 3]);
  });

  it('account and device lookups made at once are answered per key, and see what was committed before the call', async () => {
    const storage = track(await openPostgresStorage(url(), { poolSize: 2 }));
    const ids = [4, 5, 6].map((n) => `00000000-0000-4000-8000-00000000000${n}` as AccountId);
    for (const [i, id] of ids.entries()) {
      await storage.accounts.register({
        newAccountId: id, number: `+1555010900${4 + i}` as PhoneNumber, identityKey: new Uint8Array(33).fill(i), registrationId: 1, passwordHash: new Uint8Array(32), deviceName: new Uint8Array(),
        signedPreKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) }, kyberLastResortKey: { id: 2, publicKey: new Uint8Array(33), signature: new Uint8Array(64) }, now: 1000,
      });
    }
    const unknown = '00000000-0000-4000-8000-000000000099' as AccountId;
    const asked = [...ids, unknown, ids[0] as AccountId, ids[2] as AccountId];
    const [accounts, devices] = await Promise.all([Promise.all(asked.map((id) => storage.accounts.byId(id))), Promise.all(asked.map((id) => storage.accounts.devices(id)))]);
    assert.deepEqual(accounts.map((a) => a?.id), [...ids, undefined, ids[0], ids[2]]);
    assert.deepEqual(accounts.map((a) => a?.identityKey[0]), [0, 1, 2, undefined, 0, 2]);
    assert.deepEqual(devices.map((list) => list.map((d) => [d.accountId, d.deviceId])), asked.map((id) => (id === unknown ? [] : [[id, 1]])));
    assert.notEqual(accounts[0], accounts[4], 'callers of one key get records of their own');
    // A lookup after a change sees it, also in a tick with other lookups: re-registration replaces device 1.
    const before = devices[1]?.[0]?.ref;
    const again = await storage.accounts.register({
      newAccountId: 'unused' as AccountId, number: '+15550109005' as PhoneNumber, identityKey: new Uint8Array(33).fill(9), registrationId: 1, passwordHash: new Uint8Array(32), deviceName: new Uint8Array(),
      signedPreKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) }, kyberLastResortKey: { id: 2, publicKey: new Uint8Array(33), signature: new Uint8Array(64) }, now: 2000,
    });
    assert.equal(again.account.id, ids[1]);
    const [afterAccounts, afterDevices] = await Promise.all([Promise.all(ids.map((id) => storage.accounts.byId(id))), Promise.all(ids.map((id) => storage.accounts.devices(id)))]);
    assert.deepEqual(afterAccounts.map((a) => a?.identityKey[0]), [0, 9, 2]);
    assert.deepEqual(afterDevices.map((list) => list.map((d) => d.ref)), [devices[0]?.map((d) => d.ref), [again.device.ref], devices[2]?.map((d) => d.ref)]);
    assert.notEqual(again.device.ref, before);
  });

  it('sets statement and idle-in-transaction timeouts and names its sessions', async () => {
    const storage = track(await openPostgresStorage(url(), { poolSize: 1, statementTimeoutMs: 1500 }));
    const settings = (await storage.pool.query<{ s: string; i: string; a: string }>(
      "SELECT current_setting('statement_timeout') AS s, current_setting('idle_in_transaction_session_timeout') AS i, current_setting('application_name') AS a",
    )).rows[0];
    assert.deepEqual(settings, { s: '1500ms', i: '1min', a: 'parley' });
    await assert.rejects(storage.pool.query('SELECT pg_sleep(5)'), /statement timeout/);
  });

  it('refuses calls after close with SERVER_UNAVAILABLE, and cannot open an unreachable database', async () => {
    const storage = await openPostgresStorage(url(), { poolSize: 1 });
    await storage.close();
    await assert.rejects(storage.accounts.byId('00000000-0000-4000-8000-000000000001' as AccountId), (err: unknown) => err instanceof ServerError && err.code === 'SERVER_UNAVAILABLE');
    await assert.rejects(storage.messages.insert([], { maxQueueDepth: 1, now: 0 }), (err: unknown) => err instanceof ServerError && err.code === 'SERVER_UNAVAILABLE');
    await assert.rejects(openPostgresStorage('postgres://postgres@127.0.0.1:1/parley'), /ECONNREFUSED/);
  });
});
