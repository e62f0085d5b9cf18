// The push store contract (push-store-contract.ts) on PostgreSQL: its own database (parley_test_<random>),
// dropped afterwards; the "second node" is a second Storage with its own pool. Without PostgreSQL at
// 127.0.0.1:5432 the file skips locally and fails in CI.
import { openPostgresStorage, type PostgresStorage } from '../../../src/server/storage/postgres/index.ts';
import type { Storage } from '../../../src/server/storage/stores.ts';
import { createTestDatabase, postgresTestOptions } from '../../support/postgres.ts';
import { pushStoreContract } from './push-store-contract.ts';

const options = await postgresTestOptions();

pushStoreContract(
  'postgres',
  async () => {
    const database = await createTestDatabase();
    const open: Storage[] = [];
    try {
      let storage: PostgresStorage = await openPostgresStorage(database.url, { poolSize: 4 });
      open.push(storage);
      let peer: PostgresStorage | undefined;
      return {
        get storage() {
          return storage;
        },
        async reopen() {
          await storage.close();
          storage = await openPostgresStorage(database.url, { poolSize: 4 });
          open.push(storage);
          return storage;
        },
        async peer() {
          if (peer === undefined) {
            peer = await openPostgresStorage(database.url, { poolSize: 2 });
            open.push(peer);
          }
          return peer;
        },
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
  },
  options,
);
