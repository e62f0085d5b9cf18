import type { AccountId, DeviceId, DeviceRef, GroupId } from '../../ids.js';
import { RandomPool } from '../../random-pool.js';
import type {
  FanOutRecipient,
  GroupDecision,
  GroupDeviceRecord,
  GroupMemberRecord,
  GroupNotice,
  GroupRecord,
  GroupSend,
  GroupSendResult,
  GroupSettingsRecord,
  GroupStore,
  InsertResult,
  StoredEnvelope,
} from '../stores.js';
import { registerFetchers } from './blob-index.js';
import { Rollback, type PostgresDatabase } from './database.js';
import { LockClass, lockExclusive, lockShared } from './locks.js';
import { claimIdempotency, DeviceGone, insertFanOutRows, recordIdempotency } from './message-store.js';
import { sql, type PgHandle } from './sql.js';

interface GroupRow {
  id: string;
  revision: number;
  settings: number;
  attributes: Uint8Array;
  invite_hash: Uint8Array | null;
  created_at: number;
  creator: string;
}

interface MemberRow {
  account_id: string;
  admin: boolean;
  joined_at: number;
  joined_revision: number;
}

interface DeviceRow {
  ref: number;
  account_id: string;
  device_id: number;
  registration_id: number;
}

/** Bits of `groups.settings` (the same as SQLite's). */
const MANAGE_MEMBERS = 1;
const EDIT_INFO = 2;
const SEND = 4;

const settingsBits = (s: GroupSettingsRecord): number => (s.adminsManageMembers ? MANAGE_MEMBERS : 0) | (s.adminsEditInfo ? EDIT_INFO : 0) | (s.adminsSend ? SEND : 0);

const toSettings = (bits: number): GroupSettingsRecord => ({
  adminsManageMembers: (bits & MANAGE_MEMBERS) !== 0,
  adminsEditInfo: (bits & EDIT_INFO) !== 0,
  adminsSend: (bits & SEND) !== 0,
});

const toMember = (row: MemberRow): GroupMemberRecord => ({
  accountId: row.account_id as AccountId,
  admin: row.admin,
  joinedAt: row.joined_at,
  joinedRevision: row.joined_revision,
});

const toDevice = (row: DeviceRow): GroupDeviceRecord => ({
  ref: row.ref as DeviceRef,
  accountId: row.account_id as AccountId,
  deviceId: row.device_id as DeviceId,
  registrationId: row.registration_id,
});

async function readGroup(db: PgHandle, id: GroupId): Promise<GroupRecord | undefined> {
  const row = await db.get<GroupRow>(sql`SELECT id, revision, settings, attributes, invite_hash, created_at, creator FROM groups WHERE id = ${id}`);
  if (row === undefined) return undefined;
  // COLLATE "C": account ids in byte order, as SQLite and JavaScript compare them, whatever the database's collation.
  const members = (
    await db.all<MemberRow>(sql`SELECT account_id, admin, joined_at, joined_revision FROM group_members WHERE group_id = ${id} ORDER BY account_id COLLATE "C"`)
  ).map(toMember);
  return {
    id,
    revision: row.revision,
    settings: toSettings(row.settings),
    attributes: row.attributes,
    inviteHash: row.invite_hash ?? undefined,
    createdAt: row.created_at,
    creator: row.creator as AccountId,
    members,
  };
}

/** The devices a group message must reach: every member's primary and its listed companions. */
async function readDevices(db: PgHandle, id: GroupId): Promise<GroupDeviceRecord[]> {
  const rows = await db.all<DeviceRow>(sql`
    SELECT d.ref, d.account_id, d.device_id, d.registration_id
    FROM group_members m JOIN devices d ON d.account_id = m.account_id
    WHERE m.group_id = ${id} AND (d.device_id = 1 OR d.listed)
    ORDER BY d.account_id COLLATE "C", d.device_id`);
  return rows.map(toDevice);
}

/** Writes `next` over `current` (either may be undefined: create, delete), changing only the member rows that differ. */
async function writeGroup(db: PgHandle, id: GroupId, current: GroupRecord | undefined, next: GroupRecord | undefined): Promise<void> {
  if (next === undefined) {
    await db.run(sql`DELETE FROM groups WHERE id = ${id}`);
    return;
  }
  await db.run(sql`
    INSERT INTO groups (id, revision, settings, attributes, invite_hash, created_at, creator)
    VALUES (${id}, ${next.revision}, ${settingsBits(next.settings)}, ${next.attributes}, ${next.inviteHash ?? null}, ${next.createdAt}, ${next.creator})
    ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, settings = excluded.settings, attributes = excluded.attributes, invite_hash = excluded.invite_hash`);
  const before = new Map((current?.members ?? []).map((m) => [m.accountId, m]));
  const after = new Set(next.members.map((m) => m.accountId));
  const gone = [...before.keys()].filter((a) => !after.has(a));
  if (gone.length > 0) await db.run(sql`DELETE FROM group_members WHERE group_id = ${id} AND account_id = ANY(${gone}::text[])`);
  const added = next.members.filter((m) => !before.has(m.accountId));
  if (added.length > 0) {
    await db.run(sql`
      INSERT INTO group_members (group_id, account_id, admin, joined_at, joined_revision)
      SELECT ${id}, m.account_id, m.admin, m.joined_at, m.joined_revision
      FROM unnest(${added.map((m) => m.accountId)}::text[], ${added.map((m) => (m.admin ? 1 : 0))}::integer[]::boolean[], ${added.map((m) => m.joinedAt)}::bigint[], ${added.map((m) => m.joinedRevision)}::integer[])
        AS m (account_id, admin, joined_at, joined_revision)`);
  }
  for (const m of next.members) {
    const old = before.get(m.accountId);
    if (old !== undefined && old.admin !== m.admin) {
      await db.run(sql`UPDATE group_members SET admin = ${m.admin} WHERE group_id = ${id} AND account_id = ${m.accountId}`);
    }
  }
}

