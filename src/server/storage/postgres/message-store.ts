import type { DeviceRef } from '../../ids.js';
import { toEnvelope, type EnvelopeRow } from '../envelope-row.js';
import type { FanOutEnvelope, FanOutRecipient, IdempotencyKey, InsertOptions, InsertResult, MessageStore, NewEnvelope, StoredEnvelope } from '../stores.js';
import type { PostgresGroupCommit } from './group-commit.js';
import type { MessageJob, MessageJobResult, QueueRow } from './message-batch.js';
import { Rollback, type PostgresDatabase } from './database.js';
import { sql, type PgHandle } from './sql.js';

const NO_CONTENT = new Uint8Array(0);

/** Most queue rows one expiry transaction deletes; expiry loops until a chunk comes back short. */
const EXPIRE_CHUNK = 10_000;

/** Thrown inside a transaction when a destination device no longer exists; never leaves this backend. */
export class DeviceGone extends Error {}

/**
 * Claims a send's idempotency key for this transaction: true when it is new (inserted with a count of 0,
 * set by {@link recordIdempotency} before the commit); otherwise throws a {@link Rollback} with the
 * `duplicate` answer. A concurrent send with the same key (another node) makes this wait for its commit,
 * so exactly one of them stores.
 */
export async function claimIdempotency(db: PgHandle, idempotency: IdempotencyKey, now: number): Promise<void> {
  const inserted = await db.get<{ stored: number }>(sql`
    INSERT INTO idempotency_keys (scope, key, stored, created_at) VALUES (${idempotency.scope}, ${idempotency.key}, ${0}, ${now})
    ON CONFLICT (scope, key) DO NOTHING RETURNING stored`);
  if (inserted !== undefined) return;
  const seen = await db.get<{ stored: number }>(sql`SELECT stored FROM idempotency_keys WHERE scope = ${idempotency.scope} AND key = ${idempotency.key}`);
  throw new Rollback<InsertResult>({ kind: 'duplicate', stored: seen?.stored ?? 0 });
}

/** Sets how many envelopes the send of a claimed idempotency key stored. */
export async function recordIdempotency(db: PgHandle, idempotency: IdempotencyKey, stored: number): Promise<void> {
  await db.run(sql`UPDATE idempotency_keys SET stored = ${stored} WHERE scope = ${idempotency.scope} AND key = ${idempotency.key}`);
}

/**
 * Deletes the queues of devices about to be deleted, before their rows go. Lock order, the same on every
 * path: device row, then its queue rows, then its `device_queues` counter (taken by the delete trigger).
 * So the caller has locked the device rows `FOR UPDATE` already (this waits for sends that hold them
 * `FOR KEY SHARE`), and the queue goes first: deleting the device by cascade alone would lock its counter
 * before its queue rows (cascades run in creation order) and could deadlock with an ack.
 */
export async function deleteQueues(db: PgHandle, refs: readonly number[]): Promise<void> {
  if (refs.length === 0) return;
  await db.run(sql`DELETE FROM messages WHERE device_ref = ANY(${refs}::bigint[])`);
}

/**
 * Inside a transaction: reserves `seq`s for the rows and inserts them, all or nothing, in two statements.
 * The first locks the devices (`FOR KEY SHARE`: none can be deleted meanwhile) and then their queue
 * counters (`FOR UPDATE`, in `device_ref` order, so concurrent sends to overlapping devices cannot
 * deadlock; a device is always locked before its counter, also when it is deleted: see {@link deleteQueues}). The second
 * advances the counters and inserts the rows (and the fan-out's payload). The counter lock is held to the
 * commit: inserts to one device commit in `seq` order. Returns undefined (nothing written) when a queue
 * would pass `maxQueueDepth` (undefined: no limit); throws {@link DeviceGone} for a device that no longer
 * exists.
 */
