import type { AccountId, DeviceId, DeviceRef, GroupId } from '../../ids.js';
import { RandomPool } from '../../random-pool.js';
import type {
  GroupDecision,
  GroupDeviceRecord,
  GroupMemberRecord,
  GroupNotice,
  GroupRecord,
  GroupSend,
  GroupSendResult,
  GroupSettingsRecord,
  GroupStore,
  StoredEnvelope,
} from '../stores.js';
import { registerFetchers } from './blob-index.js';
import type { GroupCommitWriter } from './group-commit.js';
import { idempotencySeen, recordIdempotency, type SqliteMessageStore } from './message-store.js';
import { sql, type SqlHandle } from './sql.js';

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
  admin: number;
  joined_at: number;
  joined_revision: number;
}

interface DeviceRow {
  ref: number;
  account_id: string;
  device_id: number;
  registration_id: number;
}

/** Bits of `groups.settings`. */
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
  admin: row.admin !== 0,
  joinedAt: row.joined_at,
  joinedRevision: row.joined_revision,
});

const toDevice = (row: DeviceRow): GroupDeviceRecord => ({
  ref: row.ref as DeviceRef,
  accountId: row.account_id as AccountId,
  deviceId: row.device_id as DeviceId,
  registrationId: row.registration_id,
});

