import type { AccountId, DeviceId, DeviceRef } from '../../ids.js';
import type { IdempotencyKey, InsertResult, MessageStore, NewEnvelope, StoredEnvelope } from '../stores.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

interface EnvelopeRow {
  seq: number;
  device_ref: number;
  guid: Uint8Array;
  type: number;
  source_account_id: string;
  source_device_id: number;
  destination_device_id: number;
  timestamp: number;
  server_timestamp: number;
  content: Uint8Array;
}

const toEnvelope = (row: EnvelopeRow): StoredEnvelope => ({
  seq: row.seq,
  ref: row.device_ref as DeviceRef,
  guid: row.guid,
  type: row.type,
  sourceAccountId: row.source_account_id as AccountId,
  sourceDeviceId: row.source_device_id as DeviceId,
  destinationDeviceId: row.destination_device_id as DeviceId,
  timestamp: row.timestamp,
  serverTimestamp: row.server_timestamp,
  content: row.content,
});

/** Thrown inside a write job to roll its savepoint back; never leaves this module. */
class DeviceGone extends Error {}

/** Most devices whose queue depth is cached; past it the cache starts over (depths are recounted). */
const MAX_CACHED_DEPTHS = 100_000;

/**
 * {@link MessageStore} on SQLite. Inserts go through the group-commit writer (durable before they
 * resolve); reads use the read-only connection. Queue depths are cached in memory (one process owns the
 * database), counted from the table on first use and kept up to date by inserts and deletes.
 */
export class SqliteMessageStore implements MessageStore {
  readonly #reader: SqlHandle;
  readonly #writer: GroupCommitWriter;
  #depths = new Map<DeviceRef, number>();

  constructor(reader: SqlHandle, writer: GroupCommitWriter) {
    this.#reader = reader;
    this.#writer = writer;
  }

  #depthOf(db: SqlHandle, ref: DeviceRef): number {
    let depth = this.#depths.get(ref);
    if (depth === undefined) {
      depth = db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM messages WHERE device_ref = ${ref}`)?.n ?? 0;
      if (this.#depths.size >= MAX_CACHED_DEPTHS) this.#depths = new Map();
      this.#depths.set(ref, depth);
    }
    return depth;
  }

  async insert(envelopes: readonly NewEnvelope[], options: { maxQueueDepth: number; idempotency?: IdempotencyKey; now: number }): Promise<InsertResult> {
    const { idempotency, maxQueueDepth, now } = options;
    try {
      return await this.#writer.enqueue((db): InsertResult => {
        if (idempotency !== undefined) {
          const seen = db.get<{ stored: number }>(sql`SELECT stored FROM idempotency_keys WHERE scope = ${idempotency.scope} AND key = ${idempotency.key}`);
          if (seen !== undefined) return { kind: 'duplicate', stored: seen.stored };
        }
        const adding = new Map<DeviceRef, number>();
        for (const e of envelopes) adding.set(e.ref, (adding.get(e.ref) ?? 0) + 1);
        for (const [ref, n] of adding) {
          if (this.#depthOf(db, ref) + n > maxQueueDepth) return { kind: 'queue-full' };
        }
        const stored: StoredEnvelope[] = [];
        for (const e of envelopes) {
          let seq: number;
          try {
            seq = Number(
              db.run(sql`
                INSERT INTO messages (device_ref, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, content)
                VALUES (${e.ref}, ${e.guid}, ${e.type}, ${e.sourceAccountId}, ${e.sourceDeviceId}, ${e.destinationDeviceId}, ${e.timestamp}, ${e.serverTimestamp}, ${e.content})`)
                .lastInsertRowid,
            );
          } catch (err) {
            if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new DeviceGone();
            throw err;
          }
          stored.push({ ...e, seq });
        }
        if (idempotency !== undefined) {
          db.run(sql`INSERT INTO idempotency_keys (scope, key, stored, created_at) VALUES (${idempotency.scope}, ${idempotency.key}, ${stored.length}, ${now})`);
        }
        // Only once every statement of the job succeeded (a throw above rolls the savepoint back).
        for (const [ref, n] of adding) this.#depths.set(ref, this.#depthOf(db, ref) + n);
        return { kind: 'stored', envelopes: stored };
      });
    } catch (err) {
      if (err instanceof DeviceGone) return { kind: 'device-gone' };
      // The batch may not have committed: recount depths from the table.
      this.#depths = new Map();
      throw err;
    }
  }

  /** Forgets cached depths of deleted devices (their rows went with them, by cascade). */
  forgetDevices(refs: readonly DeviceRef[]): void {
    for (const ref of refs) this.#depths.delete(ref);
  }

  async page(ref: DeviceRef, afterSeq: number, limit: number, notBefore: number): Promise<StoredEnvelope[]> {
    return this.#reader
      .all<EnvelopeRow>(sql`
        SELECT seq, device_ref, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, content
        FROM messages
        WHERE device_ref = ${ref} AND seq > ${afterSeq} AND server_timestamp >= ${notBefore}
        ORDER BY seq LIMIT ${limit}`)
      .map(toEnvelope);
  }

  remove(ref: DeviceRef, seq: number): Promise<void> {
    return this.#writer.enqueue((db) => {
      const { changes } = db.run(sql`DELETE FROM messages WHERE seq = ${seq} AND device_ref = ${ref}`);
      const depth = this.#depths.get(ref);
      if (changes > 0 && depth !== undefined) this.#depths.set(ref, Math.max(0, depth - changes));
    });
  }

  async depth(ref: DeviceRef): Promise<number> {
    return this.#depthOf(this.#reader, ref);
  }

  async totalDepth(): Promise<number> {
    return this.#reader.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM messages`)?.n ?? 0;
  }

  expire(before: number, keysBefore: number): Promise<number> {
    return this.#writer.enqueue((db) => {
      const { changes } = db.run(sql`DELETE FROM messages WHERE server_timestamp < ${before}`);
      db.run(sql`DELETE FROM idempotency_keys WHERE created_at < ${keysBefore}`);
      if (changes > 0) this.#depths = new Map();
      return changes;
    });
  }
}
