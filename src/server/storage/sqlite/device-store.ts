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
import { toDevice, type DeviceRow } from './account-store.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

/** What the device store tells the caches of the other stores, inside the write job that changed things. */
export interface DeviceStoreHooks {
  /** The devices of this account changed (the account store drops its cached rows). */
  readonly accountChanged: (accountId: AccountId) => void;
  /** These devices were deleted (the message store drops its depth caches). */
  readonly devicesRemoved: (refs: readonly DeviceRef[]) => void;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Device ids a companion may get: 2 and up, the first free one. */
const FIRST_COMPANION_ID = 2;

/**
 * {@link DeviceStore} on SQLite. Every change is one write job of the group-commit writer (durable before
 * it resolves) that reads what it checks inside the job, so checks and writes cannot interleave with
 * another change: two links with one code, or a list naming a device being removed, are decided in order.
 */
export class SqliteDeviceStore implements DeviceStore {
  readonly #reader: SqlHandle;
  readonly #writer: GroupCommitWriter;
  readonly #hooks: DeviceStoreHooks;

  constructor(reader: SqlHandle, writer: GroupCommitWriter, hooks: DeviceStoreHooks) {
    this.#reader = reader;
    this.#writer = writer;
    this.#hooks = hooks;
  }

  reserve(accountId: AccountId, codeHash: Uint8Array, expiresAt: number, maxCompanions: number, now: number): Promise<ReserveResult> {
    return this.#writer.enqueue((db): ReserveResult => {
      const taken = new Set<number>([
        ...db.all<{ device_id: number }>(sql`SELECT device_id FROM devices WHERE account_id = ${accountId}`).map((r) => r.device_id),
        ...db
          .all<{ device_id: number }>(sql`SELECT device_id FROM provisioning_codes WHERE account_id = ${accountId} AND used = 0 AND expires_at > ${now}`)
          .map((r) => r.device_id),
      ]);
      const companions = [...taken].filter((id) => id >= FIRST_COMPANION_ID).length;
      if (companions >= maxCompanions) return { kind: 'full' };
      let deviceId = FIRST_COMPANION_ID;
      while (taken.has(deviceId)) deviceId++;
      db.run(sql`DELETE FROM provisioning_codes WHERE account_id = ${accountId} AND expires_at <= ${now}`);
      db.run(sql`INSERT INTO provisioning_codes (code_hash, account_id, device_id, expires_at, used)
                 VALUES (${codeHash}, ${accountId}, ${deviceId}, ${expiresAt}, ${0})`);
      return { kind: 'reserved', deviceId: deviceId as DeviceId };
    });
  }

  async pendingCode(codeHash: Uint8Array, now: number): Promise<ProvisioningCodeRecord | undefined> {
    const row = this.#reader.get<{ account_id: string; device_id: number; expires_at: number }>(
      sql`SELECT account_id, device_id, expires_at FROM provisioning_codes WHERE code_hash = ${codeHash} AND used = 0 AND expires_at > ${now}`,
    );
    return row === undefined ? undefined : { accountId: row.account_id as AccountId, deviceId: row.device_id as DeviceId, expiresAt: row.expires_at };
  }

  link(d: NewLinkedDevice): Promise<LinkResult> {
    return this.#writer.enqueue((db): LinkResult => {
      const code = db.get<{ account_id: string; device_id: number }>(
        sql`SELECT account_id, device_id FROM provisioning_codes WHERE code_hash = ${d.codeHash} AND used = 0 AND expires_at > ${d.now}`,
      );
      if (code === undefined || code.account_id !== d.accountId || code.device_id !== d.deviceId) return { kind: 'invalid-code' };
      const account = db.get<{ identity_key: Uint8Array }>(sql`SELECT identity_key FROM accounts WHERE id = ${d.accountId}`);
      if (account === undefined || !sameBytes(account.identity_key, d.accountKey)) return { kind: 'invalid-code' };
      const existing = db.all<{ device_id: number }>(sql`SELECT device_id FROM devices WHERE account_id = ${d.accountId}`).map((r) => r.device_id);
      if (existing.includes(d.deviceId)) return { kind: 'invalid-code' };
      if (existing.filter((id) => id >= FIRST_COMPANION_ID).length >= d.maxCompanions) return { kind: 'full' };
      // Used once: a second link with this code (even in the same batch) finds it used.
      db.run(sql`UPDATE provisioning_codes SET used = ${1} WHERE code_hash = ${d.codeHash}`);
      this.#hooks.accountChanged(d.accountId);
      const row = db.get<DeviceRow>(sql`
        INSERT INTO devices (account_id, device_id, registration_id, password_hash, name, created_at, identity_key, identity, listed)
        VALUES (${d.accountId}, ${d.deviceId}, ${d.registrationId}, ${d.passwordHash}, ${d.name}, ${d.now}, ${d.identityKey}, ${d.identity}, ${0})
        RETURNING ref, account_id, device_id, registration_id, password_hash, identity_key, identity, listed, name, created_at`) as DeviceRow;
      const s = d.signedPreKey;
      db.run(sql`INSERT INTO signed_pre_keys (device_ref, key_id, public_key, signature, uploaded_at)
                 VALUES (${row.ref}, ${s.id}, ${s.publicKey}, ${s.signature}, ${d.now})`);
      const k = d.kyberLastResortKey;
      db.run(sql`INSERT INTO kyber_last_resort_keys (device_ref, key_id, public_key, signature, uploaded_at)
                 VALUES (${row.ref}, ${k.id}, ${k.publicKey}, ${k.signature}, ${d.now})`);
      return { kind: 'linked', device: toDevice(row) };
    });
  }

  remove(accountId: AccountId, deviceId: DeviceId): Promise<DeviceRef | undefined> {
    if (deviceId < FIRST_COMPANION_ID) return Promise.resolve(undefined);
    return this.#writer.enqueue((db): DeviceRef | undefined => {
      const row = db.get<{ ref: number }>(sql`SELECT ref FROM devices WHERE account_id = ${accountId} AND device_id = ${deviceId}`);
      if (row === undefined) return undefined;
      const ref = row.ref as DeviceRef;
      this.#hooks.accountChanged(accountId);
      // Cascades to the device's keys and queue (and the payload references of its queue rows).
      db.run(sql`DELETE FROM devices WHERE ref = ${ref}`);
      this.#hooks.devicesRemoved([ref]);
      return ref;
    });
  }

  async deviceList(accountId: AccountId): Promise<StoredDeviceList | undefined> {
    const row = this.#reader.get<{ version: number; signed_list: Uint8Array; updated_at: number }>(
      sql`SELECT version, signed_list, updated_at FROM device_lists WHERE account_id = ${accountId}`,
    );
    return row === undefined ? undefined : { version: row.version, signedList: row.signed_list, updatedAt: row.updated_at };
  }

  putDeviceList(accountId: AccountId, list: NewDeviceList): Promise<PutDeviceListResult> {
    return this.#writer.enqueue((db): PutDeviceListResult => {
      const account = db.get<{ identity_key: Uint8Array }>(sql`SELECT identity_key FROM accounts WHERE id = ${accountId}`);
      if (account === undefined || !sameBytes(account.identity_key, list.accountKey)) return { kind: 'mismatch' };
      const current = db.get<{ version: number }>(sql`SELECT version FROM device_lists WHERE account_id = ${accountId}`);
      if (current !== undefined && current.version >= list.version) return { kind: 'stale-version', current: current.version };
      const devices = new Map(
        db.all<{ device_id: number; identity_key: Uint8Array }>(sql`SELECT device_id, identity_key FROM devices WHERE account_id = ${accountId}`).map((r) => [r.device_id, r.identity_key]),
      );
      for (const [deviceId, identityKey] of list.devices) {
        const stored = devices.get(deviceId);
        if (deviceId < FIRST_COMPANION_ID || stored === undefined || !sameBytes(stored, identityKey)) return { kind: 'mismatch' };
      }
      this.#hooks.accountChanged(accountId);
      db.run(sql`
        INSERT INTO device_lists (account_id, version, signed_list, updated_at) VALUES (${accountId}, ${list.version}, ${list.signedList}, ${list.now})
        ON CONFLICT (account_id) DO UPDATE SET version = excluded.version, signed_list = excluded.signed_list, updated_at = excluded.updated_at`);
      db.run(sql`UPDATE devices SET listed = ${0} WHERE account_id = ${accountId} AND device_id >= ${FIRST_COMPANION_ID}`);
      for (const deviceId of list.devices.keys()) {
        db.run(sql`UPDATE devices SET listed = ${1} WHERE account_id = ${accountId} AND device_id = ${deviceId}`);
      }
      return { kind: 'stored' };
    });
  }

  expire(now: number): Promise<number> {
    return this.#writer.enqueue((db) => db.run(sql`DELETE FROM provisioning_codes WHERE expires_at <= ${now}`).changes);
  }
}