function readGroup(db: SqlHandle, id: GroupId): GroupRecord | undefined {
  const row = db.get<GroupRow>(sql`SELECT id, revision, settings, attributes, invite_hash, created_at, creator FROM groups WHERE id = ${id}`);
  if (row === undefined) return undefined;
  const members = db
    .all<MemberRow>(sql`SELECT account_id, admin, joined_at, joined_revision FROM group_members WHERE group_id = ${id} ORDER BY account_id`)
    .map(toMember);
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

/**
 * The devices a group message must reach: every member's primary and the companions its signed device list
 * names (a registered companion that is not listed yet is neither required nor reachable). Group updates
 * (type 9) go to every existing device instead (`#queueNotice`).
 */
function readDevices(db: SqlHandle, id: GroupId): GroupDeviceRecord[] {
  return db
    .all<DeviceRow>(sql`
      SELECT d.ref, d.account_id, d.device_id, d.registration_id
      FROM group_members m JOIN devices d ON d.account_id = m.account_id
      WHERE m.group_id = ${id} AND (d.device_id = 1 OR d.listed = 1)
      ORDER BY d.account_id, d.device_id`)
    .map(toDevice);
}

/** Writes `next` over `current` (either may be undefined: create, delete), changing only the member rows that differ. */
function writeGroup(db: SqlHandle, id: GroupId, current: GroupRecord | undefined, next: GroupRecord | undefined): void {
  if (next === undefined) {
    db.run(sql`DELETE FROM groups WHERE id = ${id}`);
    return;
  }
  db.run(sql`
    INSERT INTO groups (id, revision, settings, attributes, invite_hash, created_at, creator)
    VALUES (${id}, ${next.revision}, ${settingsBits(next.settings)}, ${next.attributes}, ${next.inviteHash ?? null}, ${next.createdAt}, ${next.creator})
    ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, settings = excluded.settings, attributes = excluded.attributes, invite_hash = excluded.invite_hash`);
  const before = new Map((current?.members ?? []).map((m) => [m.accountId, m]));
  const after = new Set(next.members.map((m) => m.accountId));
  for (const old of before.values()) {
    if (!after.has(old.accountId)) db.run(sql`DELETE FROM group_members WHERE group_id = ${id} AND account_id = ${old.accountId}`);
  }
  for (const m of next.members) {
    const old = before.get(m.accountId);
    if (old === undefined) {
      db.run(sql`INSERT INTO group_members (group_id, account_id, admin, joined_at, joined_revision)
                 VALUES (${id}, ${m.accountId}, ${m.admin ? 1 : 0}, ${m.joinedAt}, ${m.joinedRevision})`);
    } else if (old.admin !== m.admin) {
      db.run(sql`UPDATE group_members SET admin = ${m.admin ? 1 : 0} WHERE group_id = ${id} AND account_id = ${m.accountId}`);
    }
  }
}

/**
 * {@link GroupStore} on SQLite. Every change and every group message is one write job of the group-commit
 * writer (so durable before it resolves), reading the group inside the job: concurrent changes apply one
 * after the other, each on the state the previous one left. Queue rows go through the message store, so
 * its depth cache and the once-stored payloads stay the same for 1:1 and group envelopes.
 */
export class SqliteGroupStore implements GroupStore {
  readonly #reader: SqlHandle;
  readonly #writer: GroupCommitWriter;
  readonly #messages: SqliteMessageStore;
  readonly #random = new RandomPool();

  constructor(reader: SqlHandle, writer: GroupCommitWriter, messages: SqliteMessageStore) {
    this.#reader = reader;
    this.#writer = writer;
    this.#messages = messages;
  }

  async get(id: GroupId): Promise<GroupRecord | undefined> {
    return readGroup(this.#reader, id);
  }

  async groupsOf(account: AccountId): Promise<GroupId[]> {
    return this.#reader.all<{ group_id: string }>(sql`SELECT group_id FROM group_members WHERE account_id = ${account} ORDER BY group_id`).map((r) => r.group_id as GroupId);
  }

  async devices(id: GroupId): Promise<GroupDeviceRecord[]> {
    return readDevices(this.#reader, id);
  }

  apply<R>(id: GroupId, decide: (current: GroupRecord | undefined) => GroupDecision<R>): Promise<{ readonly result: R; readonly envelopes: readonly StoredEnvelope[] }> {
    return this.#job((db) => {
      const current = readGroup(db, id);
      const decision = decide(current);
      if (decision.kind === 'unchanged') return { result: decision.result, envelopes: [] };
      writeGroup(db, id, current, decision.next);
      const envelopes = decision.notices.flatMap((notice) => this.#queueNotice(db, notice));
      return { result: decision.result, envelopes };
    });
  }

  send(s: GroupSend): Promise<GroupSendResult> {
    return this.#job((db): GroupSendResult => {
      const group = readGroup(db, s.groupId);
      if (group === undefined) return { kind: 'not-found' };
      s.authorize(group);
      const seen = s.options.idempotency === undefined ? undefined : idempotencySeen(db, s.options.idempotency);
      if (seen !== undefined) return seen;
      const recipients = readDevices(db, s.groupId).filter((d) => d.ref !== s.senderRef);
      s.verify(recipients);
      const targets = recipients.map((d) => ({ ref: d.ref, deviceId: d.deviceId, guid: this.#random.take(16) }));
      const stored = this.#messages.fanOutInJob(db, s.envelope, targets, s.options.maxQueueDepth);
      if (stored === undefined) return { kind: 'queue-full' };
      if (s.options.idempotency !== undefined) recordIdempotency(db, s.options.idempotency, stored.length, s.options.now);
      if (s.options.blobFetches !== undefined) registerFetchers(db, s.options.blobFetches, stored.map((e) => e.ref), s.options.now);
      return { kind: 'stored', envelopes: stored };
    });
  }

  /** Queues a notice for every device of its accounts (exempt from the depth limit). */
  #queueNotice(db: SqlHandle, notice: GroupNotice): StoredEnvelope[] {
    const targets = notice.accounts.flatMap((account) =>
      db
        .all<{ ref: number; device_id: number }>(sql`SELECT ref, device_id FROM devices WHERE account_id = ${account} ORDER BY device_id`)
        .map((d) => ({ ref: d.ref as DeviceRef, deviceId: d.device_id as DeviceId, guid: this.#random.take(16) })),
    );
    return this.#messages.fanOutInJob(db, notice.envelope, targets, undefined) ?? [];
  }

  async #job<T>(job: (db: SqlHandle) => T): Promise<T> {
    try {
      return await this.#writer.enqueue(job);
    } catch (err) {
      // The batch may not have committed: the message store recounts depths from the table.
      this.#messages.forgetDepths();
      throw err;
    }
  }
}
