import type { AccountId, DeviceId, DeviceRef, PhoneNumber } from '../../ids.js';
import type { AccountRecord, AccountStore, DeviceRecord, NewRegistration, RegistrationResult } from '../stores.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

interface AccountRow {
  id: string;
  number: string;
  identity_key: Uint8Array;
  registered_at: number;
}

interface DeviceRow {
  ref: number;
  account_id: string;
  device_id: number;
  registration_id: number;
  password_hash: Uint8Array;
  identity_key: Uint8Array;
  identity: Uint8Array | null;
  listed: number;
  name: Uint8Array;
  created_at: number;
}

const toAccount = (row: AccountRow): AccountRecord => ({
  id: row.id as AccountId,
  number: row.number as PhoneNumber,
  identityKey: row.identity_key,
  registeredAt: row.registered_at,
});

export const toDevice = (row: DeviceRow): DeviceRecord => ({
  ref: row.ref as DeviceRef,
  accountId: row.account_id as AccountId,
  deviceId: row.device_id as DeviceId,
  registrationId: row.registration_id,
  passwordHash: row.password_hash,
  identityKey: row.identity_key,
  identity: row.identity ?? undefined,
  listed: row.device_id === 1 || row.listed !== 0,
  name: row.name,
  createdAt: row.created_at,
});

export type { DeviceRow };

/** Most accounts whose record and devices are cached; past it the cache starts over. */
const MAX_CACHED = 100_000;

/**
 * {@link AccountStore} on SQLite. Accounts and their device lists are cached in memory: every send and
 * every authentication reads them, and this store is the only writer of those rows (`register` drops
 * the entry of the account it changes, inside its write job, so no read can see the old rows after the
 * commit). A store shared by several processes (PostgreSQL) would need to invalidate through the bus.
 */
export class SqliteAccountStore implements AccountStore {
  readonly #reader: SqlHandle;
  readonly #writer: GroupCommitWriter;
  readonly #onDevicesRemoved: (refs: readonly DeviceRef[]) => void;
  #accounts = new Map<AccountId, AccountRecord | null>();
  #devices = new Map<AccountId, readonly DeviceRecord[]>();

  /** `onDevicesRemoved` runs inside the write job that deleted devices (the message store drops caches). */
  constructor(reader: SqlHandle, writer: GroupCommitWriter, onDevicesRemoved: (refs: readonly DeviceRef[]) => void = () => undefined) {
    this.#reader = reader;
    this.#writer = writer;
    this.#onDevicesRemoved = onDevicesRemoved;
  }

  async byId(id: AccountId): Promise<AccountRecord | undefined> {
    let account = this.#accounts.get(id);
    if (account === undefined) {
      const row = this.#reader.get<AccountRow>(sql`SELECT id, number, identity_key, registered_at FROM accounts WHERE id = ${id}`);
      account = row === undefined ? null : toAccount(row);
      if (this.#accounts.size >= MAX_CACHED) this.#accounts = new Map();
      this.#accounts.set(id, account);
    }
    return account ?? undefined;
  }

  async byNumber(number: PhoneNumber): Promise<AccountRecord | undefined> {
    const row = this.#reader.get<AccountRow>(sql`SELECT id, number, identity_key, registered_at FROM accounts WHERE number = ${number}`);
    return row === undefined ? undefined : toAccount(row);
  }

  #deviceList(id: AccountId): readonly DeviceRecord[] {
    let devices = this.#devices.get(id);
    if (devices === undefined) {
      devices = this.#reader
        .all<DeviceRow>(sql`SELECT ref, account_id, device_id, registration_id, password_hash, identity_key, identity, listed, name, created_at
                            FROM devices WHERE account_id = ${id} ORDER BY device_id`)
        .map(toDevice);
      if (this.#devices.size >= MAX_CACHED) this.#devices = new Map();
      this.#devices.set(id, devices);
    }
    return devices;
  }

  /**
   * Drops the cached rows of an account. Called by the device store inside every write job that changes
   * the account's devices (the commit follows synchronously, so no read can refill the cache with old rows).
   */
  forget(id: AccountId): void {
    this.#accounts.delete(id);
    this.#devices.delete(id);
  }

  async devices(id: AccountId): Promise<DeviceRecord[]> {
    return [...this.#deviceList(id)];
  }

  async device(id: AccountId, deviceId: DeviceId): Promise<DeviceRecord | undefined> {
    return this.#deviceList(id).find((d) => d.deviceId === deviceId);
  }

  register(r: NewRegistration): Promise<RegistrationResult> {
    return this.#writer.enqueue((db) => {
      const existing = db.get<{ id: string }>(sql`SELECT id FROM accounts WHERE number = ${r.number}`);
      // Drop the cached rows now: the commit that follows is synchronous with this job, so no read
      // can refill the cache with the old rows in between.
      this.#accounts.delete((existing?.id ?? r.newAccountId) as AccountId);
      this.#devices.delete((existing?.id ?? r.newAccountId) as AccountId);
      let accountId: string;
      let removed: DeviceRef[] = [];
      if (existing === undefined) {
        accountId = r.newAccountId;
        db.run(sql`INSERT INTO accounts (id, number, identity_key, created_at, registered_at)
                   VALUES (${accountId}, ${r.number}, ${r.identityKey}, ${r.now}, ${r.now})`);
      } else {
        accountId = existing.id;
        removed = db.all<{ ref: number }>(sql`SELECT ref FROM devices WHERE account_id = ${accountId}`).map((d) => d.ref as DeviceRef);
        db.run(sql`UPDATE accounts SET identity_key = ${r.identityKey}, registered_at = ${r.now} WHERE id = ${accountId}`);
        // Cascades to the devices' keys and queues.
        db.run(sql`DELETE FROM devices WHERE account_id = ${accountId}`);
        db.run(sql`DELETE FROM presence WHERE account_id = ${accountId}`);
        db.run(sql`DELETE FROM presence_allowed WHERE account_id = ${accountId}`);
        // Linking state goes with the old identity: codes it issued and the list it signed.
        db.run(sql`DELETE FROM provisioning_codes WHERE account_id = ${accountId}`);
        db.run(sql`DELETE FROM device_lists WHERE account_id = ${accountId}`);
        this.#onDevicesRemoved(removed);
      }
      const ref = db.get<{ ref: number }>(sql`
        INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at, identity_key, listed)
        VALUES (${accountId}, ${1}, ${r.registrationId}, ${r.passwordHash}, ${r.deviceName}, ${r.now}, ${r.identityKey}, ${1}) RETURNING ref`)?.ref as number;
      const s = r.signedPreKey;
      db.run(sql`INSERT INTO signed_pre_keys (device_ref, key_id, public_key, signature, uploaded_at)
                 VALUES (${ref}, ${s.id}, ${s.publicKey}, ${s.signature}, ${r.now})`);
      const k = r.kyberLastResortKey;
      db.run(sql`INSERT INTO kyber_last_resort_keys (device_ref, key_id, public_key, signature, uploaded_at)
                 VALUES (${ref}, ${k.id}, ${k.publicKey}, ${k.signature}, ${r.now})`);
      const result: RegistrationResult = {
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
        reregistered: existing !== undefined,
        removedDevices: removed,
      };
      return result;
    });
  }
}
