// The SQLite store's linked-device data (migration 003): a profile database written by the release before
// linked devices opens with its account, identities and messages intact (a primary, without an account key);
// a companion's account key and the device identities of accounts survive a reopen exactly.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE, SqliteClientStore } from '../../../src/cli/store/sqlite-store.ts';
import { appliedVersions, migrate, MIGRATIONS } from '../../../src/cli/store/migrations/index.ts';
import { Queries, sql } from '../../../src/cli/store/sql.ts';
import type { AccountId, E164, MessageId } from '../../../src/client/ids.ts';
import type { AccountRecord, DeviceIdentityRecord } from '../../../src/client/store/types.ts';

const A = '11111111-1111-4111-8111-111111111111' as AccountId;
const B = '22222222-2222-4222-8222-222222222222' as AccountId;

function tempProfile(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-devices-store-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const key = (seed: number): Uint8Array => Uint8Array.from({ length: 33 }, (_, i) => (i === 0 ? 5 : (seed * 31 + i) & 0xff));

function account(fields: Partial<AccountRecord> = {}): AccountRecord {
  return {
    serverUrl: 'http://127.0.0.1:8080',
    number: '+15550100001' as E164,
    accountId: A,
    deviceId: 1,
    password: 'secret',
    registrationId: 4242,
    identityPublicKey: key(1),
    identityPrivateKey: key(2).subarray(1),
    registeredAt: 1000,
    ...fields,
  };
}

function device(accountId: AccountId, deviceId: number, fields: Partial<DeviceIdentityRecord> = {}): DeviceIdentityRecord {
  return { accountId, deviceId, identityKey: key(deviceId * 10), listVersion: 1, firstSeenAt: 100, changedAt: undefined, ...fields };
}

describe('SqliteClientStore: linked devices', () => {
  it('migrates a database of schema 2, keeping its account (a primary), identities and messages', async () => {
    const p = tempProfile();
    try {
      const db = new Database(path.join(p.dir, DATABASE_FILE));
      const q = new Queries(db);
      assert.deepEqual(migrate(q, 1, MIGRATIONS, 2), [1, 2]);
      const doc = {
        serverUrl: 'http://127.0.0.1:8080',
        number: '+15550100001',
        accountId: A,
        deviceId: 1,
        password: 'secret',
        registrationId: 4242,
        identityPublicKey: Buffer.from(key(1)).toString('base64'),
        identityPrivateKey: Buffer.from(key(2).subarray(1)).toString('base64'),
        registeredAt: 1000,
      };
      q.run(sql`INSERT INTO account (id, format, data) VALUES (1, 1, ${JSON.stringify(doc)})`);
      q.run(sql`INSERT INTO identities (account_id, identity_key, status, first_seen_at, changed_at) VALUES (${B}, ${key(7)}, 'verified', 5, NULL)`);
      q.run(sql`INSERT INTO messages (id, conversation_id, sender_id, direction, timestamp, server_timestamp, received_at, kind, body, quote, reactions,
                  edited_at, deleted, view_once, expire_timer, expires_at, status, error, receipts, group_update)
                VALUES (${`${B}:5`}, ${B}, ${B}, 'incoming', 5, 6, 7, 'text', 'from before linked devices', NULL, '[]', NULL, 0, 0, 0, NULL, 'received', NULL, '[]', NULL)`);
      db.close();

      const store = SqliteClientStore.open(p.dir, { now: () => 42 });
      try {
        await store.transaction(async (tx) => {
          const a = await tx.account.get();
          assert.deepEqual(a, account());
          assert.equal(a !== undefined && 'accountIdentityKey' in a, false, 'a primary has no account key');
          assert.deepEqual(await tx.identities.get(B), { accountId: B, identityKey: key(7), status: 'verified', firstSeenAt: 5, changedAt: undefined });
          assert.equal((await tx.messages.get(`${B}:5` as MessageId))?.body, 'from before linked devices');
          assert.deepEqual(await tx.deviceIdentities.list(B), []);
        });
      } finally {
        await store.close();
      }
      const check = new Database(path.join(p.dir, DATABASE_FILE), { readonly: true });
      assert.deepEqual(appliedVersions(new Queries(check)), MIGRATIONS.map((m) => m.version));
      const row = check.prepare('SELECT account_identity_key FROM account WHERE id = 1').get() as { account_identity_key: Buffer | null };
      assert.equal(row.account_identity_key, null);
      check.close();
    } finally {
      p.remove();
    }
  });

  it('keeps a companion\'s account key, and clears it when the account is written without one', async () => {
    const p = tempProfile();
    try {
      const companion = account({ deviceId: 3, accountIdentityKey: key(9) });
      let store = SqliteClientStore.open(p.dir);
      await store.transaction(async (tx) => tx.account.put(companion));
      await store.close();
      store = SqliteClientStore.open(p.dir);
      try {
        await store.transaction(async (tx) => {
          const a = await tx.account.get();
          assert.deepEqual(a, companion);
          assert.ok(a?.accountIdentityKey instanceof Uint8Array);
          // Registered again as a primary: the account key goes.
          await tx.account.put(account({ registeredAt: 2000 }));
        });
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.account.get(), account({ registeredAt: 2000 }));
        });
      } finally {
        await store.close();
      }
    } finally {
      p.remove();
    }
  });

  it('stores device identities per account and device, lists them by device id, replaces and removes them', async () => {
    const p = tempProfile();
    try {
      let store = SqliteClientStore.open(p.dir);
      await store.transaction(async (tx) => {
        await tx.deviceIdentities.put(device(B, 4, { listVersion: 2 }));
        await tx.deviceIdentities.put(device(B, 2));
        await tx.deviceIdentities.put(device(A, 3, { changedAt: 77 }));
      });
      await store.close();
      store = SqliteClientStore.open(p.dir);
      try {
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.deviceIdentities.list(B), [device(B, 2), device(B, 4, { listVersion: 2 })]);
          assert.deepEqual(await tx.deviceIdentities.get(A, 3), device(A, 3, { changedAt: 77 }));
          assert.equal(await tx.deviceIdentities.get(A, 2), undefined);
          // A new key for device 2 in a newer list replaces the row.
          await tx.deviceIdentities.put(device(B, 2, { identityKey: key(99), listVersion: 3, changedAt: 300 }));
          await tx.deviceIdentities.remove(B, 4);
          await tx.deviceIdentities.remove(B, 5); // absent: nothing happens
        });
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.deviceIdentities.list(B), [device(B, 2, { identityKey: key(99), listVersion: 3, changedAt: 300 })]);
          assert.deepEqual(await tx.deviceIdentities.list(A), [device(A, 3, { changedAt: 77 })]);
        });
        // Rolled back with the transaction that wrote it.
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.deviceIdentities.put(device(A, 5));
            await tx.deviceIdentities.remove(A, 3);
            throw new Error('abort');
          }),
          /abort/,
        );
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.deviceIdentities.list(A), [device(A, 3, { changedAt: 77 })]);
        });
      } finally {
        await store.close();
      }
    } finally {
      p.remove();
    }
  });

  it('hands out copies of stored keys', async () => {
    const p = tempProfile();
    const store = SqliteClientStore.open(p.dir);
    try {
      await store.transaction(async (tx) => {
        await tx.account.put(account({ deviceId: 2, accountIdentityKey: key(9) }));
        await tx.deviceIdentities.put(device(B, 2));
        const a = await tx.account.get();
        a?.accountIdentityKey?.fill(0);
        const d = await tx.deviceIdentities.get(B, 2);
        d?.identityKey.fill(0);
      });
      await store.transaction(async (tx) => {
        assert.deepEqual((await tx.account.get())?.accountIdentityKey, key(9));
        assert.deepEqual((await tx.deviceIdentities.get(B, 2))?.identityKey, key(10 * 2));
      });
    } finally {
      await store.close();
      p.remove();
    }
  });
});
