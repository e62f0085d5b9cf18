import type { DeviceRef } from '../../ids.js';
import { toEnvelope, type EnvelopeRow } from '../envelope-row.js';
import type { FanOutEnvelope, FanOutRecipient, IdempotencyKey, InsertOptions, InsertResult, MessageStore, NewEnvelope, StoredEnvelope } from '../stores.js';
import { registerFetchers } from './blob-index.js';
import type { GroupCommitWriter } from './group-commit.js';
import { sql, type SqlHandle } from './sql.js';

const NO_CONTENT = new Uint8Array(0);

/** Thrown inside a write job to roll its savepoint back; never leaves the SQLite backend. */
export class DeviceGone extends Error {}

/** The answer to a send whose idempotency key was seen, or undefined. */
export function idempotencySeen(db: SqlHandle, idempotency: IdempotencyKey): InsertResult | undefined {
  const seen = db.get<{ stored: number }>(sql`SELECT stored FROM idempotency_keys WHERE scope = ${idempotency.scope} AND key = ${idempotency.key}`);
  return seen === undefined ? undefined : { kind: 'duplicate', stored: seen.stored };
}

/** Records a send's idempotency key with how many envelopes it stored. */
export function recordIdempotency(db: SqlHandle, idempotency: IdempotencyKey, stored: number, now: number): void {
  db.run(sql`INSERT INTO idempotency_keys (scope, key, stored, created_at) VALUES (${idempotency.scope}, ${idempotency.key}, ${stored}, ${now})`);
}

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

  async insert(envelopes: readonly NewEnvelope[], options: InsertOptions): Promise<InsertResult> {
    return this.#write(options, (db) => {
      const adding = new Map<DeviceRef, number>();
      for (const e of envelopes) adding.set(e.ref, (adding.get(e.ref) ?? 0) + 1);
      if (!this.#fits(db, adding, options.maxQueueDepth)) return undefined;
      const stored = envelopes.map((e) => ({ ...e, seq: this.#insertRow(db, e, e.content, null) }));
      this.#added(db, adding);
      return stored;
    });
  }

  async insertFanOut(envelope: FanOutEnvelope, recipients: readonly FanOutRecipient[], options: InsertOptions): Promise<InsertResult> {
    return this.#write(options, (db) => this.fanOutInJob(db, envelope, recipients, options.maxQueueDepth));
  }

  /**
   * Inside a write job: queues `envelope` for every recipient with its content stored once. Returns the
   * stored envelopes, or undefined (nothing written) when a queue would pass `maxQueueDepth` (undefined:
   * no limit). Throws {@link DeviceGone} for a recipient device that no longer exists.
   */
  fanOutInJob(db: SqlHandle, envelope: FanOutEnvelope, recipients: readonly FanOutRecipient[], maxQueueDepth: number | undefined): StoredEnvelope[] | undefined {
    if (recipients.length === 0) return [];
    const adding = new Map<DeviceRef, number>();
    for (const r of recipients) adding.set(r.ref, (adding.get(r.ref) ?? 0) + 1);
    if (maxQueueDepth !== undefined && !this.#fits(db, adding, maxQueueDepth)) return undefined;
    const payload = Number(db.run(sql`INSERT INTO payloads (refs, content) VALUES (${recipients.length}, ${envelope.content})`).lastInsertRowid);
    const stored = recipients.map((r): StoredEnvelope => {
      const e: NewEnvelope = { ...envelope, ref: r.ref, guid: r.guid, destinationDeviceId: r.deviceId };
      return { ...e, seq: this.#insertRow(db, e, NO_CONTENT, payload) };
    });
    this.#added(db, adding);
    return stored;
  }

  /** Runs an insert job with the idempotency check and record around it; `job` returns undefined when a queue is full. */
  async #write(options: InsertOptions, job: (db: SqlHandle) => StoredEnvelope[] | undefined): Promise<InsertResult> {
    const { idempotency, now } = options;
    try {
      return await this.#writer.enqueue((db): InsertResult => {
        const seen = idempotency === undefined ? undefined : idempotencySeen(db, idempotency);
        if (seen !== undefined) return seen;
        const stored = job(db);
        if (stored === undefined) return { kind: 'queue-full' };
        if (idempotency !== undefined) recordIdempotency(db, idempotency, stored.length, now);
        if (options.blobFetches !== undefined) registerFetchers(db, options.blobFetches, stored.map((e) => e.ref), now);
        return { kind: 'stored', envelopes: stored };
      });
    } catch (err) {
      if (err instanceof DeviceGone) return { kind: 'device-gone' };
      // The batch may not have committed: recount depths from the table.
      this.#depths = new Map();
      throw err;
    }
  }

  /** True when every queue can take its additional envelopes. */
  #fits(db: SqlHandle, adding: ReadonlyMap<DeviceRef, number>, maxQueueDepth: number): boolean {
    for (const [ref, n] of adding) {
      if (this.#depthOf(db, ref) + n > maxQueueDepth) return false;
    }
    return true;
  }

  /** Updates cached depths; call only once every statement of the job succeeded (a throw rolls back). */
  #added(db: SqlHandle, adding: ReadonlyMap<DeviceRef, number>): void {
    for (const [ref, n] of adding) this.#depths.set(ref, this.#depthOf(db, ref) + n);
  }

  /** Inserts one queue row (content inline, or empty with a payload reference); returns its seq. */
  #insertRow(db: SqlHandle, e: NewEnvelope, content: Uint8Array, payload: number | null): number {
    try {
      return Number(
        db.run(sql`
          INSERT INTO messages (device_ref, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, content, payload_id, group_id)
          VALUES (${e.ref}, ${e.guid}, ${e.type}, ${e.sourceAccountId}, ${e.sourceDeviceId}, ${e.destinationDeviceId}, ${e.timestamp}, ${e.serverTimestamp}, ${content}, ${payload}, ${e.groupId ?? null})`)
          .lastInsertRowid,
      );
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new DeviceGone();
      throw err;
    }
  }

  /** Forgets every cached depth (after a write job that may not have committed). */
  forgetDepths(): void {
    this.#depths = new Map();
  }

  /** Forgets cached depths of deleted devices (their rows went with them, by cascade). */
  forgetDevices(refs: readonly DeviceRef[]): void {
    for (const ref of refs) this.#depths.delete(ref);
  }

  async page(ref: DeviceRef, afterSeq: number, limit: number, notBefore: number): Promise<StoredEnvelope[]> {
    return this.#reader
      .all<EnvelopeRow>(sql`
        SELECT seq, device_ref, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, group_id,
          CASE WHEN payload_id IS NULL THEN content ELSE (SELECT p.content FROM payloads p WHERE p.id = payload_id) END AS content
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
      // The trigger deletes a payload with its last queue row; this only catches what it could not have.
      db.run(sql`DELETE FROM payloads WHERE refs <= 0`);
      if (changes > 0) this.#depths = new Map();
      return changes;
    });
  }
}
