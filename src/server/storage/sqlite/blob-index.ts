import type { AccountId, DeviceRef } from '../../ids.js';
import type { BlobAddResult, BlobFetchRegistration, BlobIndex, BlobRecord, BlobUploadRecord } from '../stores.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

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

/** Bytes reserved by the account's uploads in progress. */
function reserved(db: SqlHandle, accountId: AccountId): number {
  return db.get<{ n: number | null }>(sql`SELECT SUM(length) AS n FROM blob_uploads WHERE account_id = ${accountId}`)?.n ?? 0;
}

/**
 * Inside a message write job: registers `refs` (the devices the envelopes were queued for) as pending
 * fetchers of each named blob that is stored and created from `notBefore` on, and moves the blob's mark
 * (last registration) to `now`. Unknown and expired ids are skipped; no devices registers nothing.
 */
export function registerFetchers(db: SqlHandle, registration: BlobFetchRegistration, refs: readonly DeviceRef[], now: number): void {
  if (refs.length === 0) return;
  for (const blobId of new Set(registration.blobIds)) {
    if (db.get<{ id: string }>(sql`SELECT id FROM blobs WHERE id = ${blobId} AND created_at >= ${registration.notBefore}`) === undefined) continue;
    db.run(sql`INSERT INTO blob_fetch_marks (blob_id, last_registered_at) VALUES (${blobId}, ${now})
               ON CONFLICT (blob_id) DO UPDATE SET last_registered_at = MAX(last_registered_at, excluded.last_registered_at)`);
    for (const ref of new Set(refs)) {
      db.run(sql`INSERT INTO blob_fetches (blob_id, device_ref, registered_at) VALUES (${blobId}, ${ref}, ${now})
                 ON CONFLICT (blob_id, device_ref) DO UPDATE SET registered_at = excluded.registered_at`);
    }
  }
}

const toRecord = (row: BlobRow): BlobRecord => ({ id: row.id, accountId: row.account_id as AccountId, size: row.size, createdAt: row.created_at });

/** {@link BlobIndex} on SQLite. Each quota check and its insert are one write job. */
export class SqliteBlobIndex implements BlobIndex {
  readonly #reader: SqlHandle;
  readonly #writer: GroupCommitWriter;

  constructor(reader: SqlHandle, writer: GroupCommitWriter) {
    this.#reader = reader;
    this.#writer = writer;
  }

  async get(id: string, notBefore: number): Promise<BlobRecord | undefined> {
    const row = this.#reader.get<BlobRow>(sql`SELECT id, account_id, size, created_at FROM blobs WHERE id = ${id} AND created_at >= ${notBefore}`);
    return row === undefined ? undefined : toRecord(row);
  }

