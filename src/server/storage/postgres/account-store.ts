import type { AccountId, DeviceId, DeviceRef, PhoneNumber } from '../../ids.js';
import type { AccountRecord, AccountStore, DeviceRecord, NewRegistration, RegistrationResult } from '../stores.js';
import type { PostgresDatabase } from './database.js';
import { deleteQueues } from './message-store.js';
import { ReadBatcher } from './read-batch.js';
import { sql, type PgHandle } from './sql.js';

interface AccountRow {
  id: string;
  number: string;
  identity_key: Uint8Array;
  registered_at: number;
}

/** A `devices` row as every query of this backend selects it. */
export interface DeviceRow {
  ref: number;
  account_id: string;
  device_id: number;
  registration_id: number;
  password_hash: Uint8Array;
  identity_key: Uint8Array;
  identity: Uint8Array | null;
  listed: boolean;
  name: Uint8Array;
  created_at: number;
}

const toAccount = (row: AccountRow): AccountRecord => ({
  id: row.id as AccountId,
  number: row.number as PhoneNumber,
  identityKey: row.identity_key,
  registeredAt: row.registered_at,
});

/** A device row as a record (device 1 is always listed). */
export const toDevice = (row: DeviceRow): DeviceRecord => ({
  ref: row.ref as DeviceRef,
  accountId: row.account_id as AccountId,
  deviceId: row.device_id as DeviceId,
  registrationId: row.registration_id,
  passwordHash: row.password_hash,
  identityKey: row.identity_key,
  identity: row.identity ?? undefined,
  listed: row.device_id === 1 || row.listed,
  name: row.name,
  createdAt: row.created_at,
});

/** Creates a device's empty queue counter and its two signed keys (the device row exists). */
export async function initDevice(db: PgHandle, ref: number, r: Pick<NewRegistration, 'signedPreKey' | 'kyberLastResortKey' | 'now'>): Promise<void> {
  await db.run(sql`INSERT INTO device_queues (device_ref, last_seq, depth) VALUES (${ref}, ${0}, ${0})`);
  const s = r.signedPreKey;
  await db.run(sql`INSERT INTO signed_pre_keys (device_ref, key_id, public_key, signature, uploaded_at)
                   VALUES (${ref}, ${s.id}, ${s.publicKey}, ${s.signature}, ${r.now})`);
  const k = r.kyberLastResortKey;
  await db.run(sql`INSERT INTO kyber_last_resort_keys (device_ref, key_id, public_key, signature, uploaded_at)
                   VALUES (${ref}, ${k.id}, ${k.publicKey}, ${k.signature}, ${r.now})`);
}

/**
 * {@link AccountStore} on PostgreSQL. No cache: other nodes register, link and remove devices, so every
 * read goes to the database (primary-key and `(account_id, device_id)` index reads). Every change of an
 * account's devices, here and in the device store, first locks the account row (`FOR UPDATE`), so two
 * nodes changing one account run one after the other, each on what the other committed.
 */
export class PostgresAccountStore implements AccountStore {
  readonly #db: PostgresDatabase;
  /** `byId` and `devices`, read on every send: coalesced per tick (`read-batch.ts`). */
  readonly #accounts: ReadBatcher<AccountRow>;
  readonly #devices: ReadBatcher<DeviceRow>;

