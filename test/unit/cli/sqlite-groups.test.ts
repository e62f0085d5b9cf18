// The SQLite store's group data (migration 002): a profile database written by the release before groups
// opens with its data intact, and every new record (groups, sender keys, per-member receipts, group system
// messages, group outbox entries) survives a reopen exactly; the record codec keeps bytes and undefined.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE, SqliteClientStore } from '../../../src/cli/store/sqlite-store.ts';
import { decodeRecord, encodeRecord } from '../../../src/cli/store/json-codec.ts';
import { appliedVersions, migrate, MIGRATIONS } from '../../../src/cli/store/migrations/index.ts';
import { Queries, sql } from '../../../src/cli/store/sql.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import type { AccountId, GroupId, MessageId } from '../../../src/client/ids.ts';
import type { GroupRecord, GroupUpdateRecord, MessageRecord, OutboxEntry } from '../../../src/client/store/types.ts';

const A = '11111111-1111-4111-8111-111111111111' as AccountId;
const B = '22222222-2222-4222-8222-222222222222' as AccountId;
const C = '33333333-3333-4333-8333-333333333333' as AccountId;
const G1 = '0123456789abcdef0123456789abcdef' as GroupId;
const G2 = 'fedcba9876543210fedcba9876543210' as GroupId;

function tempProfile(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-groups-store-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function group(id: GroupId, fields: Partial<GroupRecord> = {}): GroupRecord {
  return {
    id,
    masterKey: Uint8Array.from({ length: 32 }, (_, i) => i * 7),
    revision: 4,
    name: 'Family 👪',
    description: 'weekend plans',
    avatar: new Uint8Array([0xff, 0xd8, 0xff, 0x00, 0x01]),
    avatarContentType: 'image/jpeg',
    encryptedAttributes: new Uint8Array([1, 2, 3, 4]),
    members: [
      { accountId: A, admin: true, joinedAt: 1000, joinedRevision: 0 },
      { accountId: B, admin: false, joinedAt: 2000, joinedRevision: 2 },
    ],
    settings: { adminsManageMembers: true, adminsEditInfo: false, adminsSend: false },
    creatorId: A,
    inviteLinkEnabled: true,
    inviteLinkPassword: new Uint8Array([9, 8, 7]),
    expireTimer: 3600,
    active: true,
    distributionId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
    senderKeySharedWith: [`${B}.1.1234`],
    createdAt: 1000,
    updatedAt: 5000,
    ...fields,
  };
}

function message(id: string, fields: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: id as MessageId,
    conversationId: G1,
    senderId: A,
    direction: 'outgoing',
    timestamp: 10,
    serverTimestamp: undefined,
    receivedAt: 11,
    kind: 'text',
    body: 'to the group',
    quote: undefined,
    reactions: [],
    editedAt: undefined,
    deleted: false,
    viewOnce: false,
    expireTimer: 0,
    expiresAt: undefined,
    status: 'sent',
    error: undefined,
    receipts: [],
    groupUpdate: undefined,
    attachments: [],
    ...fields,
  };
}

function outbox(id: string, fields: Partial<OutboxEntry> = {}): OutboxEntry {
  return {
    id,
    kind: 'message',
    recipientId: G1,
    timestamp: 10,
    content: new Uint8Array([1, 2, 3]),
    state: 'pending',
    request: undefined,
    attempts: 0,
    messageId: undefined,
    createdAt: 100,
    sentAt: undefined,
    retriesAnswered: 0,
    error: undefined,
    ...fields,
  };
}

