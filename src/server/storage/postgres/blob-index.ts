import type { AccountId, DeviceRef } from '../../ids.js';
import type { BlobAddResult, BlobFetchRegistration, BlobIndex, BlobRecord, BlobUploadRecord } from '../stores.js';
import type { PostgresDatabase } from './database.js';
import { LockClass, lockExclusive } from './locks.js';
import { sql, type PgHandle } from './sql.js';

interface BlobRow {
  id: string;
  account_id: string;
  size: number;
  created_at: number;
}

interface UploadRow {
  id: string;
  blob_id: string | null;
  account_id: string;
  length: number;
  updated_at: number;
}

const toUpload = (row: UploadRow): BlobUploadRecord => ({ id: row.id, blobId: row.blob_id ?? undefined, accountId: row.account_id as AccountId, length: row.length, updatedAt: row.updated_at });
const toRecord = (row: BlobRow): BlobRecord => ({ id: row.id, accountId: row.account_id as AccountId, size: row.size, createdAt: row.created_at });

/**
 * Inside a message transaction: registers `refs` (the devices the envelopes were queued for) as pending
 * fetchers of each named blob that is stored and created from `notBefore` on, and moves the blob's mark
 * (last registration) to `now`. The blobs are locked `FOR KEY SHARE` first, so none can be deleted
 * (expiry, `expireFetched`) before this transaction commits. Unknown and expired ids are skipped.
 */
export async function registerFetchers(db: PgHandle, registration: BlobFetchRegistration, refs: readonly DeviceRef[], now: number): Promise<void> {
  const blobIds = [...new Set(registration.blobIds)].sort();
  if (refs.length === 0 || blobIds.length === 0) return;
  const found = (
    await db.all<{ id: string }>(sql`SELECT id FROM blobs WHERE id = ANY(${blobIds}::text[]) AND created_at >= ${registration.notBefore} ORDER BY id FOR KEY SHARE`)
  ).map((r) => r.id);
  if (found.length === 0) return;
  const devices = [...new Set(refs)].sort((a, b) => a - b);
  await db.run(sql`
    INSERT INTO blob_fetch_marks (blob_id, last_registered_at) SELECT b, ${now}::bigint FROM unnest(${found}::text[]) AS b
    ON CONFLICT (blob_id) DO UPDATE SET last_registered_at = GREATEST(blob_fetch_marks.last_registered_at, excluded.last_registered_at)`);
  await db.run(sql`
    INSERT INTO blob_fetches (blob_id, device_ref, registered_at)
    SELECT b, d, ${now}::bigint FROM unnest(${found}::text[]) AS b CROSS JOIN unnest(${devices}::bigint[]) AS d
    ON CONFLICT (blob_id, device_ref) DO UPDATE SET registered_at = excluded.registered_at`);
}

/** Bytes of the account's blobs (all, or created from `notBefore` on) plus the lengths of its uploads in progress. */
async function used(db: PgHandle, accountId: AccountId, notBefore: number): Promise<number> {
  const row = await db.get<{ n: number }>(sql`
    SELECT (SELECT COALESCE(SUM(size), 0) FROM blobs WHERE account_id = ${accountId} AND created_at >= ${notBefore})::bigint
         + (SELECT COALESCE(SUM(length), 0) FROM blob_uploads WHERE account_id = ${accountId})::bigint AS n`);
  return row?.n ?? 0;
}

/** Restarts the expiry of a stored blob; its record (with the new time), or undefined when there is none. */
async function touchBlob(db: PgHandle, record: BlobRecord): Promise<BlobAddResult | undefined> {
  const row = await db.get<BlobRow>(sql`UPDATE blobs SET created_at = ${record.createdAt} WHERE id = ${record.id} RETURNING id, account_id, size, created_at`);
  return row === undefined ? undefined : { kind: 'exists', record: toRecord(row) };
}

/** Inserts a blob record unless another transaction just did (then restarts that one's expiry). */
async function insertBlob(db: PgHandle, record: BlobRecord): Promise<BlobAddResult> {
  const inserted = await db.get<{ id: string }>(sql`
    INSERT INTO blobs (id, account_id, size, created_at) VALUES (${record.id}, ${record.accountId}, ${record.size}, ${record.createdAt})
    ON CONFLICT (id) DO NOTHING RETURNING id`);
  if (inserted !== undefined) return { kind: 'added' };
  const touched = await touchBlob(db, record);
  if (touched === undefined) throw new Error('a conflicting blob record vanished');
  return touched;
}

/**
 * {@link BlobIndex} on PostgreSQL. Each quota check and the insert it allows are one transaction holding
 * the account's advisory quota lock, so uploads of one account on several nodes cannot together pass
 * its quota.
 */
export class PostgresBlobIndex implements BlobIndex {
  readonly #db: PostgresDatabase;

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  async get(id: string, notBefore: number): Promise<BlobRecord | undefined> {
    const row = await this.#db.read.get<BlobRow>(sql`SELECT id, account_id, size, created_at FROM blobs WHERE id = ${id} AND created_at >= ${notBefore}`);
    return row === undefined ? undefined : toRecord(row);
  }

