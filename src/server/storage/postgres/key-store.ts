import type { DeviceRef } from '../../ids.js';
import type { ClaimedKeys, KeyStatus, KeyStore, KeyUpload, OneTimeKey, SetKeysResult, SignedKey } from '../stores.js';
import { Rollback, type PostgresDatabase } from './database.js';
import { sql, type PgHandle } from './sql.js';

interface SignedRow {
  key_id: number;
  public_key: Uint8Array;
  signature: Uint8Array;
}

interface OneTimeRow {
  key_id: number;
  public_key: Uint8Array;
}

const signed = (row: SignedRow | undefined): SignedKey | undefined =>
  row === undefined ? undefined : { id: row.key_id, publicKey: row.public_key, signature: row.signature };
const oneTime = (row: OneTimeRow | undefined): OneTimeKey | undefined => (row === undefined ? undefined : { id: row.key_id, publicKey: row.public_key });

/** The keys of an upload with one entry per id, the last one winning (as repeated replaces would). */
function lastById<K extends { readonly id: number }>(keys: readonly K[]): K[] {
  return [...new Map(keys.map((k) => [k.id, k])).values()];
}

async function counts(db: PgHandle, ref: DeviceRef): Promise<{ preKeys: number; kyberPreKeys: number }> {
  const row = await db.get<{ pre: number; kyber: number }>(sql`
    SELECT (SELECT COUNT(*) FROM pre_keys WHERE device_ref = ${ref}) AS pre,
           (SELECT COUNT(*) FROM kyber_pre_keys WHERE device_ref = ${ref}) AS kyber`);
  return { preKeys: row?.pre ?? 0, kyberPreKeys: row?.kyber ?? 0 };
}

/**
 * {@link KeyStore} on PostgreSQL. A claim takes each one-time key out with `DELETE ... WHERE key_id =
 * (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`: a key another transaction (any node) is claiming is
 * skipped, not waited for, so each key is handed out once and concurrent claims do not queue behind each
 * other. An upload locks its device row, so two uploads cannot both pass the stored-keys limit.
 */
export class PostgresKeyStore implements KeyStore {
  readonly #db: PostgresDatabase;

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  setKeys(ref: DeviceRef, upload: KeyUpload, maxStored: number, now: number): Promise<SetKeysResult> {
    return this.#db.transaction(async (db): Promise<SetKeysResult> => {
      // Serializes uploads of this device (NO KEY UPDATE: queue inserts, which hold KEY SHARE, go on).
      await db.run(sql`SELECT ref FROM devices WHERE ref = ${ref} FOR NO KEY UPDATE`);
      const pre = lastById(upload.preKeys);
      if (pre.length > 0) {
        await db.run(sql`
          INSERT INTO pre_keys (device_ref, key_id, public_key)
          SELECT ${ref}::bigint, k.id, k.public_key FROM unnest(${pre.map((k) => k.id)}::bigint[], ${pre.map((k) => k.publicKey)}::bytea[]) AS k (id, public_key)
          ON CONFLICT (device_ref, key_id) DO UPDATE SET public_key = excluded.public_key`);
      }
      const kyber = lastById(upload.kyberPreKeys);
      if (kyber.length > 0) {
        await db.run(sql`
          INSERT INTO kyber_pre_keys (device_ref, key_id, public_key, signature)
          SELECT ${ref}::bigint, k.id, k.public_key, k.signature
          FROM unnest(${kyber.map((k) => k.id)}::bigint[], ${kyber.map((k) => k.publicKey)}::bytea[], ${kyber.map((k) => k.signature)}::bytea[]) AS k (id, public_key, signature)
          ON CONFLICT (device_ref, key_id) DO UPDATE SET public_key = excluded.public_key, signature = excluded.signature`);
      }
      const stored = await counts(db, ref);
      // The upload is all or nothing.
      if (stored.preKeys > maxStored || stored.kyberPreKeys > maxStored) throw new Rollback<SetKeysResult>({ ok: false, reason: 'too-many-keys' });
      const s = upload.signedPreKey;
      if (s !== undefined) {
        await db.run(sql`
          INSERT INTO signed_pre_keys (device_ref, key_id, public_key, signature, uploaded_at) VALUES (${ref}, ${s.id}, ${s.publicKey}, ${s.signature}, ${now})
          ON CONFLICT (device_ref) DO UPDATE SET key_id = excluded.key_id, public_key = excluded.public_key, signature = excluded.signature, uploaded_at = excluded.uploaded_at`);
      }
      const k = upload.kyberLastResortKey;
      if (k !== undefined) {
        await db.run(sql`
          INSERT INTO kyber_last_resort_keys (device_ref, key_id, public_key, signature, uploaded_at) VALUES (${ref}, ${k.id}, ${k.publicKey}, ${k.signature}, ${now})
          ON CONFLICT (device_ref) DO UPDATE SET key_id = excluded.key_id, public_key = excluded.public_key, signature = excluded.signature, uploaded_at = excluded.uploaded_at`);
      }
      return { ok: true };
    });
  }

  async status(ref: DeviceRef): Promise<KeyStatus> {
    const row = await this.#db.read.get<{ pre: number; kyber: number; uploaded_at: number | null }>(sql`
      SELECT (SELECT COUNT(*) FROM pre_keys WHERE device_ref = ${ref}) AS pre,
             (SELECT COUNT(*) FROM kyber_pre_keys WHERE device_ref = ${ref}) AS kyber,
             (SELECT uploaded_at FROM signed_pre_keys WHERE device_ref = ${ref}) AS uploaded_at`);
    return { preKeys: row?.pre ?? 0, kyberPreKeys: row?.kyber ?? 0, signedPreKeyUploadedAt: row?.uploaded_at ?? 0 };
  }

  claim(refs: readonly DeviceRef[]): Promise<ClaimedKeys[]> {
    return this.#db.transaction(async (db) => {
      const claimed: ClaimedKeys[] = [];
      for (const ref of refs) {
        const preKey = await db.get<OneTimeRow>(sql`
          DELETE FROM pre_keys
          WHERE device_ref = ${ref} AND key_id = (SELECT key_id FROM pre_keys WHERE device_ref = ${ref} ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING key_id, public_key`);
        const kyber =
          (await db.get<SignedRow>(sql`
            DELETE FROM kyber_pre_keys
            WHERE device_ref = ${ref} AND key_id = (SELECT key_id FROM kyber_pre_keys WHERE device_ref = ${ref} ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING key_id, public_key, signature`)) ??
          (await db.get<SignedRow>(sql`SELECT key_id, public_key, signature FROM kyber_last_resort_keys WHERE device_ref = ${ref}`));
        const signedPreKey = await db.get<SignedRow>(sql`SELECT key_id, public_key, signature FROM signed_pre_keys WHERE device_ref = ${ref}`);
        claimed.push({ ref, signedPreKey: signed(signedPreKey), preKey: oneTime(preKey), kyberPreKey: signed(kyber) });
      }
      return claimed;
    });
  }
}
