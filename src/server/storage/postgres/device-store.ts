import { timingSafeEqual } from 'node:crypto';
import type { AccountId, DeviceId, DeviceRef } from '../../ids.js';
import type {
  DeviceStore,
  LinkResult,
  NewDeviceList,
  NewLinkedDevice,
  ProvisioningCodeRecord,
  PutDeviceListResult,
  ReserveResult,
  StoredDeviceList,
} from '../stores.js';
import { initDevice, toDevice, type DeviceRow } from './account-store.js';
import type { PostgresDatabase } from './database.js';
import { deleteQueues } from './message-store.js';
import { sql, type PgHandle } from './sql.js';

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Device ids a companion may get: 2 and up, the first free one. */
const FIRST_COMPANION_ID = 2;

/** Locks the account row for the rest of the transaction; its identity key, or undefined when there is no such account. */
async function lockAccount(db: PgHandle, accountId: AccountId): Promise<Uint8Array | undefined> {
  return (await db.get<{ identity_key: Uint8Array }>(sql`SELECT identity_key FROM accounts WHERE id = ${accountId} FOR UPDATE`))?.identity_key;
}

/**
 * {@link DeviceStore} on PostgreSQL. Every change is one transaction that first locks the account row
 * (as registration does), then reads what it checks: two nodes reserving ids, linking with one code,
 * storing lists or removing devices of one account are decided one after the other. The account is
 * always locked before any code or device row, so these paths cannot deadlock with each other.
 */
