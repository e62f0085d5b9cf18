import type { DeviceRef } from '../../ids.js';
import { pushSubscriptionFromRow, type PushStore, type PushSubscriptionRecord, type PushSubscriptionRow, type PutPushSubscriptionResult, type VapidKeyPair } from '../push-store.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

/**
 * {@link PushStore} on SQLite, on the database of the other stores (the subscription row references the
 * device's, so deleting the device deletes it). Reads go to the read-only connection; writes through the
 * group-commit writer.
 */
export class SqlitePushStore implements PushStore {
  readonly #reader: SqlHandle;
  readonly #writer: GroupCommitWriter;

  constructor(reader: SqlHandle, writer: GroupCommitWriter) {
    this.#reader = reader;
    this.#writer = writer;
  }

  put(s: PushSubscriptionRecord): Promise<PutPushSubscriptionResult> {
    return this.#writer.enqueue((db): PutPushSubscriptionResult => {
      // Inserted only when the device exists (with that account), in the same statement.
      const changes = db.run(sql`INSERT INTO push_subscriptions (device_ref, account_id, endpoint, p256dh, auth, updated_at)
                                 SELECT ref, account_id, ${s.endpoint}, ${s.p256dh}, ${s.auth}, ${s.updatedAt} FROM devices
                                 WHERE ref = ${s.ref} AND account_id = ${s.accountId}
                                 ON CONFLICT (device_ref) DO UPDATE SET endpoint = excluded.endpoint, p256dh = excluded.p256dh, auth = excluded.auth,
                                   updated_at = excluded.updated_at`).changes;
      return changes > 0 ? { kind: 'stored' } : { kind: 'device-gone' };
    });
  }

  async get(ref: DeviceRef): Promise<PushSubscriptionRecord | undefined> {
    const row = this.#reader.get<PushSubscriptionRow>(sql`SELECT device_ref, account_id, endpoint, p256dh, auth, updated_at FROM push_subscriptions WHERE device_ref = ${ref}`);
    return row === undefined ? undefined : pushSubscriptionFromRow(row);
  }

  delete(ref: DeviceRef, endpoint?: string): Promise<boolean> {
    return this.#writer.enqueue(
      (db) =>
        (endpoint === undefined
          ? db.run(sql`DELETE FROM push_subscriptions WHERE device_ref = ${ref}`)
          : db.run(sql`DELETE FROM push_subscriptions WHERE device_ref = ${ref} AND endpoint = ${endpoint}`)
        ).changes > 0,
    );
  }

  vapidKeys(candidate: VapidKeyPair, now: number): Promise<VapidKeyPair> {
    return this.#writer.enqueue((db) => {
      db.run(sql`INSERT INTO push_vapid (id, public_key, private_key, created_at) VALUES (1, ${candidate.publicKey}, ${candidate.privateKey}, ${now})
                 ON CONFLICT (id) DO NOTHING`);
      const row = db.get<{ public_key: string; private_key: string }>(sql`SELECT public_key, private_key FROM push_vapid WHERE id = 1`);
      if (row === undefined) throw new Error('push_vapid: no row after insert');
      return { publicKey: row.public_key, privateKey: row.private_key };
    });
  }
}
