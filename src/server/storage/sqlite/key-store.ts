import type { DeviceRef } from '../../ids.js';
import type { ClaimedKeys, KeyStatus, KeyStore, KeyUpload, OneTimeKey, SetKeysResult, SignedKey } from '../stores.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

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

/** Thrown inside a write job to roll its savepoint back; never leaves this module. */
class TooManyKeys extends Error {}

/** {@link KeyStore} on SQLite. */
export class SqliteKeyStore implements KeyStore {
  readonly #reader: SqlHandle;
  readonly #writer: GroupCommitWriter;

  constructor(reader: SqlHandle, writer: GroupCommitWriter) {
    this.#reader = reader;
    this.#writer = writer;
  }

  async setKeys(ref: DeviceRef, upload: KeyUpload, maxStored: number, now: number): Promise<SetKeysResult> {
    try {
      await this.#writer.enqueue((db) => {
        for (const k of upload.preKeys) {
          db.run(sql`INSERT OR REPLACE INTO pre_keys (device_ref, key_id, public_key) VALUES (${ref}, ${k.id}, ${k.publicKey})`);
        }
        for (const k of upload.kyberPreKeys) {
          db.run(sql`INSERT OR REPLACE INTO kyber_pre_keys (device_ref, key_id, public_key, signature)
                     VALUES (${ref}, ${k.id}, ${k.publicKey}, ${k.signature})`);
        }
        const counts = this.#counts(db, ref);
        // Throwing rolls back this job's savepoint: the upload is all or nothing.
        if (counts.preKeys > maxStored || counts.kyberPreKeys > maxStored) throw new TooManyKeys();
        const s = upload.signedPreKey;
        if (s !== undefined) {
          db.run(sql`INSERT OR REPLACE INTO signed_pre_keys (device_ref, key_id, public_key, signature, uploaded_at)
                     VALUES (${ref}, ${s.id}, ${s.publicKey}, ${s.signature}, ${now})`);
        }
        const k = upload.kyberLastResortKey;
        if (k !== undefined) {
          db.run(sql`INSERT OR REPLACE INTO kyber_last_resort_keys (device_ref, key_id, public_key, signature, uploaded_at)
                     VALUES (${ref}, ${k.id}, ${k.publicKey}, ${k.signature}, ${now})`);
        }
      });
      return { ok: true };
    } catch (err) {
      if (err instanceof TooManyKeys) return { ok: false, reason: 'too-many-keys' };
      throw err;
    }
  }

  #counts(db: SqlHandle, ref: DeviceRef): { preKeys: number; kyberPreKeys: number } {
    const row = db.get<{ pre: number; kyber: number }>(sql`
      SELECT (SELECT COUNT(*) FROM pre_keys WHERE device_ref = ${ref}) AS pre,
             (SELECT COUNT(*) FROM kyber_pre_keys WHERE device_ref = ${ref}) AS kyber`);
    return { preKeys: row?.pre ?? 0, kyberPreKeys: row?.kyber ?? 0 };
  }

  async status(ref: DeviceRef): Promise<KeyStatus> {
    const counts = this.#counts(this.#reader, ref);
    const uploaded = this.#reader.get<{ uploaded_at: number }>(sql`SELECT uploaded_at FROM signed_pre_keys WHERE device_ref = ${ref}`);
    return { ...counts, signedPreKeyUploadedAt: uploaded?.uploaded_at ?? 0 };
  }

  claim(refs: readonly DeviceRef[]): Promise<ClaimedKeys[]> {
    // One write transaction: DELETE ... RETURNING takes each one-time key out as it is read, so two
    // claims (even in the same batch) can never return the same key.
    return this.#writer.enqueue((db) =>
      refs.map((ref): ClaimedKeys => {
        const preKey = db.get<OneTimeRow>(sql`
          DELETE FROM pre_keys
          WHERE device_ref = ${ref} AND key_id = (SELECT MIN(key_id) FROM pre_keys WHERE device_ref = ${ref})
          RETURNING key_id, public_key`);
        const kyber =
          db.get<SignedRow>(sql`
            DELETE FROM kyber_pre_keys
            WHERE device_ref = ${ref} AND key_id = (SELECT MIN(key_id) FROM kyber_pre_keys WHERE device_ref = ${ref})
            RETURNING key_id, public_key, signature`) ??
          db.get<SignedRow>(sql`SELECT key_id, public_key, signature FROM kyber_last_resort_keys WHERE device_ref = ${ref}`);
        const signedPreKey = db.get<SignedRow>(sql`SELECT key_id, public_key, signature FROM signed_pre_keys WHERE device_ref = ${ref}`);
        return { ref, signedPreKey: signed(signedPreKey), preKey: oneTime(preKey), kyberPreKey: signed(kyber) };
      }),
    );
  }
}
