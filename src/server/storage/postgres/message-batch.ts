/**
 * The message writes of one group-commit batch (`group-commit.ts`), set-based: however many sends and acks
 * a batch holds, it runs at most these statements, in this order (each only when needed):
 *
 * 1. claim the batch's idempotency keys (one INSERT ... ON CONFLICT DO NOTHING, in key order), and read
 *    what the keys seen before stored;
 * 2. lock the devices (`FOR KEY SHARE`) and then the `device_queues` counters (`FOR UPDATE`) of every
 *    destination and every ack, in `device_ref` order: one statement, so two nodes' batches (and group
 *    sends, which take them the same way) cannot deadlock on them;
 * 3. decide each send in JavaScript, in queue order, against the locked counters: device gone, queue
 *    full, duplicate key, or stored with the next `seq`s of its queues;
 * 4. insert every stored row (and the fan-outs' payloads) and advance the counters in one statement;
 * 5. record the keys' counts, and release the keys of sends that stored nothing (one statement);
 * 6. register blob fetchers (per send that has them);
 * 7. delete every acknowledged row in one statement (its trigger updates depths and payloads; the
 *    counters are already locked by step 2).
 *
 * A counter stays locked to the COMMIT, so per queue `seq`s are handed out in commit order, as before
 * batching: a delivery cursor never passes an envelope that commits later.
 */
import type { DeviceRef } from '../../ids.js';
import type { InsertOptions, InsertResult, NewEnvelope, StoredEnvelope } from '../stores.js';
import { registerFetchers } from './blob-index.js';
import type { BatchExecutor } from './group-commit.js';
import { sql, type PgHandle } from './sql.js';

/** One queue row to insert: its content inline, or empty in a fan-out (whose content is the payload). */
export interface QueueRow {
  readonly envelope: NewEnvelope;
  readonly content: Uint8Array;
}

/** A write of the message store: a send (plain or fan-out) or the delete of an acknowledged envelope. */
export type MessageJob =
  | {
      readonly kind: 'insert';
      readonly rows: readonly QueueRow[];
      /** A fan-out's content, stored once in `payloads` (the rows' own content is then empty). */
      readonly payload: Uint8Array | undefined;
      readonly options: InsertOptions;
    }
  | { readonly kind: 'remove'; readonly ref: DeviceRef; readonly seq: number };

/** The answer to a send; undefined for a delete. */
export type MessageJobResult = InsertResult | undefined;

type InsertJob = Extract<MessageJob, { kind: 'insert' }>;

/** A map key for an idempotency key (scope and key bytes). */
const keyId = (scope: string, key: Uint8Array): string => `${scope}\u0000${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}`;

/** What happened to an idempotency key in this batch. */
interface KeyState {
  readonly scope: string;
  readonly key: Uint8Array;
  /** Claimed by this transaction (new), or what an earlier send stored under it. */
  readonly claimed: boolean;
  readonly seenStored: number;
  /** Envelopes stored under it by a send of this batch (undefined: none stored yet). */
  stored: number | undefined;
}

/** Claims the keys of the batch's sends (step 1); a state per distinct key. */
async function claimKeys(db: PgHandle, jobs: readonly InsertJob[]): Promise<Map<string, KeyState>> {
  const keys = new Map<string, { scope: string; key: Uint8Array; now: number }>();
  for (const job of jobs) {
    const idem = job.options.idempotency;
    if (idem === undefined) continue;
    const id = keyId(idem.scope, idem.key);
    if (!keys.has(id)) keys.set(id, { scope: idem.scope, key: idem.key, now: job.options.now });
  }
  const states = new Map<string, KeyState>();
  if (keys.size === 0) return states;
  // In key order, as one statement: two batches claiming overlapping keys wait in one direction only.
  const sorted = [...keys.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, k]) => k);
  const claimed = await db.all<{ scope: string; key: Uint8Array }>(sql`
    INSERT INTO idempotency_keys (scope, key, stored, created_at)
    SELECT u.s, u.k, 0, u.t FROM unnest(${sorted.map((k) => k.scope)}::text[], ${sorted.map((k) => k.key)}::bytea[], ${sorted.map((k) => k.now)}::bigint[]) AS u (s, k, t)
    ON CONFLICT (scope, key) DO NOTHING RETURNING scope, key`);
  const mine = new Set(claimed.map((r) => keyId(r.scope, r.key)));
  const seen = sorted.filter((k) => !mine.has(keyId(k.scope, k.key)));
  const seenStored = new Map<string, number>();
  if (seen.length > 0) {
    const rows = await db.all<{ scope: string; key: Uint8Array; stored: number }>(sql`
      SELECT i.scope, i.key, i.stored FROM idempotency_keys i
      JOIN unnest(${seen.map((k) => k.scope)}::text[], ${seen.map((k) => k.key)}::bytea[]) AS u (s, k) ON i.scope = u.s AND i.key = u.k`);
    for (const r of rows) seenStored.set(keyId(r.scope, r.key), r.stored);
  }
  for (const k of sorted) {
    const id = keyId(k.scope, k.key);
    states.set(id, { scope: k.scope, key: k.key, claimed: mine.has(id), seenStored: seenStored.get(id) ?? 0, stored: undefined });
  }
  return states;
}

