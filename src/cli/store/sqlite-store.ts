/**
 * The persistent {@link ClientStore} for Node: one SQLite file, `parley.db`, in the profile folder
 * (better-sqlite3, WAL, `synchronous = FULL`: a committed transaction is on disk before the ack that follows
 * it goes out). Transactions are SQLite transactions (`BEGIN IMMEDIATE`, so a second process on the same
 * profile waits instead of interleaving), savepoints are SQLite savepoints.
 *
 * The profile holds private keys: the folder is created 0700 and the database file 0600.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SerialQueue } from '../../client/async.js';
import { ClientError, ClientErrorCode } from '../../client/errors.js';
import type { AccountId, ConversationId, E164, GroupId, MessageId } from '../../client/ids.js';
import {
  STORE_FORMAT_VERSION,
  type AccountRecord,
  type AttachmentRecord,
  type CallRecord,
  type ClientStore,
  type ContactRecord,
  type DeviceIdentityRecord,
  type GroupRecord,
  type GroupUpdateRecord,
  type IdentityRecord,
  type JsonValue,
  type MemberReceiptRecord,
  type MessageRecord,
  type OutboxEntry,
  type StoreTx,
  type UploadJobRecord,
  type VerificationStatus,
} from '../../client/store/types.js';
import { decodeRecord, encodeRecord } from './json-codec.js';
import { migrate } from './migrations/index.js';
import { Queries, sql } from './sql.js';

/** The database file's name inside the profile folder. */
export const DATABASE_FILE = 'parley.db';