async function insertRows(db: PgHandle, rows: readonly QueueRow[], maxQueueDepth: number | undefined, payload?: Uint8Array): Promise<StoredEnvelope[] | undefined> {
  if (rows.length === 0) return [];
  const adding = new Map<number, number>();
  for (const r of rows) adding.set(r.envelope.ref, (adding.get(r.envelope.ref) ?? 0) + 1);
  const refs = [...adding.keys()].sort((x, y) => x - y);
  const queues = await db.all<{ device_ref: number; depth: number; last_seq: number }>(sql`
    SELECT device_ref, depth, last_seq FROM device_queues
    WHERE device_ref IN (SELECT ref FROM devices WHERE ref = ANY(${refs}::bigint[]) ORDER BY ref FOR KEY SHARE)
    ORDER BY device_ref FOR UPDATE`);
  if (queues.length !== refs.length) throw new DeviceGone();
  if (maxQueueDepth !== undefined && queues.some((q) => q.depth + (adding.get(q.device_ref) ?? 0) > maxQueueDepth)) return undefined;
  const next = new Map(queues.map((q) => [q.device_ref, q.last_seq + 1]));
  const stored = rows.map((r): StoredEnvelope => {
    const seq = next.get(r.envelope.ref) ?? 0;
    next.set(r.envelope.ref, seq + 1);
    return { ...r.envelope, seq };
  });
  const counts = refs.map((ref) => adding.get(ref) ?? 0);
  const envelopeGroup = stored[0]?.groupId ?? null;
  const columns = [
    stored.map((e) => e.guid), stored.map((e) => e.type), stored.map((e) => e.sourceAccountId), stored.map((e) => e.sourceDeviceId),
    stored.map((e) => e.destinationDeviceId), stored.map((e) => e.timestamp), stored.map((e) => e.serverTimestamp),
  ] as const;
  if (payload === undefined) {
    await db.run(sql`
      WITH counters AS (
        UPDATE device_queues q SET last_seq = q.last_seq + a.n, depth = q.depth + a.n
        FROM unnest(${refs}::bigint[], ${counts}::integer[]) AS a (ref, n) WHERE q.device_ref = a.ref)
      INSERT INTO messages (device_ref, seq, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, content, payload_id, group_id)
      SELECT r.ref, r.seq, r.guid, r.type, r.source_account_id, r.source_device_id, r.destination_device_id, r.timestamp, r.server_timestamp, r.content, NULL, r.group_id
      FROM unnest(
        ${stored.map((e) => e.ref)}::bigint[], ${stored.map((e) => e.seq)}::bigint[], ${columns[0]}::bytea[], ${columns[1]}::integer[], ${columns[2]}::text[],
        ${columns[3]}::integer[], ${columns[4]}::integer[], ${columns[5]}::bigint[], ${columns[6]}::bigint[], ${rows.map((r) => r.content)}::bytea[],
        ${stored.map((e) => e.groupId ?? null)}::text[])
        AS r (ref, seq, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, content, group_id)`);
  } else {
    // A fan-out: the content once, in a payloads row that every queue row references.
    await db.run(sql`
      WITH counters AS (
        UPDATE device_queues q SET last_seq = q.last_seq + a.n, depth = q.depth + a.n
        FROM unnest(${refs}::bigint[], ${counts}::integer[]) AS a (ref, n) WHERE q.device_ref = a.ref),
      payload AS (INSERT INTO payloads (refs, content) VALUES (${rows.length}, ${payload}) RETURNING id)
      INSERT INTO messages (device_ref, seq, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, content, payload_id, group_id)
      SELECT r.*, ${NO_CONTENT}::bytea, (SELECT id FROM payload), ${envelopeGroup}::text FROM unnest(
        ${stored.map((e) => e.ref)}::bigint[], ${stored.map((e) => e.seq)}::bigint[], ${columns[0]}::bytea[], ${columns[1]}::integer[], ${columns[2]}::text[],
        ${columns[3]}::integer[], ${columns[4]}::integer[], ${columns[5]}::bigint[], ${columns[6]}::bigint[]) AS r`);
  }
  return stored;
}

/**
 * Inside a transaction: queues `envelope` for every recipient with its content stored once (a `payloads`
 * row referenced by every queue row; the delete trigger frees it with the last). Same outcomes as
 * {@link insertRows}.
 */