  add(record: BlobRecord, quotaBytes: number): Promise<BlobAddResult> {
    return this.#db.transaction(async (db): Promise<BlobAddResult> => {
      // The lock first: a concurrent add of the same new blob by this account is then seen as existing.
      await lockExclusive(db, LockClass.BlobQuota, record.accountId);
      const existing = await touchBlob(db, record);
      if (existing !== undefined) return existing;
      if ((await used(db, record.accountId, 0)) + record.size > quotaBytes) return { kind: 'quota' };
      return insertBlob(db, record);
    });
  }

  usage(accountId: AccountId, notBefore: number): Promise<number> {
    return used(this.#db.read, accountId, notBefore);
  }

  async expire(before: number): Promise<string[]> {
    return (await this.#db.read.all<{ id: string }>(sql`DELETE FROM blobs WHERE created_at < ${before} RETURNING id`)).map((r) => r.id);
  }

  async markFetched(blobId: string, device: DeviceRef): Promise<void> {
    await this.#db.read.run(sql`DELETE FROM blob_fetches WHERE blob_id = ${blobId} AND device_ref = ${device}`);
  }

  expireFetched(registeredBefore: number): Promise<string[]> {
    return this.#db.transaction(async (db) => {
      // Lock the candidates first (skipping blobs a send is registering fetchers for right now), then
      // check again in a new statement: a send that committed after the first one's snapshot is seen.
      const candidates = (
        await db.all<{ id: string }>(sql`
          SELECT b.id FROM blobs b JOIN blob_fetch_marks m ON m.blob_id = b.id
          WHERE m.last_registered_at < ${registeredBefore} AND NOT EXISTS (SELECT 1 FROM blob_fetches f WHERE f.blob_id = b.id)
          ORDER BY b.id FOR UPDATE OF b SKIP LOCKED`)
      ).map((r) => r.id);
      if (candidates.length === 0) return [];
      const deleted = await db.all<{ id: string }>(sql`
        DELETE FROM blobs b WHERE b.id = ANY(${candidates}::text[])
          AND NOT EXISTS (SELECT 1 FROM blob_fetches f WHERE f.blob_id = b.id)
          AND EXISTS (SELECT 1 FROM blob_fetch_marks m WHERE m.blob_id = b.id AND m.last_registered_at < ${registeredBefore})
        RETURNING b.id`);
      return deleted.map((r) => r.id).sort();
    });
  }

  createUpload(upload: BlobUploadRecord, quotaBytes: number, notBefore: number): Promise<boolean> {
    return this.#db.transaction(async (db) => {
      await lockExclusive(db, LockClass.BlobQuota, upload.accountId);
      if ((await used(db, upload.accountId, notBefore)) + upload.length > quotaBytes) return false;
      await db.run(sql`INSERT INTO blob_uploads (id, blob_id, account_id, length, updated_at)
                       VALUES (${upload.id}, ${upload.blobId ?? null}, ${upload.accountId}, ${upload.length}, ${upload.updatedAt})`);
      return true;
    });
  }

  async getUpload(uploadId: string): Promise<BlobUploadRecord | undefined> {
    const row = await this.#db.read.get<UploadRow>(sql`SELECT id, blob_id, account_id, length, updated_at FROM blob_uploads WHERE id = ${uploadId}`);
    return row === undefined ? undefined : toUpload(row);
  }

  async findUpload(accountId: AccountId, blobId: string): Promise<BlobUploadRecord | undefined> {
    const row = await this.#db.read.get<UploadRow>(
      sql`SELECT id, blob_id, account_id, length, updated_at FROM blob_uploads WHERE account_id = ${accountId} AND blob_id = ${blobId} ORDER BY updated_at DESC LIMIT 1`,
    );
    return row === undefined ? undefined : toUpload(row);
  }

  async touchUpload(uploadId: string, now: number): Promise<void> {
    await this.#db.read.run(sql`UPDATE blob_uploads SET updated_at = ${now} WHERE id = ${uploadId}`);
  }

  completeUpload(uploadId: string, record: BlobRecord): Promise<BlobAddResult> {
    return this.#db.transaction(async (db) => {
      await db.run(sql`DELETE FROM blob_uploads WHERE id = ${uploadId}`);
      return (await touchBlob(db, record)) ?? insertBlob(db, record);
    });
  }

  async deleteUpload(uploadId: string): Promise<boolean> {
    return (await this.#db.read.run(sql`DELETE FROM blob_uploads WHERE id = ${uploadId}`)) > 0;
  }

  async staleUploads(before: number): Promise<string[]> {
    return (await this.#db.read.all<{ id: string }>(sql`SELECT id FROM blob_uploads WHERE updated_at < ${before}`)).map((r) => r.id);
  }

  async uploadIds(): Promise<string[]> {
    return (await this.#db.read.all<{ id: string }>(sql`SELECT id FROM blob_uploads`)).map((r) => r.id);
  }
}