  add(record: BlobRecord, quotaBytes: number): Promise<BlobAddResult> {
    return this.#writer.enqueue((db): BlobAddResult => {
      const existing = db.get<BlobRow>(sql`SELECT id, account_id, size, created_at FROM blobs WHERE id = ${record.id}`);
      if (existing !== undefined) {
        db.run(sql`UPDATE blobs SET created_at = ${record.createdAt} WHERE id = ${record.id}`);
        return { kind: 'exists', record: { ...toRecord(existing), createdAt: record.createdAt } };
      }
      const used = (db.get<{ n: number | null }>(sql`SELECT SUM(size) AS n FROM blobs WHERE account_id = ${record.accountId}`)?.n ?? 0) + reserved(db, record.accountId);
      if (used + record.size > quotaBytes) return { kind: 'quota' };
      db.run(sql`INSERT INTO blobs (id, account_id, size, created_at) VALUES (${record.id}, ${record.accountId}, ${record.size}, ${record.createdAt})`);
      return { kind: 'added' };
    });
  }

  async usage(accountId: AccountId, notBefore: number): Promise<number> {
    const blobs = this.#reader.get<{ n: number | null }>(sql`SELECT SUM(size) AS n FROM blobs WHERE account_id = ${accountId} AND created_at >= ${notBefore}`)?.n ?? 0;
    return blobs + reserved(this.#reader, accountId);
  }

  expire(before: number): Promise<string[]> {
    return this.#writer.enqueue((db) => db.all<{ id: string }>(sql`DELETE FROM blobs WHERE created_at < ${before} RETURNING id`).map((r) => r.id));
  }

  markFetched(blobId: string, device: DeviceRef): Promise<void> {
    return this.#writer.enqueue((db) => {
      db.run(sql`DELETE FROM blob_fetches WHERE blob_id = ${blobId} AND device_ref = ${device}`);
    });
  }

  expireFetched(registeredBefore: number): Promise<string[]> {
    return this.#writer.enqueue((db) =>
      db
        .all<{ id: string }>(sql`
          DELETE FROM blobs WHERE id IN (
            SELECT m.blob_id FROM blob_fetch_marks m
            WHERE m.last_registered_at < ${registeredBefore} AND NOT EXISTS (SELECT 1 FROM blob_fetches f WHERE f.blob_id = m.blob_id))
          RETURNING id`)
        .map((r) => r.id),
    );
  }

  createUpload(upload: BlobUploadRecord, quotaBytes: number, notBefore: number): Promise<boolean> {
    return this.#writer.enqueue((db) => {
      const blobs = db.get<{ n: number | null }>(sql`SELECT SUM(size) AS n FROM blobs WHERE account_id = ${upload.accountId} AND created_at >= ${notBefore}`)?.n ?? 0;
      if (blobs + reserved(db, upload.accountId) + upload.length > quotaBytes) return false;
      db.run(sql`INSERT INTO blob_uploads (id, blob_id, account_id, length, updated_at) VALUES (${upload.id}, ${upload.blobId ?? null}, ${upload.accountId}, ${upload.length}, ${upload.updatedAt})`);
      return true;
    });
  }

  async getUpload(uploadId: string): Promise<BlobUploadRecord | undefined> {
    const row = this.#reader.get<UploadRow>(sql`SELECT id, blob_id, account_id, length, updated_at FROM blob_uploads WHERE id = ${uploadId}`);
    return row === undefined ? undefined : toUpload(row);
  }

  async findUpload(accountId: AccountId, blobId: string): Promise<BlobUploadRecord | undefined> {
    const row = this.#reader.get<UploadRow>(
      sql`SELECT id, blob_id, account_id, length, updated_at FROM blob_uploads WHERE account_id = ${accountId} AND blob_id = ${blobId} ORDER BY updated_at DESC LIMIT 1`,
    );
    return row === undefined ? undefined : toUpload(row);
  }

  touchUpload(uploadId: string, now: number): Promise<void> {
    return this.#writer.enqueue((db) => {
      db.run(sql`UPDATE blob_uploads SET updated_at = ${now} WHERE id = ${uploadId}`);
    });
  }

  completeUpload(uploadId: string, record: BlobRecord): Promise<BlobAddResult> {
    return this.#writer.enqueue((db): BlobAddResult => {
      db.run(sql`DELETE FROM blob_uploads WHERE id = ${uploadId}`);
      const existing = db.get<BlobRow>(sql`SELECT id, account_id, size, created_at FROM blobs WHERE id = ${record.id}`);
      if (existing !== undefined) {
        db.run(sql`UPDATE blobs SET created_at = ${record.createdAt} WHERE id = ${record.id}`);
        return { kind: 'exists', record: { ...toRecord(existing), createdAt: record.createdAt } };
      }
      db.run(sql`INSERT INTO blobs (id, account_id, size, created_at) VALUES (${record.id}, ${record.accountId}, ${record.size}, ${record.createdAt})`);
      return { kind: 'added' };
    });
  }

  deleteUpload(uploadId: string): Promise<boolean> {
    return this.#writer.enqueue((db) => db.all<{ id: string }>(sql`DELETE FROM blob_uploads WHERE id = ${uploadId} RETURNING id`).length > 0);
  }

  async staleUploads(before: number): Promise<string[]> {
    return this.#reader.all<{ id: string }>(sql`SELECT id FROM blob_uploads WHERE updated_at < ${before}`).map((r) => r.id);
  }

  async uploadIds(): Promise<string[]> {
    return this.#reader.all<{ id: string }>(sql`SELECT id FROM blob_uploads`).map((r) => r.id);
  }
}