/** The locked counters of a queue, advanced as the batch's sends are decided. */
interface Queue {
  depth: number;
  nextSeq: number;
  adding: number;
}

/** Locks the devices and counters of `refs` (step 2); a missing entry is a device that no longer exists. */
async function lockQueues(db: PgHandle, refs: readonly number[]): Promise<Map<number, Queue>> {
  const rows = await db.all<{ device_ref: number; depth: number; last_seq: number }>(sql`
    SELECT device_ref, depth, last_seq FROM device_queues
    WHERE device_ref IN (SELECT ref FROM devices WHERE ref = ANY(${refs}::bigint[]) ORDER BY ref FOR KEY SHARE)
    ORDER BY device_ref FOR UPDATE`);
  return new Map(rows.map((r) => [r.device_ref, { depth: r.depth, nextSeq: r.last_seq + 1, adding: 0 }]));
}

/** Decides one send against the locked queues (step 3); advances them when it stores. */
function decide(job: InsertJob, queues: Map<number, Queue>, keys: Map<string, KeyState>): InsertResult {
  const idem = job.options.idempotency;
  const key = idem === undefined ? undefined : keys.get(keyId(idem.scope, idem.key));
  if (key !== undefined) {
    if (!key.claimed) return { kind: 'duplicate', stored: key.seenStored };
    if (key.stored !== undefined) return { kind: 'duplicate', stored: key.stored };
  }
  const adding = new Map<number, number>();
  for (const r of job.rows) adding.set(r.envelope.ref, (adding.get(r.envelope.ref) ?? 0) + 1);
  for (const ref of adding.keys()) if (!queues.has(ref)) return { kind: 'device-gone' };
  const max = job.options.maxQueueDepth;
  for (const [ref, n] of adding) if ((queues.get(ref) as Queue).depth + n > max) return { kind: 'queue-full' };
  const envelopes = job.rows.map((r): StoredEnvelope => {
    const queue = queues.get(r.envelope.ref) as Queue;
    const seq = queue.nextSeq++;
    queue.depth++;
    queue.adding++;
    return { ...r.envelope, seq };
  });
  if (key !== undefined) key.stored = envelopes.length;
  return { kind: 'stored', envelopes };
}