export class PostgresDeviceStore implements DeviceStore {
  readonly #db: PostgresDatabase;

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  reserve(accountId: AccountId, codeHash: Uint8Array, expiresAt: number, maxCompanions: number, now: number): Promise<ReserveResult> {
    return this.#db.transaction(async (db): Promise<ReserveResult> => {
      await lockAccount(db, accountId);
      const taken = new Set<number>([
        ...(await db.all<{ device_id: number }>(sql`SELECT device_id FROM devices WHERE account_id = ${accountId}`)).map((r) => r.device_id),
        ...(
          await db.all<{ device_id: number }>(sql`SELECT device_id FROM provisioning_codes WHERE account_id = ${accountId} AND NOT used AND expires_at > ${now}`)
        ).map((r) => r.device_id),
      ]);
      const companions = [...taken].filter((id) => id >= FIRST_COMPANION_ID).length;
      if (companions >= maxCompanions) return { kind: 'full' };
      let deviceId = FIRST_COMPANION_ID;
      while (taken.has(deviceId)) deviceId++;
      await db.run(sql`DELETE FROM provisioning_codes WHERE account_id = ${accountId} AND expires_at <= ${now}`);
      await db.run(sql`INSERT INTO provisioning_codes (code_hash, account_id, device_id, expires_at, used)
                       VALUES (${codeHash}, ${accountId}, ${deviceId}, ${expiresAt}, ${false})`);
      return { kind: 'reserved', deviceId: deviceId as DeviceId };
    });
  }

  async pendingCode(codeHash: Uint8Array, now: number): Promise<ProvisioningCodeRecord | undefined> {
    const row = await this.#db.read.get<{ account_id: string; device_id: number; expires_at: number }>(
      sql`SELECT account_id, device_id, expires_at FROM provisioning_codes WHERE code_hash = ${codeHash} AND NOT used AND expires_at > ${now}`,
    );
    return row === undefined ? undefined : { accountId: row.account_id as AccountId, deviceId: row.device_id as DeviceId, expiresAt: row.expires_at };
  }

  link(d: NewLinkedDevice): Promise<LinkResult> {
    return this.#db.transaction(async (db): Promise<LinkResult> => {
      // The account first: of two links with one code (any nodes), the second waits here and then finds the code used.
      const accountKey = await lockAccount(db, d.accountId);
      if (accountKey === undefined || !sameBytes(accountKey, d.accountKey)) return { kind: 'invalid-code' };
      const code = await db.get<{ account_id: string; device_id: number }>(
        sql`SELECT account_id, device_id FROM provisioning_codes WHERE code_hash = ${d.codeHash} AND NOT used AND expires_at > ${d.now} FOR UPDATE`,
      );
      if (code === undefined || code.account_id !== d.accountId || code.device_id !== d.deviceId) return { kind: 'invalid-code' };
      const existing = (await db.all<{ device_id: number }>(sql`SELECT device_id FROM devices WHERE account_id = ${d.accountId}`)).map((r) => r.device_id);
      if (existing.includes(d.deviceId)) return { kind: 'invalid-code' };
      if (existing.filter((id) => id >= FIRST_COMPANION_ID).length >= d.maxCompanions) return { kind: 'full' };
      await db.run(sql`UPDATE provisioning_codes SET used = ${true} WHERE code_hash = ${d.codeHash}`);
      const row = await db.get<DeviceRow>(sql`
        INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at, identity_key, identity, listed)
        VALUES (${d.accountId}, ${d.deviceId}, ${d.registrationId}, ${d.passwordHash}, ${d.name}, ${d.now}, ${d.identityKey}, ${d.identity}, ${false})
        RETURNING ref, account_id, device_id, registration_id, password_hash, identity_key, identity, listed, name, created_at`);
      if (row === undefined) throw new Error('INSERT ... RETURNING returned no row');
      await initDevice(db, row.ref, d);
      return { kind: 'linked', device: toDevice(row) };
    });
  }

  async remove(accountId: AccountId, deviceId: DeviceId): Promise<DeviceRef | undefined> {
    if (deviceId < FIRST_COMPANION_ID) return undefined;
    return this.#db.transaction(async (db): Promise<DeviceRef | undefined> => {
      await lockAccount(db, accountId);
      // The device row first (see deleteQueues): waits for sends to it that are under way.
      const row = await db.get<{ ref: number }>(sql`SELECT ref FROM devices WHERE account_id = ${accountId} AND device_id = ${deviceId} FOR UPDATE`);
      if (row === undefined) return undefined;
      // The queue first (see deleteQueues), then the device with its keys by cascade.
      await deleteQueues(db, [row.ref]);
      await db.run(sql`DELETE FROM devices WHERE ref = ${row.ref}`);
      return row.ref as DeviceRef;
    });
  }

  async deviceList(accountId: AccountId): Promise<StoredDeviceList | undefined> {
    const row = await this.#db.read.get<{ version: number; signed_list: Uint8Array; updated_at: number }>(
      sql`SELECT version, signed_list, updated_at FROM device_lists WHERE account_id = ${accountId}`,
    );
    return row === undefined ? undefined : { version: row.version, signedList: row.signed_list, updatedAt: row.updated_at };
  }

  putDeviceList(accountId: AccountId, list: NewDeviceList): Promise<PutDeviceListResult> {
    return this.#db.transaction(async (db): Promise<PutDeviceListResult> => {
      const accountKey = await lockAccount(db, accountId);
      if (accountKey === undefined || !sameBytes(accountKey, list.accountKey)) return { kind: 'mismatch' };
      const current = await db.get<{ version: number }>(sql`SELECT version FROM device_lists WHERE account_id = ${accountId}`);
      if (current !== undefined && current.version >= list.version) return { kind: 'stale-version', current: current.version };
      const devices = new Map(
        (await db.all<{ device_id: number; identity_key: Uint8Array }>(sql`SELECT device_id, identity_key FROM devices WHERE account_id = ${accountId}`)).map((r) => [
          r.device_id,
          r.identity_key,
        ]),
      );
      for (const [deviceId, identityKey] of list.devices) {
        const stored = devices.get(deviceId);
        if (deviceId < FIRST_COMPANION_ID || stored === undefined || !sameBytes(stored, identityKey)) return { kind: 'mismatch' };
      }
      await db.run(sql`
        INSERT INTO device_lists (account_id, version, signed_list, updated_at) VALUES (${accountId}, ${list.version}, ${list.signedList}, ${list.now})
        ON CONFLICT (account_id) DO UPDATE SET version = excluded.version, signed_list = excluded.signed_list, updated_at = excluded.updated_at`);
      await db.run(sql`
        UPDATE devices SET listed = (device_id = ANY(${[...list.devices.keys()]}::integer[]))
        WHERE account_id = ${accountId} AND device_id >= ${FIRST_COMPANION_ID}`);
      return { kind: 'stored' };
    });
  }

  async expire(now: number): Promise<number> {
    return this.#db.read.run(sql`DELETE FROM provisioning_codes WHERE expires_at <= ${now}`);
  }
}
