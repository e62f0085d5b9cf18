import type { DeviceRef } from '../../ids.js';
import { pushSubscriptionFromRow, type PushStore, type PushSubscriptionRecord, type PushSubscriptionRow, type PutPushSubscriptionResult, type VapidKeyPair } from '../push-store.js';
import type { PostgresDatabase } from './database.js';
import { sql } from './sql.js';

/**
 * {@link PushStore} on PostgreSQL (the semantics of `sqlite/push-store.ts`). Every method is one statement:
 * the subscription is inserted only when its device row exists (a device deleted on another node at the
 * same moment either takes the row with it, through the foreign key's cascade, or makes the insert find no
 * device); the VAPID row is inserted with `ON CONFLICT DO NOTHING`, so of nodes starting at once exactly
 * one candidate is stored and every node reads that one.
 */
export class PostgresPushStore implements PushStore {
  readonly #db: PostgresDatabase;

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  async put(s: PushSubscriptionRecord): Promise<PutPushSubscriptionResult> {
    const changes = await this.#db.read.run(sql`
      INSERT INTO push_subscriptions (device_ref, account_id, endpoint, p256dh, auth, updated_at)
      SELECT ref, account_id, ${s.endpoint}::text, ${s.p256dh}::bytea, ${s.auth}::bytea, ${s.updatedAt}::bigint FROM devices WHERE ref = ${s.ref} AND account_id = ${s.accountId}
      ON CONFLICT (device_ref) DO UPDATE SET endpoint = excluded.endpoint, p256dh = excluded.p256dh, auth = excluded.auth, updated_at = excluded.updated_at`);
    return changes > 0 ? { kind: 'stored' } : { kind: 'device-gone' };
  }

  async get(ref: DeviceRef): Promise<PushSubscriptionRecord | undefined> {
    const row = await this.#db.read.get<PushSubscriptionRow>(sql`SELECT device_ref, account_id, endpoint, p256dh, auth, updated_at FROM push_subscriptions WHERE device_ref = ${ref}`);
    return row === undefined ? undefined : pushSubscriptionFromRow(row);
  }

  async delete(ref: DeviceRef, endpoint?: string): Promise<boolean> {
    const changes =
      endpoint === undefined
        ? await this.#db.read.run(sql`DELETE FROM push_subscriptions WHERE device_ref = ${ref}`)
        : await this.#db.read.run(sql`DELETE FROM push_subscriptions WHERE device_ref = ${ref} AND endpoint = ${endpoint}`);
    return changes > 0;
  }

  async vapidKeys(candidate: VapidKeyPair, now: number): Promise<VapidKeyPair> {
    await this.#db.read.run(sql`INSERT INTO push_vapid (id, public_key, private_key, created_at) VALUES (1, ${candidate.publicKey}, ${candidate.privateKey}, ${now})
                                ON CONFLICT (id) DO NOTHING`);
    const row = await this.#db.read.get<{ public_key: string; private_key: string }>(sql`SELECT public_key, private_key FROM push_vapid WHERE id = 1`);
    if (row === undefined) throw new Error('push_vapid: no row after insert');
    return { publicKey: row.public_key, privateKey: row.private_key };
  }
}