export async function insertFanOutRows(
  db: PgHandle,
  envelope: FanOutEnvelope,
  recipients: readonly FanOutRecipient[],
  maxQueueDepth: number | undefined,
): Promise<StoredEnvelope[] | undefined> {
  if (recipients.length === 0) return [];
  const rows = recipients.map((r): QueueRow => ({ envelope: { ...envelope, ref: r.ref, guid: r.guid, destinationDeviceId: r.deviceId }, content: NO_CONTENT }));
  return insertRows(db, rows, maxQueueDepth, envelope.content);
}

/**
 * {@link MessageStore} on PostgreSQL. Sends and acks go through the node's group-commit writer
 * (`group-commit.ts`, `message-batch.ts`): each resolves once the transaction of its batch has committed
 * (so is durable: see `database.ts`). Depths are `device_queues` counters kept in the same transactions as
 * the rows, so they hold across nodes without a cache.
 */
export class PostgresMessageStore implements MessageStore {
  readonly #db: PostgresDatabase;
  readonly #writer: PostgresGroupCommit<MessageJob, MessageJobResult>;

  constructor(db: PostgresDatabase, writer: PostgresGroupCommit<MessageJob, MessageJobResult>) {
    this.#db = db;
    this.#writer = writer;
  }

  async insert(envelopes: readonly NewEnvelope[], options: InsertOptions): Promise<InsertResult> {
    const rows = envelopes.map((e): QueueRow => ({ envelope: e, content: e.content }));
    return (await this.#writer.enqueue({ kind: 'insert', rows, payload: undefined, options })) as InsertResult;
  }

  async insertFanOut(envelope: FanOutEnvelope, recipients: readonly FanOutRecipient[], options: InsertOptions): Promise<InsertResult> {
    const rows = recipients.map((r): QueueRow => ({ envelope: { ...envelope, ref: r.ref, guid: r.guid, destinationDeviceId: r.deviceId }, content: NO_CONTENT }));
    return (await this.#writer.enqueue({ kind: 'insert', rows, payload: envelope.content, options })) as InsertResult;
  }

  async page(ref: DeviceRef, afterSeq: number, limit: number, notBefore: number): Promise<StoredEnvelope[]> {
    const rows = await this.#db.read.all<EnvelopeRow>(sql`
      SELECT m.seq, m.device_ref, m.guid, m.type, m.source_account_id, m.source_device_id, m.destination_device_id, m.timestamp, m.server_timestamp, m.group_id,
        CASE WHEN m.payload_id IS NULL THEN m.content ELSE p.content END AS content
      FROM messages m LEFT JOIN payloads p ON p.id = m.payload_id
      WHERE m.device_ref = ${ref} AND m.seq > ${afterSeq} AND m.server_timestamp >= ${notBefore}
      ORDER BY m.seq LIMIT ${limit}`);
    return rows.map(toEnvelope);
  }

  async remove(ref: DeviceRef, seq: number): Promise<void> {
    // In a batch: its DELETE's trigger decrements the depth and releases the payload in the same transaction.
    await this.#writer.enqueue({ kind: 'remove', ref, seq });
  }

  async depth(ref: DeviceRef): Promise<number> {
    return (await this.#db.read.get<{ depth: number }>(sql`SELECT depth FROM device_queues WHERE device_ref = ${ref}`))?.depth ?? 0;
  }

  async totalDepth(): Promise<number> {
    return (await this.#db.read.get<{ n: number }>(sql`SELECT COALESCE(SUM(depth), 0)::bigint AS n FROM device_queues`))?.n ?? 0;
  }

  async expire(before: number, keysBefore: number): Promise<number> {
    // In chunks, each its own transaction: expiring a million envelopes neither holds a million row locks
    // nor one huge transaction. Rows another node is expiring (locked) are skipped: it deletes them.
    let removed = 0;
    for (;;) {
      const n = await this.#db.transaction((db) =>
        db.run(sql`
          DELETE FROM messages WHERE (device_ref, seq) IN (
            SELECT device_ref, seq FROM messages WHERE server_timestamp < ${before} LIMIT ${EXPIRE_CHUNK} FOR UPDATE SKIP LOCKED)`),
      );
      removed += n;
      if (n < EXPIRE_CHUNK) break;
    }
    await this.#db.read.run(sql`DELETE FROM idempotency_keys WHERE created_at < ${keysBefore}`);
    return removed;
  }
}