describe('SqliteClientStore: groups', () => {
  it('migrates a database of schema 1, keeping its messages, outbox and contacts', async () => {
    const p = tempProfile();
    try {
      const db = new Database(path.join(p.dir, DATABASE_FILE));
      const q = new Queries(db);
      assert.deepEqual(migrate(q, 1, MIGRATIONS, 1), [1]);
      q.run(sql`INSERT INTO messages (id, conversation_id, sender_id, direction, timestamp, server_timestamp, received_at, kind, body, quote, reactions,
                  edited_at, deleted, view_once, expire_timer, expires_at, status, error)
                VALUES (${`${B}:5`}, ${B}, ${B}, 'incoming', 5, 6, 7, 'text', 'from before groups', NULL, '[]', NULL, 0, 0, 0, NULL, 'read', NULL)`);
      q.run(sql`INSERT INTO outbox (id, kind, recipient_id, timestamp, content, state, request, attempts, message_id, created_at, sent_at, retries_answered, error)
                VALUES ('o1', 'message', ${B}, 8, ${new Uint8Array([4, 5])}, 'pending', NULL, 1, NULL, 9, NULL, 0, NULL)`);
      q.run(sql`INSERT INTO contacts (account_id, number, number_verified, expire_timer, created_at, updated_at) VALUES (${B}, '+15550100002', 1, 0, 1, 2)`);
      db.close();

      const store = SqliteClientStore.open(p.dir, { now: () => 42 });
      try {
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.messages.get(`${B}:5` as MessageId), {
            id: `${B}:5`,
            conversationId: B,
            senderId: B,
            direction: 'incoming',
            timestamp: 5,
            serverTimestamp: 6,
            receivedAt: 7,
            kind: 'text',
            body: 'from before groups',
            quote: undefined,
            reactions: [],
            editedAt: undefined,
            deleted: false,
            viewOnce: false,
            expireTimer: 0,
            expiresAt: undefined,
            status: 'read',
            error: undefined,
            receipts: [],
            groupUpdate: undefined,
            attachments: [],
          });
          assert.deepEqual((await tx.outbox.pending()).map((e) => [e.id, e.recipientId, e.attempts]), [['o1', B, 1]]);
          assert.equal((await tx.contacts.get(B))?.number, '+15550100002');
          assert.deepEqual(await tx.groups.list(), []);
          assert.equal(await tx.senderKeys.get(B, 1, 'x'), undefined);
        });
      } finally {
        await store.close();
      }
      const check = new Database(path.join(p.dir, DATABASE_FILE), { readonly: true });
      assert.deepEqual(appliedVersions(new Queries(check)), MIGRATIONS.map((m) => m.version));
      check.close();
    } finally {
      p.remove();
    }
  });

  it('stores groups whole (bytes, undefined fields, members) and lists them by name then id', async () => {
    const p = tempProfile();
    try {
      const full = group(G2);
      const bare = group(G1, {
        name: 'Family 👪',
        masterKey: undefined,
        avatar: undefined,
        avatarContentType: undefined,
        encryptedAttributes: undefined,
        inviteLinkPassword: undefined,
        distributionId: undefined,
        senderKeySharedWith: [],
        active: false,
      });
      const other = group('00000000000000000000000000000001' as GroupId, { name: 'Alpha' });
      let store = SqliteClientStore.open(p.dir);
      await store.transaction(async (tx) => {
        await tx.groups.put(full);
        await tx.groups.put(bare);
        await tx.groups.put(other);
      });
      await store.close();
      store = SqliteClientStore.open(p.dir);
      try {
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.groups.get(G2), full);
          assert.deepEqual(await tx.groups.get(G1), bare);
          assert.equal(await tx.groups.get('ffffffffffffffffffffffffffffffff' as GroupId), undefined);
          assert.deepEqual((await tx.groups.list()).map((g) => g.id), [other.id, G1, G2]);
          const renamed = { ...full, name: 'AAA first', revision: 5, members: [...full.members, { accountId: C, admin: false, joinedAt: 3, joinedRevision: 5 }] };
          await tx.groups.put(renamed);
          assert.deepEqual(await tx.groups.get(G2), renamed);
          assert.deepEqual((await tx.groups.list()).map((g) => g.id), [G2, other.id, G1]);
        });
      } finally {
        await store.close();
      }
    } finally {
      p.remove();
    }
  });

  it('keeps a field the SDK adds to GroupRecord later, without a schema change', async () => {
    const p = tempProfile();
    try {
      const extended = { ...group(G1), pendingMembers: [{ accountId: C, invitedBy: A, token: new Uint8Array([1]) }], banned: undefined };
      const store = SqliteClientStore.open(p.dir);
      try {
        await store.transaction(async (tx) => {
          await tx.groups.put(extended);
          assert.deepEqual(await tx.groups.get(G1), extended);
        });
      } finally {
        await store.close();
      }
    } finally {
      p.remove();
    }
  });

  it('stores sender keys per sender device and distribution id, and removes them by group (and sender)', async () => {
    const p = tempProfile();
    try {
      let store = SqliteClientStore.open(p.dir);
      await store.transaction(async (tx) => {
        await tx.senderKeys.put(A, 1, 'd-a', { groupId: G1, record: new Uint8Array([1]) });
        await tx.senderKeys.put(B, 1, 'd-b', { groupId: G1, record: new Uint8Array([2]) });
        await tx.senderKeys.put(B, 2, 'd-b', { groupId: G1, record: new Uint8Array([3]) });
        await tx.senderKeys.put(B, 1, 'd-b2', { groupId: G2, record: new Uint8Array([4]) });
        await tx.senderKeys.put(A, 1, 'd-a', { groupId: G1, record: new Uint8Array([1, 1]) });
      });
      await store.close();
      store = SqliteClientStore.open(p.dir);
      try {
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.senderKeys.get(A, 1, 'd-a'), { groupId: G1, record: new Uint8Array([1, 1]) });
          assert.deepEqual(await tx.senderKeys.get(B, 2, 'd-b'), { groupId: G1, record: new Uint8Array([3]) });
          assert.equal(await tx.senderKeys.get(B, 3, 'd-b'), undefined);
          await tx.senderKeys.removeGroup(G1, B);
          assert.equal(await tx.senderKeys.get(B, 1, 'd-b'), undefined);
          assert.equal(await tx.senderKeys.get(B, 2, 'd-b'), undefined);
          assert.ok(await tx.senderKeys.get(A, 1, 'd-a'), 'another sender of the group keeps its key');
          assert.ok(await tx.senderKeys.get(B, 1, 'd-b2'), 'the sender keeps its key of another group');
          await tx.senderKeys.removeGroup(G1);
          assert.equal(await tx.senderKeys.get(A, 1, 'd-a'), undefined);
          assert.ok(await tx.senderKeys.get(B, 1, 'd-b2'));
        });
      } finally {
        await store.close();
      }
    } finally {
      p.remove();
    }
  });

  it('round-trips per-member receipts, group system messages and group outbox entries', async () => {
    const p = tempProfile();
    try {
      const withReceipts = message(`${A}:10`, {
        receipts: [
          { accountId: B, status: 'read', at: 20 },
          { accountId: C, status: 'delivered', at: 15 },
        ],
      });
      const details: GroupUpdateRecord = {
        revision: 3,
        actorId: A,
        created: false,
        added: [C],
        removed: [],
        promoted: [B],
        demoted: [],
        name: undefined,
        descriptionChanged: true,
        avatarChanged: false,
        settingsChanged: false,
        inviteLinkChanged: false,
        joinedByLink: false,
        left: false,
      };
      const update = message(`${A}:g3:${G1}`, {
        kind: 'group-update',
        body: '',
        timestamp: 12,
        direction: 'incoming',
        status: 'received',
        serverTimestamp: 13,
        groupUpdate: details,
      });
      const renamed = message(`${B}:g4:${G1}`, { kind: 'group-update', timestamp: 14, senderId: B, groupUpdate: { ...details, revision: 4, actorId: B, added: [], promoted: [], name: 'New name' } });
      let store = SqliteClientStore.open(p.dir);
      await store.transaction(async (tx) => {
        await tx.messages.put(withReceipts);
        await tx.messages.put(update);
        await tx.messages.put(renamed);
        await tx.messages.put(message(`${B}:1`, { conversationId: B, timestamp: 1 }));
        await tx.outbox.put(outbox('g-msg', { messageId: withReceipts.id }));
        await tx.outbox.put(outbox('g-key', { kind: 'sender-key', recipientId: B, timestamp: 10, createdAt: 99 }));
      });
      await store.close();
      store = SqliteClientStore.open(p.dir);
      try {
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.messages.get(withReceipts.id), withReceipts);
          assert.deepEqual(await tx.messages.get(update.id), update);
          assert.deepEqual(await tx.messages.get(renamed.id), renamed);
          assert.deepEqual((await tx.messages.list(G1)).map((m) => m.id), [withReceipts.id, update.id, renamed.id]);
          assert.equal((await tx.outbox.findMessage(G1, 10))?.id, 'g-msg');
          assert.equal(await tx.outbox.findMessage(B, 10), undefined, 'a sender-key entry is not a message');
          assert.deepEqual((await tx.outbox.pending()).map((e) => [e.id, e.kind, e.recipientId]), [['g-key', 'sender-key', B], ['g-msg', 'message', G1]]);
        });
      } finally {
        await store.close();
      }
    } finally {
      p.remove();
    }
  });

  it('refuses a stored group it cannot read with CLIENT_STORE_CORRUPT', async () => {
    const p = tempProfile();
    try {
      const store = SqliteClientStore.open(p.dir);
      await store.close();
      const db = new Database(path.join(p.dir, DATABASE_FILE));
      db.prepare(`INSERT INTO groups (id, name, format, data) VALUES (?, 'x', 1, '{not json')`).run(G1);
      db.prepare(`INSERT INTO groups (id, name, format, data) VALUES (?, 'y', 99, '{}')`).run(G2);
      db.close();
      const reopened = SqliteClientStore.open(p.dir);
      try {
        for (const id of [G1, G2]) {
          await assert.rejects(
            reopened.transaction((tx) => tx.groups.get(id)),
            (e: unknown) => ClientError.is(e, ClientErrorCode.StoreCorrupt),
          );
        }
      } finally {
        await reopened.close();
      }
    } finally {
      p.remove();
    }
  });
});

describe('record codec', () => {
  it('round-trips bytes, undefined properties and objects that look like its tags', () => {
    const value = {
      bytes: new Uint8Array([0, 255, 128]),
      empty: new Uint8Array(0),
      gone: undefined,
      nested: [{ x: undefined, y: [new Uint8Array([1])] }],
      lookalike: { $bytes: 'AAAA' },
      lookalike2: { $undefined: true },
      lookalike3: { $object: { a: 1 } },
      text: '☃',
      n: -1.5,
      nil: null,
    };
    assert.deepEqual(decodeRecord(encodeRecord(value)), value);
  });

  it('refuses what JSON cannot hold', () => {
    assert.throws(() => encodeRecord({ n: Number.NaN }), TypeError);
    assert.throws(() => encodeRecord({ big: 1n }), TypeError);
  });
});
