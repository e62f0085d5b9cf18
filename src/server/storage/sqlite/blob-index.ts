import type { AccountId } from '../../ids.js';
import type { BlobAddResult, BlobIndex, BlobRecord } from '../stores.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

interface BlobRow {
  id: string;
  account_id: string;
  size: number;
  created_at: number;
}

const toRecord = (row: BlobRow): BlobRecord => ({ id: row.id, accountId: row.account_id as AccountId, size: row.size, createdAt: row.created_at });

/** {@link BlobIndex} on SQLite. The quota check and the insert are one write job. */
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
      const used = db.get<{ n: number | null }>(sql`SELECT SUM(size) AS n FROM blobs WHERE account_id = ${record.accountId}`)?.n ?? 0;
      if (used + record.size > quotaBytes) return { kind: 'quota' };
      db.run(sql`INSERT INTO blobs (id, account_id, size, created_at) VALUES (${record.id}, ${record.accountId}, ${record.size}, ${record.createdAt})`);
      return { kind: 'added' };
    });
  }

  async usage(accountId: AccountId, notBefore: number): Promise<number> {
    return this.#reader.get<{ n: number | null }>(sql`SELECT SUM(size) AS n FROM blobs WHERE account_id = ${accountId} AND created_at >= ${notBefore}`)?.n ?? 0;
  }

  expire(before: number): Promise<string[]> {
    return this.#writer.enqueue((db) => db.all<{ id: string }>(sql`DELETE FROM blobs WHERE created_at < ${before} RETURNING id`).map((r) => r.id));
  }
}