/** Inserts the stored rows and payloads and advances the counters, in one statement (step 4). */
async function insertStored(db: PgHandle, queues: Map<number, Queue>, stored: ReadonlyArray<{ job: InsertJob; envelopes: readonly StoredEnvelope[] }>): Promise<void> {
  const fanOuts = stored.filter((s) => s.job.payload !== undefined);
  const payloadIds =
    fanOuts.length === 0
      ? []
      : (await db.all<{ id: number }>(sql`SELECT nextval(pg_get_serial_sequence('payloads', 'id'))::bigint AS id FROM generate_series(1, ${fanOuts.length}::integer)`)).map((r) => r.id);
  const payloadOf = new Map(fanOuts.map((s, i) => [s.job, payloadIds[i] ?? 0]));
  const rows = stored.flatMap((s) => s.envelopes.map((e, i) => ({ e, content: (s.job.rows[i] as QueueRow).content, payload: payloadOf.get(s.job) ?? null })));
  const counters = [...queues.entries()].filter(([, q]) => q.adding > 0);
  await db.run(sql`
    WITH counters AS (
      UPDATE device_queues q SET last_seq = q.last_seq + a.n, depth = q.depth + a.n
      FROM unnest(${counters.map(([ref]) => ref)}::bigint[], ${counters.map(([, q]) => q.adding)}::integer[]) AS a (ref, n) WHERE q.device_ref = a.ref),
    payload_rows AS (
      INSERT INTO payloads (id, refs, content) OVERRIDING SYSTEM VALUE
      SELECT * FROM unnest(${payloadIds}::bigint[], ${fanOuts.map((s) => s.envelopes.length)}::integer[], ${fanOuts.map((s) => s.job.payload ?? null)}::bytea[]))
    INSERT INTO messages (device_ref, seq, guid, type, source_account_id, source_device_id, destination_device_id, timestamp, server_timestamp, content, payload_id, group_id)
    SELECT * FROM unnest(
      ${rows.map((r) => r.e.ref)}::bigint[], ${rows.map((r) => r.e.seq)}::bigint[], ${rows.map((r) => r.e.guid)}::bytea[], ${rows.map((r) => r.e.type)}::integer[],
      ${rows.map((r) => r.e.sourceAccountId)}::text[], ${rows.map((r) => r.e.sourceDeviceId)}::integer[], ${rows.map((r) => r.e.destinationDeviceId)}::integer[],
      ${rows.map((r) => r.e.timestamp)}::bigint[], ${rows.map((r) => r.e.serverTimestamp)}::bigint[], ${rows.map((r) => r.content)}::bytea[],
      ${rows.map((r) => r.payload)}::bigint[], ${rows.map((r) => r.e.groupId ?? null)}::text[])`);
}

/** Records the counts of the keys that stored, releases those whose sends stored nothing (step 5). */
async function settleKeys(db: PgHandle, keys: Map<string, KeyState>): Promise<void> {
  const claimed = [...keys.values()].filter((k) => k.claimed);
  if (claimed.length === 0) return;
  const done = claimed.filter((k) => k.stored !== undefined);
  const released = claimed.filter((k) => k.stored === undefined);
  await db.run(sql`
    WITH released AS (
      DELETE FROM idempotency_keys i USING unnest(${released.map((k) => k.scope)}::text[], ${released.map((k) => k.key)}::bytea[]) AS u (s, k)
      WHERE i.scope = u.s AND i.key = u.k)
    UPDATE idempotency_keys i SET stored = u.n
    FROM unnest(${done.map((k) => k.scope)}::text[], ${done.map((k) => k.key)}::bytea[], ${done.map((k) => k.stored ?? 0)}::integer[]) AS u (s, k, n)
    WHERE i.scope = u.s AND i.key = u.k`);
}

/** Runs the message writes of a batch (see the comment at the top). */
export const messageBatch: BatchExecutor<MessageJob, MessageJobResult> = {
  async run(db: PgHandle, jobs: readonly MessageJob[]): Promise<MessageJobResult[]> {
    const inserts = jobs.filter((j): j is InsertJob => j.kind === 'insert');
    const removes = jobs.filter((j): j is Extract<MessageJob, { kind: 'remove' }> => j.kind === 'remove');
    const keys = await claimKeys(db, inserts);
    const refs = new Set<number>();
    for (const j of inserts) for (const r of j.rows) refs.add(r.envelope.ref);
    for (const j of removes) refs.add(j.ref);
    const queues = refs.size === 0 ? new Map<number, Queue>() : await lockQueues(db, [...refs].sort((x, y) => x - y));
    const results = new Map<MessageJob, MessageJobResult>();
    const stored: Array<{ job: InsertJob; envelopes: readonly StoredEnvelope[] }> = [];
    for (const job of inserts) {
      const result = decide(job, queues, keys);
      results.set(job, result);
      if (result.kind === 'stored' && result.envelopes.length > 0) stored.push({ job, envelopes: result.envelopes });
    }
    if (stored.length > 0) await insertStored(db, queues, stored);
    await settleKeys(db, keys);
    for (const { job, envelopes } of stored) {
      if (job.options.blobFetches !== undefined) await registerFetchers(db, job.options.blobFetches, envelopes.map((e) => e.ref), job.options.now);
    }
    if (removes.length > 0) {
      // The trigger updates the depths and releases payloads; the counters are locked already (step 2).
      await db.run(sql`
        DELETE FROM messages m USING unnest(${removes.map((r) => r.ref)}::bigint[], ${removes.map((r) => r.seq)}::bigint[]) AS a (ref, seq)
        WHERE m.device_ref = a.ref AND m.seq = a.seq`);
    }
    return jobs.map((j) => results.get(j));
  },
};
