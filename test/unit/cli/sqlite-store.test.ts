// The store contract on the SQLite store (a temporary profile folder per case), plus what only a file can
// show: data survives reopening, the file is private, and a second process's transaction waits.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteClientStore, DATABASE_FILE } from '../../../src/cli/store/sqlite-store.ts';
import { storeContract } from '../client/store-contract.ts';

function tempProfile(): string {
  return mkdtempSync(path.join(tmpdir(), 'parley-store-'));
}

storeContract('SqliteClientStore', async () => {
  const dir = tempProfile();
  const store = SqliteClientStore.open(dir);
  return { store, reopen: async () => SqliteClientStore.open(dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
});

describe('SqliteClientStore', () => {
  it('creates a private folder and database file', async () => {
    const dir = path.join(tempProfile(), 'profile');
    const store = SqliteClientStore.open(dir);
    try {
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(path.join(dir, DATABASE_FILE)).mode & 0o777, 0o600);
    } finally {
      await store.close();
      rmSync(path.dirname(dir), { recursive: true, force: true });
    }
  });

  it('refuses to be used outside a transaction', async () => {
    const dir = tempProfile();
    const store = SqliteClientStore.open(dir);
    let leaked: Parameters<Parameters<typeof store.transaction>[0]>[0] | undefined;
    await store.transaction(async (tx) => {
      leaked = tx;
    });
    await assert.rejects(async () => leaked?.settings.get('x'), /outside a transaction/);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