  constructor(db: PostgresDatabase) {
    this.#db = db;
    this.#accounts = new ReadBatcher(db.read, (ids) => sql`SELECT id, number, identity_key, registered_at FROM accounts WHERE id = ANY(${ids}::text[])`, (row) => row.id);
    this.#devices = new ReadBatcher(
      db.read,
      (ids) => sql`
        SELECT ref, account_id, device_id, registration_id, password_hash, identity_key, identity, listed, name, created_at
        FROM devices WHERE account_id = ANY(${ids}::text[]) ORDER BY account_id, device_id`,
      (row) => row.account_id,
    );
  }

  async byId(id: AccountId): Promise<AccountRecord | undefined> {
    const [row] = await this.#accounts.load(id);
    return row === undefined ? undefined : toAccount(row);
  }

  async byNumber(number: PhoneNumber): Promise<AccountRecord | undefined> {
    const row = await this.#db.read.get<AccountRow>(sql`SELECT id, number, identity_key, registered_at FROM accounts WHERE number = ${number}`);
    return row === undefined ? undefined : toAccount(row);
  }

  async devices(id: AccountId): Promise<DeviceRecord[]> {
    return (await this.#devices.load(id)).map(toDevice);
  }

  async device(id: AccountId, deviceId: DeviceId): Promise<DeviceRecord | undefined> {
    const row = await this.#db.read.get<DeviceRow>(sql`
      SELECT ref, account_id, device_id, registration_id, password_hash, identity_key, identity, listed, name, created_at
      FROM devices WHERE account_id = ${id} AND device_id = ${deviceId}`);
    return row === undefined ? undefined : toDevice(row);
  }

  register(r: NewRegistration): Promise<RegistrationResult> {
    return this.#db.transaction(async (db): Promise<RegistrationResult> => {
      // Either this creates the account, or the number has one (perhaps created by another node a moment
      // ago: ON CONFLICT waits for that commit) and the account row is locked for the re-registration.
      const created = await db.get<{ id: string }>(sql`
        INSERT INTO accounts (id, number, identity_key, created_at, registered_at)
        VALUES (${r.newAccountId}, ${r.number}, ${r.identityKey}, ${r.now}, ${r.now})
        ON CONFLICT (number) DO NOTHING RETURNING id`);
      let accountId: string;
      let removed: DeviceRef[] = [];
      if (created !== undefined) {
        accountId = created.id;
      } else {
        const existing = await db.get<{ id: string }>(sql`SELECT id FROM accounts WHERE number = ${r.number} FOR UPDATE`);
        if (existing === undefined) throw new Error('the account of a number vanished during its registration');
        accountId = existing.id;
        // Device rows first (see deleteQueues): waits for sends to them that are under way.
        removed = (await db.all<{ ref: number }>(sql`SELECT ref FROM devices WHERE account_id = ${accountId} ORDER BY ref FOR UPDATE`)).map((d) => d.ref as DeviceRef);
        await db.run(sql`UPDATE accounts SET identity_key = ${r.identityKey}, registered_at = ${r.now} WHERE id = ${accountId}`);
        // Queues first (see deleteQueues), then the devices with their keys by cascade.
        await deleteQueues(db, removed);
        await db.run(sql`DELETE FROM devices WHERE account_id = ${accountId}`);
        await db.run(sql`DELETE FROM presence WHERE account_id = ${accountId}`);
        await db.run(sql`DELETE FROM presence_allowed WHERE account_id = ${accountId}`);
        // Linking state goes with the old identity: codes it issued and the list it signed.
        await db.run(sql`DELETE FROM provisioning_codes WHERE account_id = ${accountId}`);
        await db.run(sql`DELETE FROM device_lists WHERE account_id = ${accountId}`);
      }
      const inserted = await db.get<{ ref: number }>(sql`
        INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at, identity_key, identity, listed)
        VALUES (${accountId}, ${1}, ${r.registrationId}, ${r.passwordHash}, ${r.deviceName}, ${r.now}, ${r.identityKey}, ${null}, ${true}) RETURNING ref`);
      if (inserted === undefined) throw new Error('INSERT ... RETURNING returned no row');
      const ref = inserted.ref;
      await initDevice(db, ref, r);
      return {
        account: { id: accountId as AccountId, number: r.number, identityKey: r.identityKey, registeredAt: r.now },
        device: {
          ref: ref as DeviceRef,
          accountId: accountId as AccountId,
          deviceId: 1 as DeviceId,
          registrationId: r.registrationId,
          passwordHash: r.passwordHash,
          identityKey: r.identityKey,
          identity: undefined,
          listed: true,
          name: r.deviceName,
          createdAt: r.now,
        },
        reregistered: created === undefined,
        removedDevices: removed,
      };
    });
  }
}