/** How often `apply` is run again when a device it queues a notice for was deleted meanwhile. */
const MAX_APPLY_ATTEMPTS = 3;

/**
 * {@link GroupStore} on PostgreSQL. A change holds the group's advisory lock exclusively for its whole
 * transaction (the group may not exist yet, so there is no row to lock); a message holds it shared. So
 * changes of one group from several nodes apply one after the other, each on the state the previous one
 * committed, and a message is checked and queued against one state, while messages do not wait for each
 * other. Queue rows go through the message store's functions (seqs, depths, payloads stored once).
 */
export class PostgresGroupStore implements GroupStore {
  readonly #db: PostgresDatabase;
  readonly #random = new RandomPool();

  constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  get(id: GroupId): Promise<GroupRecord | undefined> {
    return readGroup(this.#db.read, id);
  }

  async groupsOf(account: AccountId): Promise<GroupId[]> {
    const rows = await this.#db.read.all<{ group_id: string }>(sql`SELECT group_id FROM group_members WHERE account_id = ${account} ORDER BY group_id COLLATE "C"`);
    return rows.map((r) => r.group_id as GroupId);
  }

  devices(id: GroupId): Promise<GroupDeviceRecord[]> {
    return readDevices(this.#db.read, id);
  }

  async apply<R>(id: GroupId, decide: (current: GroupRecord | undefined) => GroupDecision<R>): Promise<{ readonly result: R; readonly envelopes: readonly StoredEnvelope[] }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#db.transaction(async (db) => {
          await lockExclusive(db, LockClass.Group, id);
          const current = await readGroup(db, id);
          const decision = decide(current);
          if (decision.kind === 'unchanged') return { result: decision.result, envelopes: [] };
          await writeGroup(db, id, current, decision.next);
          const envelopes: StoredEnvelope[] = [];
          for (const notice of decision.notices) envelopes.push(...(await this.#queueNotice(db, notice)));
          return { result: decision.result, envelopes };
        });
      } catch (err) {
        // A device deleted between reading the targets and queueing: decide again on fresh state.
        if (err instanceof DeviceGone && attempt < MAX_APPLY_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  async send(s: GroupSend): Promise<GroupSendResult> {
    try {
      return await this.#db.transaction(async (db): Promise<GroupSendResult> => {
        await lockShared(db, LockClass.Group, s.groupId);
        const group = await readGroup(db, s.groupId);
        if (group === undefined) return { kind: 'not-found' };
        s.authorize(group);
        if (s.options.idempotency !== undefined) await claimIdempotency(db, s.options.idempotency, s.options.now);
        const recipients = (await readDevices(db, s.groupId)).filter((d) => d.ref !== s.senderRef);
        s.verify(recipients);
        const targets = recipients.map((d): FanOutRecipient => ({ ref: d.ref, deviceId: d.deviceId, guid: this.#random.take(16) }));
        const stored = await insertFanOutRows(db, s.envelope, targets, s.options.maxQueueDepth);
        if (stored === undefined) throw new Rollback<InsertResult>({ kind: 'queue-full' });
        if (s.options.idempotency !== undefined) await recordIdempotency(db, s.options.idempotency, stored.length);
        if (s.options.blobFetches !== undefined) await registerFetchers(db, s.options.blobFetches, stored.map((e) => e.ref), s.options.now);
        return { kind: 'stored', envelopes: stored };
      });
    } catch (err) {
      if (err instanceof DeviceGone) return { kind: 'device-gone' };
      throw err;
    }
  }

  /** Queues a notice for every device of its accounts (exempt from the depth limit). */
  async #queueNotice(db: PgHandle, notice: GroupNotice): Promise<StoredEnvelope[]> {
    if (notice.accounts.length === 0) return [];
    const rows = await db.all<{ ref: number; device_id: number }>(sql`
      SELECT ref, device_id FROM devices WHERE account_id = ANY(${notice.accounts}::text[])
      ORDER BY array_position(${notice.accounts}::text[], account_id), device_id`);
    const targets = rows.map((d): FanOutRecipient => ({ ref: d.ref as DeviceRef, deviceId: d.device_id as DeviceId, guid: this.#random.take(16) }));
    return (await insertFanOutRows(db, notice.envelope, targets, undefined)) ?? [];
  }
}