const bytes = (b: Uint8Array | Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const bool = (n: number): boolean => n !== 0;
const int = (b: boolean): number => (b ? 1 : 0);
const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

function corrupt(what: string, cause?: unknown): ClientError {
  return new ClientError(ClientErrorCode.StoreCorrupt, `stored ${what} does not decode`, { cause });
}

interface MessageRow {
  id: string;
  conversation_id: string;
  sender_id: string;
  direction: string;
  timestamp: number;
  server_timestamp: number | null;
  received_at: number;
  kind: string;
  body: string;
  quote: string | null;
  reactions: string;
  edited_at: number | null;
  deleted: number;
  view_once: number;
  expire_timer: number;
  expires_at: number | null;
  status: string;
  error: string | null;
  receipts: string;
  group_update: string | null;
  attachments: string;
  call: string | null;
}

function messageFromRow(r: MessageRow): MessageRecord {
  try {
    return {
      id: r.id as MessageId,
      conversationId: r.conversation_id as ConversationId,
      senderId: r.sender_id as AccountId,
      direction: r.direction as MessageRecord['direction'],
      timestamp: r.timestamp,
      serverTimestamp: opt(r.server_timestamp),
      receivedAt: r.received_at,
      kind: r.kind as MessageRecord['kind'],
      body: r.body,
      quote: r.quote === null ? undefined : (JSON.parse(r.quote) as MessageRecord['quote']),
      reactions: JSON.parse(r.reactions) as MessageRecord['reactions'],
      editedAt: opt(r.edited_at),
      deleted: bool(r.deleted),
      viewOnce: bool(r.view_once),
      expireTimer: r.expire_timer,
      expiresAt: opt(r.expires_at),
      status: r.status as MessageRecord['status'],
      error: opt(r.error),
      receipts: JSON.parse(r.receipts) as MemberReceiptRecord[],
      groupUpdate: r.group_update === null ? undefined : decodeRecord<GroupUpdateRecord>(r.group_update),
      attachments: decodeRecord<AttachmentRecord[]>(r.attachments),
      ...(r.call === null ? {} : { call: decodeRecord<CallRecord>(r.call) }),
    };
  } catch (cause) {
    throw corrupt('message', cause);
  }
}

interface OutboxRow {
  id: string;
  kind: string;
  recipient_id: string;
  timestamp: number;
  content: Buffer;
  state: string;
  request: Buffer | null;
  attempts: number;
  message_id: string | null;
  created_at: number;
  sent_at: number | null;
  retries_answered: number;
  error: string | null;
}

function outboxFromRow(r: OutboxRow): OutboxEntry {
  return {
    id: r.id,
    kind: r.kind as OutboxEntry['kind'],
    recipientId: r.recipient_id as ConversationId,
    timestamp: r.timestamp,
    content: bytes(r.content),
    state: r.state as OutboxEntry['state'],
    request: r.request === null ? undefined : bytes(r.request),
    attempts: r.attempts,
    messageId: opt(r.message_id) as MessageId | undefined,
    createdAt: r.created_at,
    sentAt: opt(r.sent_at),
    retriesAnswered: r.retries_answered,
    error: opt(r.error),
  };
}

interface ContactRow {
  account_id: string;
  number: string | null;
  number_verified: number;
  expire_timer: number;
  created_at: number;
  updated_at: number;
}

function contactFromRow(r: ContactRow): ContactRecord {
  return {
    accountId: r.account_id as AccountId,
    number: opt(r.number) as E164 | undefined,
    numberVerified: bool(r.number_verified),
    expireTimer: r.expire_timer,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

interface DeviceIdentityRow {
  account_id: string;
  device_id: number;
  identity_key: Buffer;
  list_version: number;
  first_seen_at: number;
  changed_at: number | null;
}

function deviceIdentityFromRow(r: DeviceIdentityRow): DeviceIdentityRecord {
  return {
    accountId: r.account_id as AccountId,
    deviceId: r.device_id,
    identityKey: bytes(r.identity_key),
    listVersion: r.list_version,
    firstSeenAt: r.first_seen_at,
    changedAt: opt(r.changed_at),
  };
}

function groupFromRow(r: { format: number; data: string }): GroupRecord {
  if (r.format !== STORE_FORMAT_VERSION) throw new ClientError(ClientErrorCode.StoreCorrupt, `group record format ${r.format} is unknown`);
  try {
    return decodeRecord<GroupRecord>(r.data);
  } catch (cause) {
    throw corrupt('group', cause);
  }
}

function uploadJobFromRow(r: { format: number; data: string }): UploadJobRecord {
  if (r.format !== STORE_FORMAT_VERSION) throw new ClientError(ClientErrorCode.StoreCorrupt, `upload job format ${r.format} is unknown`);
  try {
    return decodeRecord<UploadJobRecord>(r.data);
  } catch (cause) {
    throw corrupt('upload job', cause);
  }
}

/** The account document as stored (JSON; bytes in base64). */
interface AccountDocument {
  serverUrl: string;
  number: string;
  accountId: string;
  deviceId: number;
  password: string;
  registrationId: number;
  identityPublicKey: string;
  identityPrivateKey: string;
  registeredAt: number;
}

export interface SqliteStoreOptions {
  /** Default Date.now (for migration timestamps). */
  readonly now?: () => number;
  /** How long to wait for another process's write transaction, ms (default 10,000). */
  readonly busyTimeoutMs?: number;
}

/** The SQLite {@link ClientStore}. */
export class SqliteClientStore implements ClientStore {
  readonly #db: Database.Database;
  readonly #q: Queries;
  readonly #queue = new SerialQueue();
  readonly #tx: StoreTx;
  #depth = 0;
  #inTransaction = false;
  #closed = false;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#q = new Queries(db);
    this.#tx = this.#makeTx();
  }

  /** Opens (creating and migrating) `parley.db` in `profileDir`. */
  static open(profileDir: string, options: SqliteStoreOptions = {}): SqliteClientStore {
    mkdirSync(profileDir, { recursive: true, mode: 0o700 });
    const file = path.join(profileDir, DATABASE_FILE);
    const created = !existsSync(file);
    const db = new Database(file);
    if (created) chmodSync(file, 0o600);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
      db.pragma('foreign_keys = ON');
      migrate(new Queries(db), (options.now ?? Date.now)());
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteClientStore(db);
  }

  /** The path of the database file. */
  get file(): string {
    return this.#db.name;
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      if (this.#closed) throw new ClientError(ClientErrorCode.Closed, 'store closed');
      this.#q.exec('BEGIN IMMEDIATE');
      this.#inTransaction = true;
      try {
        const result = await fn(this.#tx);
        this.#q.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.#db.inTransaction) this.#q.exec('ROLLBACK');
        throw err;
      } finally {
        this.#inTransaction = false;
        this.#depth = 0;
      }
    });
  }

  async close(): Promise<void> {
    await this.#queue.run(async () => {
      if (this.#closed) return;
      this.#closed = true;
      this.#db.close();
    });
  }

  #check(): void {
    if (!this.#inTransaction) throw new Error('store access outside a transaction');
  }

  #makeTx(): StoreTx {
    const q = this.#q;
    const c = (): Queries => {
      this.#check();
      return q;
    };
    return {
      account: {
        get: async () => {
          const row = c().get<{ format: number; data: string; account_identity_key: Buffer | null }>(
            sql`SELECT format, data, account_identity_key FROM account WHERE id = 1`,
          );
          if (!row) return undefined;
          if (row.format !== STORE_FORMAT_VERSION) throw new ClientError(ClientErrorCode.StoreCorrupt, `account record format ${row.format} is unknown`);
          try {
            const d = JSON.parse(row.data) as AccountDocument;
            return {
              serverUrl: d.serverUrl,
              number: d.number as E164,
              accountId: d.accountId as AccountId,
              deviceId: d.deviceId,
              password: d.password,
              registrationId: d.registrationId,
              identityPublicKey: unb64(d.identityPublicKey),
              identityPrivateKey: unb64(d.identityPrivateKey),
              registeredAt: d.registeredAt,
              ...(row.account_identity_key === null ? {} : { accountIdentityKey: bytes(row.account_identity_key) }),
            } satisfies AccountRecord;
          } catch (cause) {
            throw corrupt('account', cause);
          }
        },
        put: async (a) => {
          const doc: AccountDocument = {
            serverUrl: a.serverUrl,
            number: a.number,
            accountId: a.accountId,
            deviceId: a.deviceId,
            password: a.password,
            registrationId: a.registrationId,
            identityPublicKey: b64(a.identityPublicKey),
            identityPrivateKey: b64(a.identityPrivateKey),
            registeredAt: a.registeredAt,
          };
          c().run(sql`INSERT INTO account (id, format, data, account_identity_key)
                      VALUES (1, ${STORE_FORMAT_VERSION}, ${JSON.stringify(doc)}, ${a.accountIdentityKey ?? null})
                      ON CONFLICT (id) DO UPDATE SET format = excluded.format, data = excluded.data,
                        account_identity_key = excluded.account_identity_key`);
        },
      },
      settings: {
        get: async (key) => {
          const row = c().get<{ value: string }>(sql`SELECT value FROM settings WHERE key = ${key}`);
          if (!row) return undefined;
          try {
            return JSON.parse(row.value) as JsonValue;
          } catch (cause) {
            throw corrupt('setting', cause);
          }
        },
        put: async (key, value) => {
          c().run(sql`INSERT INTO settings (key, value) VALUES (${key}, ${JSON.stringify(value)}) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
        },
      },
      identities: {
        get: async (accountId) => {
          const r = c().get<{ account_id: string; identity_key: Buffer; status: string; first_seen_at: number; changed_at: number | null }>(
            sql`SELECT * FROM identities WHERE account_id = ${accountId}`,
          );
          if (!r) return undefined;
          return {
            accountId: r.account_id as AccountId,
            identityKey: bytes(r.identity_key),
            status: r.status as VerificationStatus,
            firstSeenAt: r.first_seen_at,
            changedAt: opt(r.changed_at),
          } satisfies IdentityRecord;
        },
        put: async (r) => {
          c().run(sql`INSERT INTO identities (account_id, identity_key, status, first_seen_at, changed_at)
                      VALUES (${r.accountId}, ${r.identityKey}, ${r.status}, ${r.firstSeenAt}, ${r.changedAt ?? null})
                      ON CONFLICT (account_id) DO UPDATE SET identity_key = excluded.identity_key, status = excluded.status,
                        first_seen_at = excluded.first_seen_at, changed_at = excluded.changed_at`);
        },
      },
      deviceIdentities: {
        get: async (accountId, deviceId) => {
          const r = c().get<DeviceIdentityRow>(sql`SELECT * FROM device_identities WHERE account_id = ${accountId} AND device_id = ${deviceId}`);
          return r && deviceIdentityFromRow(r);
        },
        put: async (r) => {
          c().run(sql`INSERT INTO device_identities (account_id, device_id, identity_key, list_version, first_seen_at, changed_at)
                      VALUES (${r.accountId}, ${r.deviceId}, ${r.identityKey}, ${r.listVersion}, ${r.firstSeenAt}, ${r.changedAt ?? null})
                      ON CONFLICT (account_id, device_id) DO UPDATE SET identity_key = excluded.identity_key, list_version = excluded.list_version,
                        first_seen_at = excluded.first_seen_at, changed_at = excluded.changed_at`);
        },
        remove: async (accountId, deviceId) => {
          c().run(sql`DELETE FROM device_identities WHERE account_id = ${accountId} AND device_id = ${deviceId}`);
        },
        list: async (accountId) =>
          c().all<DeviceIdentityRow>(sql`SELECT * FROM device_identities WHERE account_id = ${accountId} ORDER BY device_id`).map(deviceIdentityFromRow),
      },
      preKeys: {
        get: async (id) => {
          const r = c().get<{ record: Buffer }>(sql`SELECT record FROM pre_keys WHERE id = ${id}`);
          return r && bytes(r.record);
        },
        put: async (id, record) => {
          c().run(sql`INSERT OR REPLACE INTO pre_keys (id, record) VALUES (${id}, ${record})`);
        },
        remove: async (id) => {
          c().run(sql`DELETE FROM pre_keys WHERE id = ${id}`);
        },
        clear: async () => {
          c().run(sql`DELETE FROM pre_keys`);
        },
      },
      signedPreKeys: {
        get: async (id) => {
          const r = c().get<{ record: Buffer }>(sql`SELECT record FROM signed_pre_keys WHERE id = ${id}`);
          return r && bytes(r.record);
        },
        put: async (id, record, createdAt) => {
          c().run(sql`INSERT OR REPLACE INTO signed_pre_keys (id, record, created_at) VALUES (${id}, ${record}, ${createdAt})`);
        },
        remove: async (id) => {
          c().run(sql`DELETE FROM signed_pre_keys WHERE id = ${id}`);
        },
        list: async () =>
          c()
            .all<{ id: number; created_at: number }>(sql`SELECT id, created_at FROM signed_pre_keys ORDER BY id`)
            .map((r) => ({ id: r.id, createdAt: r.created_at })),
        clear: async () => {
          c().run(sql`DELETE FROM signed_pre_keys`);
        },
      },
      kyberPreKeys: {
        get: async (id) => {
          const r = c().get<{ record: Buffer; last_resort: number }>(sql`SELECT record, last_resort FROM kyber_pre_keys WHERE id = ${id}`);
          return r && { record: bytes(r.record), lastResort: bool(r.last_resort) };
        },
        put: async (id, record, o) => {
          c().run(sql`INSERT OR REPLACE INTO kyber_pre_keys (id, record, last_resort, created_at) VALUES (${id}, ${record}, ${int(o.lastResort)}, ${o.createdAt})`);
        },
        remove: async (id) => {
          c().run(sql`DELETE FROM kyber_pre_keys WHERE id = ${id}`);
        },
        list: async () =>
          c()
            .all<{ id: number; last_resort: number; created_at: number }>(sql`SELECT id, last_resort, created_at FROM kyber_pre_keys ORDER BY id`)
            .map((r) => ({ id: r.id, lastResort: bool(r.last_resort), createdAt: r.created_at })),
        clear: async () => {
          c().run(sql`DELETE FROM kyber_pre_keys`);
        },
      },
      sessions: {
        get: async (accountId, deviceId) => {
          const r = c().get<{ record: Buffer }>(sql`SELECT record FROM sessions WHERE account_id = ${accountId} AND device_id = ${deviceId}`);
          return r && bytes(r.record);
        },
        put: async (accountId, deviceId, record) => {
          c().run(sql`INSERT OR REPLACE INTO sessions (account_id, device_id, record) VALUES (${accountId}, ${deviceId}, ${record})`);
        },
        remove: async (accountId, deviceId) => {
          c().run(sql`DELETE FROM sessions WHERE account_id = ${accountId} AND device_id = ${deviceId}`);
        },
        devices: async (accountId) =>
          c()
            .all<{ device_id: number }>(sql`SELECT device_id FROM sessions WHERE account_id = ${accountId} ORDER BY device_id`)
            .map((r) => r.device_id),
        clear: async () => {
          c().run(sql`DELETE FROM sessions`);
        },
      },
      contacts: {
        get: async (accountId) => {
          const r = c().get<ContactRow>(sql`SELECT * FROM contacts WHERE account_id = ${accountId}`);
          return r && contactFromRow(r);
        },
        getByNumber: async (number) => {
          const r = c().get<ContactRow>(sql`SELECT * FROM contacts WHERE number = ${number} ORDER BY number_verified DESC, updated_at DESC LIMIT 1`);
          return r && contactFromRow(r);
        },
        put: async (x) => {
          c().run(sql`INSERT INTO contacts (account_id, number, number_verified, expire_timer, created_at, updated_at)
                      VALUES (${x.accountId}, ${x.number ?? null}, ${int(x.numberVerified)}, ${x.expireTimer}, ${x.createdAt}, ${x.updatedAt})
                      ON CONFLICT (account_id) DO UPDATE SET number = excluded.number, number_verified = excluded.number_verified,
                        expire_timer = excluded.expire_timer, created_at = excluded.created_at, updated_at = excluded.updated_at`);
        },
        list: async () => c().all<ContactRow>(sql`SELECT * FROM contacts ORDER BY coalesce(number, ''), account_id`).map(contactFromRow),
      },
      messages: {
        get: async (id) => {
          const r = c().get<MessageRow>(sql`SELECT * FROM messages WHERE id = ${id}`);
          return r && messageFromRow(r);
        },
        put: async (m) => {
          c().run(sql`INSERT OR REPLACE INTO messages (id, conversation_id, sender_id, direction, timestamp, server_timestamp, received_at, kind, body,
                        quote, reactions, edited_at, deleted, view_once, expire_timer, expires_at, status, error, receipts, group_update, attachments, call)
                      VALUES (${m.id}, ${m.conversationId}, ${m.senderId}, ${m.direction}, ${m.timestamp}, ${m.serverTimestamp ?? null}, ${m.receivedAt},
                        ${m.kind}, ${m.body}, ${m.quote ? JSON.stringify(m.quote) : null}, ${JSON.stringify(m.reactions)}, ${m.editedAt ?? null},
                        ${int(m.deleted)}, ${int(m.viewOnce)}, ${m.expireTimer}, ${m.expiresAt ?? null}, ${m.status}, ${m.error ?? null},
                        ${JSON.stringify(m.receipts)}, ${m.groupUpdate === undefined ? null : encodeRecord(m.groupUpdate)}, ${encodeRecord(m.attachments)},
                        ${m.call === undefined ? null : encodeRecord(m.call)})`);
        },
        remove: async (id) => {
          c().run(sql`DELETE FROM messages WHERE id = ${id}`);
        },
        list: async (conversationId, options = {}) => {
          const rows =
            options.limit === undefined
              ? c().all<MessageRow>(sql`SELECT * FROM messages WHERE conversation_id = ${conversationId} ORDER BY timestamp, id`)
              : c()
                  .all<MessageRow>(sql`SELECT * FROM messages WHERE conversation_id = ${conversationId} ORDER BY timestamp DESC, id DESC LIMIT ${options.limit}`)
                  .reverse();
          return rows.map(messageFromRow);
        },
        expired: async (now) => c().all<MessageRow>(sql`SELECT * FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ${now}`).map(messageFromRow),
        // The condition is isUnread (src/client/store/unread.ts), word for word as the messages_unread index has it.
        unread: async (conversationId, options = {}) =>
          c()
            .all<MessageRow>(
              sql`SELECT * FROM messages WHERE conversation_id = ${conversationId}
                    AND direction = 'incoming' AND status = 'received' AND kind <> 'group-update'
                  ORDER BY timestamp, id LIMIT ${options.limit === undefined ? -1 : Math.max(0, Math.floor(options.limit))}`,
            )
            .map(messageFromRow),
        summaries: async () => {
          const counts = new Map(
            c()
              .all<{ c: string; n: number }>(
                sql`SELECT conversation_id AS c, COUNT(*) AS n FROM messages
                    WHERE direction = 'incoming' AND status = 'received' AND kind <> 'group-update' GROUP BY conversation_id`,
              )
              .map((r) => [r.c, r.n]),
          );
          // One newest row per conversation, each found through messages_by_conversation.
          const last = c().all<MessageRow>(
            sql`SELECT m.* FROM (SELECT DISTINCT conversation_id AS c FROM messages) AS conv
                JOIN messages m ON m.id = (SELECT id FROM messages WHERE conversation_id = conv.c ORDER BY timestamp DESC, id DESC LIMIT 1)`,
          );
          return last.map((r) => {
            const m = messageFromRow(r);
            return { conversationId: m.conversationId, last: m, unread: counts.get(m.conversationId) ?? 0 };
          });
        },
      },
      outbox: {
        get: async (id) => {
          const r = c().get<OutboxRow>(sql`SELECT * FROM outbox WHERE id = ${id}`);
          return r && outboxFromRow(r);
        },
        put: async (e) => {
          c().run(sql`INSERT OR REPLACE INTO outbox (id, kind, recipient_id, timestamp, content, state, request, attempts, message_id, created_at, sent_at,
                        retries_answered, error)
                      VALUES (${e.id}, ${e.kind}, ${e.recipientId}, ${e.timestamp}, ${e.content}, ${e.state}, ${e.request ?? null}, ${e.attempts},
                        ${e.messageId ?? null}, ${e.createdAt}, ${e.sentAt ?? null}, ${e.retriesAnswered}, ${e.error ?? null})`);
        },
        remove: async (id) => {
          c().run(sql`DELETE FROM outbox WHERE id = ${id}`);
        },
        pending: async (limit) =>
          c()
            .all<OutboxRow>(sql`SELECT * FROM outbox WHERE state = 'pending' ORDER BY created_at, id LIMIT ${limit ?? -1}`)
            .map(outboxFromRow),
        findMessage: async (recipientId, timestamp) => {
          const r = c().get<OutboxRow>(sql`SELECT * FROM outbox WHERE kind = 'message' AND recipient_id = ${recipientId} AND timestamp = ${timestamp}`);
          return r && outboxFromRow(r);
        },
        prune: async (before) => {
          c().run(sql`DELETE FROM outbox WHERE state <> 'pending' AND created_at < ${before}`);
        },
      },
      envelopes: {
        has: async (guid) => c().get(sql`SELECT 1 FROM processed_envelopes WHERE guid = ${guid}`) !== undefined,
        add: async (guid, at) => {
          c().run(sql`INSERT OR IGNORE INTO processed_envelopes (guid, processed_at) VALUES (${guid}, ${at})`);
        },
        prune: async (before) => {
          c().run(sql`DELETE FROM processed_envelopes WHERE processed_at < ${before}`);
        },
      },
      groups: {
        get: async (id) => {
          const r = c().get<{ format: number; data: string }>(sql`SELECT format, data FROM groups WHERE id = ${id}`);
          return r && groupFromRow(r);
        },
        put: async (g) => {
          c().run(sql`INSERT INTO groups (id, name, format, data) VALUES (${g.id}, ${g.name}, ${STORE_FORMAT_VERSION}, ${encodeRecord(g)})
                      ON CONFLICT (id) DO UPDATE SET name = excluded.name, format = excluded.format, data = excluded.data`);
        },
        list: async () => c().all<{ format: number; data: string }>(sql`SELECT format, data FROM groups ORDER BY name, id`).map(groupFromRow),
      },
      senderKeys: {
        get: async (sender, deviceId, distributionId) => {
          const r = c().get<{ group_id: string; record: Buffer }>(
            sql`SELECT group_id, record FROM sender_keys WHERE sender = ${sender} AND device = ${deviceId} AND distribution_id = ${distributionId}`,
          );
          return r && { groupId: r.group_id as GroupId, record: bytes(r.record) };
        },
        put: async (sender, deviceId, distributionId, key) => {
          c().run(sql`INSERT INTO sender_keys (sender, device, distribution_id, group_id, record)
                      VALUES (${sender}, ${deviceId}, ${distributionId}, ${key.groupId}, ${key.record})
                      ON CONFLICT (sender, device, distribution_id) DO UPDATE SET group_id = excluded.group_id, record = excluded.record`);
        },
        removeGroup: async (groupId, sender) => {
          if (sender === undefined) c().run(sql`DELETE FROM sender_keys WHERE group_id = ${groupId}`);
          else c().run(sql`DELETE FROM sender_keys WHERE group_id = ${groupId} AND sender = ${sender}`);
        },
      },
      uploads: {
        get: async (resumeKey) => {
          const r = c().get<{ format: number; data: string }>(sql`SELECT format, data FROM upload_jobs WHERE resume_key = ${resumeKey}`);
          return r && uploadJobFromRow(r);
        },
        put: async (j) => {
          c().run(sql`INSERT OR REPLACE INTO upload_jobs (resume_key, created_at, format, data)
                      VALUES (${j.resumeKey}, ${j.createdAt}, ${STORE_FORMAT_VERSION}, ${encodeRecord(j)})`);
        },
        remove: async (resumeKey) => {
          c().run(sql`DELETE FROM upload_jobs WHERE resume_key = ${resumeKey}`);
        },
        prune: async (before) => {
          c().run(sql`DELETE FROM upload_jobs WHERE created_at < ${before}`);
        },
      },
      savepoint: async <T>(fn: () => Promise<T>): Promise<T> => {
        this.#check();
        const name = `sp${++this.#depth}`;
        q.exec(`SAVEPOINT ${name}`);
        try {
          const result = await fn();
          q.exec(`RELEASE ${name}`);
          return result;
        } catch (err) {
          q.exec(`ROLLBACK TO ${name}`);
          q.exec(`RELEASE ${name}`);
          throw err;
        } finally {
          this.#depth--;
        }
      },
    };
  }
}
