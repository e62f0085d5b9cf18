// One set of cases for every ClientStore implementation (as Hono runs one router suite against each router):
// the in-memory store here, the SQLite store in test/unit/cli/sqlite-store.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AccountId, E164, GroupId, MessageId } from '../../../src/client/ids.ts';
import type { AttachmentRecord, ClientStore, GroupRecord, MessageRecord, OutboxEntry, UploadJobRecord } from '../../../src/client/store/types.ts';

const A = '11111111-1111-4111-8111-111111111111' as AccountId;
const B = '22222222-2222-4222-8222-222222222222' as AccountId;
const G1 = '0123456789abcdef0123456789abcdef' as GroupId;
const G2 = 'fedcba9876543210fedcba9876543210' as GroupId;

function group(id: GroupId, fields: Partial<GroupRecord> = {}): GroupRecord {
  return {
    id,
    masterKey: Uint8Array.from({ length: 32 }, (_, i) => i),
    revision: 3,
    name: 'Family 👪',
    description: 'all of us',
    avatar: new Uint8Array([0x89, 0x50, 0x4e, 0x47]),
    avatarContentType: 'image/png',
    encryptedAttributes: new Uint8Array([1, 9, 9, 9]),
    members: [
      { accountId: A, admin: true, joinedAt: 10, joinedRevision: 0 },
      { accountId: B, admin: false, joinedAt: 20, joinedRevision: 2 },
    ],
    settings: { adminsManageMembers: true, adminsEditInfo: false, adminsSend: false },
    creatorId: A,
    inviteLinkEnabled: true,
    inviteLinkPassword: new Uint8Array(16).fill(7),
    expireTimer: 60,
    active: true,
    distributionId: 'd3b07384-d113-4ec6-a7a6-8a2e2b3c5f10',
    senderKeySharedWith: [`${B}.1.1234`],
    createdAt: 100,
    updatedAt: 200,
    ...fields,
  };
}

function message(id: string, fields: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: id as MessageId,
    conversationId: B,
    senderId: B,
    direction: 'incoming',
    timestamp: 1,
    serverTimestamp: 2,
    receivedAt: 3,
    kind: 'text',
    body: 'héllo 👋',
    quote: { timestamp: 0, authorId: A, text: 'q' },
    reactions: [{ authorId: A, emoji: '❤️', timestamp: 5 }],
    editedAt: undefined,
    deleted: false,
    viewOnce: false,
    expireTimer: 0,
    expiresAt: undefined,
    status: 'received',
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
    recipientId: B,
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

/** Registers the contract suite for stores made by `make`. */
function attachment(fields: Partial<AttachmentRecord> = {}): AttachmentRecord {
  return {
    type: 'image',
    blobId: 'ab'.repeat(32),
    mediaKey: Uint8Array.from({ length: 32 }, (_, i) => i),
    plaintextSha256: new Uint8Array(32).fill(1),
    encryptedSha256: new Uint8Array(32).fill(0xab),
    size: 3_000_000,
    contentType: 'image/jpeg',
    fileName: 'holiday.jpg',
    width: 1600,
    height: 1200,
    durationMs: undefined,
    voiceNote: false,
    thumbnail: new Uint8Array([0xff, 0xd8, 0xff]),
    uploadedAt: 1234,
    state: 'saved',
    path: '/media/holiday.jpg',
    error: undefined,
    ...fields,
  };
}

function uploadJob(resumeKey: string, fields: Partial<UploadJobRecord> = {}): UploadJobRecord {
  return {
    resumeKey,
    type: 'video',
    mediaKey: new Uint8Array(32).fill(9),
    size: 10_000_000,
    uploadId: undefined,
    completed: undefined,
    createdAt: 100,
    ...fields,
  };
}

export function storeContract(name: string, make: () => Promise<{ store: ClientStore; reopen?: () => Promise<ClientStore>; cleanup?: () => void }>): void {
  describe(`ClientStore contract: ${name}`, () => {
    it('commits a transaction, and rolls back everything of one that throws', async () => {
      const { store, cleanup } = await make();
      try {
        await store.transaction(async (tx) => {
          await tx.settings.put('a', 1);
          await tx.preKeys.put(1, new Uint8Array([1]));
        });
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.settings.put('a', 2);
            await tx.preKeys.remove(1);
            await tx.sessions.put(A, 1, new Uint8Array([9]));
            throw new Error('boom');
          }),
          /boom/,
        );
        await store.transaction(async (tx) => {
          assert.equal(await tx.settings.get('a'), 1);
          assert.deepEqual(await tx.preKeys.get(1), new Uint8Array([1]));
          assert.equal(await tx.sessions.get(A, 1), undefined);
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('rolls back only the savepoint that threw', async () => {
      const { store, cleanup } = await make();
      try {
        await store.transaction(async (tx) => {
          await tx.settings.put('kept', true);
          await assert.rejects(
            tx.savepoint(async () => {
              await tx.settings.put('lost', true);
              await tx.savepoint(async () => tx.settings.put('inner', true));
              throw new Error('one envelope failed');
            }),
          );
          await tx.savepoint(async () => tx.settings.put('after', 'yes'));
        });
        await store.transaction(async (tx) => {
          assert.equal(await tx.settings.get('kept'), true);
          assert.equal(await tx.settings.get('lost'), undefined);
          assert.equal(await tx.settings.get('inner'), undefined);
          assert.equal(await tx.settings.get('after'), 'yes');
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('runs transactions one at a time', async () => {
      const { store, cleanup } = await make();
      try {
        const order: string[] = [];
        await Promise.all([
          store.transaction(async (tx) => {
            order.push('a1');
            await new Promise((r) => setTimeout(r, 10));
            await tx.settings.put('x', 1);
            order.push('a2');
          }),
          store.transaction(async () => {
            order.push('b');
          }),
        ]);
        assert.deepEqual(order, ['a1', 'a2', 'b']);
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('stores the account, identities, keys and sessions (bytes intact), and lists them', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        const key = Uint8Array.from({ length: 33 }, (_, i) => i);
        await store.transaction(async (tx) => {
          await tx.account.put({
            serverUrl: 'http://x',
            number: '+15550100001' as E164,
            accountId: A,
            deviceId: 1,
            password: 'pw',
            registrationId: 42,
            identityPublicKey: key,
            identityPrivateKey: key.subarray(0, 32),
            registeredAt: 7,
          });
          await tx.identities.put({ accountId: B, identityKey: key, status: 'verified', firstSeenAt: 1, changedAt: undefined });
          await tx.signedPreKeys.put(5, new Uint8Array([5]), 50);
          await tx.signedPreKeys.put(3, new Uint8Array([3]), 30);
          await tx.kyberPreKeys.put(9, new Uint8Array([9]), { lastResort: true, createdAt: 90 });
          await tx.kyberPreKeys.put(8, new Uint8Array([8]), { lastResort: false, createdAt: 80 });
          await tx.sessions.put(B, 2, new Uint8Array([2]));
          await tx.sessions.put(B, 1, new Uint8Array([1]));
          await tx.sessions.put(A, 1, new Uint8Array([7]));
        });
        const s = reopen ? await reopen() : store;
        await s.transaction(async (tx) => {
          const a = await tx.account.get();
          assert.equal(a?.registrationId, 42);
          assert.deepEqual(a?.identityPublicKey, key);
          assert.deepEqual(a?.identityPrivateKey, key.subarray(0, 32));
          assert.deepEqual((await tx.identities.get(B))?.identityKey, key);
          assert.equal((await tx.identities.get(B))?.status, 'verified');
          assert.deepEqual(await tx.signedPreKeys.list(), [{ id: 3, createdAt: 30 }, { id: 5, createdAt: 50 }]);
          assert.deepEqual(await tx.kyberPreKeys.list(), [{ id: 8, lastResort: false, createdAt: 80 }, { id: 9, lastResort: true, createdAt: 90 }]);
          assert.deepEqual(await tx.kyberPreKeys.get(9), { record: new Uint8Array([9]), lastResort: true });
          assert.deepEqual(await tx.sessions.devices(B), [1, 2]);
          await tx.sessions.remove(B, 1);
          assert.deepEqual(await tx.sessions.devices(B), [2]);
          await tx.sessions.clear();
          assert.deepEqual(await tx.sessions.devices(A), []);
        });
        if (s !== store) await s.close();
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('stores the account key of a linked companion, and none on a primary', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        const key = Uint8Array.from({ length: 33 }, (_, i) => i + 1);
        const accountKey = Uint8Array.from({ length: 33 }, (_, i) => 200 - i);
        const base = {
          serverUrl: 'http://x',
          number: '+15550100001' as E164,
          accountId: A,
          password: 'pw',
          registrationId: 42,
          identityPublicKey: key,
          identityPrivateKey: key.subarray(0, 32),
          registeredAt: 7,
        };
        await store.transaction((tx) => tx.account.put({ ...base, deviceId: 1 }));
        let s = reopen ? await reopen() : store;
        assert.equal((await s.transaction((tx) => tx.account.get()))?.accountIdentityKey, undefined);
        await s.transaction((tx) => tx.account.put({ ...base, deviceId: 3, accountIdentityKey: accountKey }));
        if (s !== store) await s.close();
        s = reopen ? await reopen() : store;
        const a = await s.transaction((tx) => tx.account.get());
        assert.equal(a?.deviceId, 3);
        assert.deepEqual(a?.accountIdentityKey, accountKey);
        // A copy: changing what was read changes nothing stored.
        a?.accountIdentityKey?.fill(0);
        assert.deepEqual((await s.transaction((tx) => tx.account.get()))?.accountIdentityKey, accountKey);
        if (s !== store) await s.close();
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('stores the identities of companions per account and device, listed by device, removed one by one, rolled back', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        const k2 = Uint8Array.from({ length: 33 }, (_, i) => i);
        const k3 = Uint8Array.from({ length: 33 }, (_, i) => 100 + i);
        await store.transaction(async (tx) => {
          await tx.deviceIdentities.put({ accountId: B, deviceId: 3, identityKey: k3, listVersion: 4, firstSeenAt: 10, changedAt: 20 });
          await tx.deviceIdentities.put({ accountId: B, deviceId: 2, identityKey: k2, listVersion: 2, firstSeenAt: 5, changedAt: undefined });
          await tx.deviceIdentities.put({ accountId: A, deviceId: 2, identityKey: k3, listVersion: 1, firstSeenAt: 1, changedAt: undefined });
        });
        const s = reopen ? await reopen() : store;
        await s.transaction(async (tx) => {
          assert.deepEqual(await tx.deviceIdentities.get(B, 3), { accountId: B, deviceId: 3, identityKey: k3, listVersion: 4, firstSeenAt: 10, changedAt: 20 });
          assert.deepEqual(await tx.deviceIdentities.get(B, 2), { accountId: B, deviceId: 2, identityKey: k2, listVersion: 2, firstSeenAt: 5, changedAt: undefined });
          assert.equal(await tx.deviceIdentities.get(B, 4), undefined);
          assert.deepEqual((await tx.deviceIdentities.list(B)).map((r) => r.deviceId), [2, 3]);
          assert.deepEqual((await tx.deviceIdentities.list(A)).map((r) => r.deviceId), [2]);
          // Replaced in place (same account and device).
          await tx.deviceIdentities.put({ accountId: B, deviceId: 2, identityKey: k3, listVersion: 5, firstSeenAt: 5, changedAt: 30 });
          assert.deepEqual((await tx.deviceIdentities.get(B, 2))?.identityKey, k3);
          assert.equal((await tx.deviceIdentities.list(B)).length, 2);
          await tx.deviceIdentities.remove(B, 3);
          await tx.deviceIdentities.remove(B, 9); // absent: nothing happens
          assert.deepEqual((await tx.deviceIdentities.list(B)).map((r) => r.deviceId), [2]);
          assert.deepEqual((await tx.deviceIdentities.list(A)).map((r) => r.deviceId), [2]);
        });
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.deviceIdentities.remove(B, 2);
            await tx.deviceIdentities.put({ accountId: B, deviceId: 7, identityKey: k2, listVersion: 6, firstSeenAt: 40, changedAt: undefined });
            throw new Error('boom');
          }),
          /boom/,
        );
        await s.transaction(async (tx) => {
          assert.deepEqual((await tx.deviceIdentities.list(B)).map((r) => [r.deviceId, r.listVersion]), [[2, 5]]);
          const r = await tx.deviceIdentities.get(B, 2);
          r?.identityKey.fill(0);
          assert.deepEqual((await tx.deviceIdentities.get(B, 2))?.identityKey, k3);
        });
        if (s !== store) await s.close();
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('stores contacts, found by number, listed by number', async () => {
      const { store, cleanup } = await make();
      try {
        await store.transaction(async (tx) => {
          await tx.contacts.put({ accountId: B, number: '+15550100002' as E164, numberVerified: true, expireTimer: 30, createdAt: 1, updatedAt: 2 });
          await tx.contacts.put({ accountId: A, number: '+15550100001' as E164, numberVerified: false, expireTimer: 0, createdAt: 1, updatedAt: 2 });
          assert.equal((await tx.contacts.getByNumber('+15550100002' as E164))?.accountId, B);
          assert.equal(await tx.contacts.getByNumber('+15550100009' as E164), undefined);
          assert.deepEqual((await tx.contacts.list()).map((c) => c.accountId), [A, B]);
          assert.equal((await tx.contacts.get(B))?.expireTimer, 30);
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('stores messages with everything, lists a conversation in order, finds the expired', async () => {
      const { store, cleanup } = await make();
      try {
        await store.transaction(async (tx) => {
          await tx.messages.put(message('m3', { timestamp: 3, expiresAt: 1000 }));
          await tx.messages.put(message('m1', { timestamp: 1 }));
          await tx.messages.put(message('m2', { timestamp: 2, conversationId: A }));
          await tx.messages.put(message('m4', { timestamp: 4, expiresAt: 5000, editedAt: 9, deleted: true, viewOnce: true }));
          assert.deepEqual(await tx.messages.get('m1' as MessageId), message('m1', { timestamp: 1 }));
          assert.deepEqual((await tx.messages.list(B)).map((m) => m.id), ['m1', 'm3', 'm4']);
          assert.deepEqual((await tx.messages.list(B, { limit: 2 })).map((m) => m.id), ['m3', 'm4']);
          assert.deepEqual((await tx.messages.expired(1000)).map((m) => m.id), ['m3']);
          const m4 = await tx.messages.get('m4' as MessageId);
          assert.equal(m4?.deleted, true);
          assert.equal(m4?.viewOnce, true);
          assert.equal(m4?.editedAt, 9);
          await tx.messages.remove('m3' as MessageId);
          assert.equal(await tx.messages.get('m3' as MessageId), undefined);
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('finds unread messages through their index and summarizes conversations (newest message, unread count), across commits', async () => {
      const { store, cleanup } = await make();
      const summary = (list: Array<{ conversationId: string; last: MessageRecord; unread: number }>): string[] =>
        list.map((x) => `${x.conversationId}:${x.last.id}:${x.unread}`).sort();
      try {
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.messages.summaries(), []);
          await tx.messages.put(message('u3', { timestamp: 3 }));
          await tx.messages.put(message('u1', { timestamp: 1 }));
          await tx.messages.put(message('r2', { timestamp: 2, status: 'read' }));
          await tx.messages.put(message('o4', { timestamp: 4, direction: 'outgoing', status: 'sent', senderId: A }));
          await tx.messages.put(message('t5', { timestamp: 5, kind: 'timer' }));
          await tx.messages.put(message('g1', { timestamp: 7, conversationId: G1, kind: 'group-update' }));
          await tx.messages.put(message('g2', { timestamp: 6, conversationId: G1 }));
          // Seen in the transaction that wrote them.
          assert.deepEqual((await tx.messages.unread(B)).map((m) => m.id), ['u1', 'u3', 't5']);
          assert.deepEqual(summary(await tx.messages.summaries()), [`${B}:t5:3`, `${G1}:g1:1`].sort());
        });
        // And once committed (through the indexes).
        await store.transaction(async (tx) => {
          assert.deepEqual((await tx.messages.unread(B)).map((m) => m.id), ['u1', 'u3', 't5']);
          assert.deepEqual((await tx.messages.unread(B, { limit: 2 })).map((m) => m.id), ['u1', 'u3']);
          assert.deepEqual((await tx.messages.unread(G1)).map((m) => m.id), ['g2']);
          assert.deepEqual(await tx.messages.unread(A), []);
          assert.deepEqual(summary(await tx.messages.summaries()), [`${B}:t5:3`, `${G1}:g1:1`].sort());
          const last = (await tx.messages.summaries()).find((x) => x.conversationId === B)?.last;
          assert.deepEqual(last, message('t5', { timestamp: 5, kind: 'timer' }));
        });
        // Reading, removing and adding change both.
        await store.transaction(async (tx) => {
          await tx.messages.put(message('u1', { timestamp: 1, status: 'read' }));
          await tx.messages.remove('t5' as MessageId);
          await tx.messages.put(message('a1', { timestamp: 9, conversationId: A, senderId: A }));
        });
        await store.transaction(async (tx) => {
          assert.deepEqual((await tx.messages.unread(B)).map((m) => m.id), ['u3']);
          assert.deepEqual(summary(await tx.messages.summaries()), [`${A}:a1:1`, `${B}:o4:1`, `${G1}:g1:1`].sort());
        });
        // A transaction that fails changes neither.
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.messages.put(message('u3', { timestamp: 3, status: 'read' }));
            throw new Error('boom');
          }),
        );
        await store.transaction(async (tx) => {
          assert.deepEqual((await tx.messages.unread(B)).map((m) => m.id), ['u3']);
          assert.deepEqual(summary(await tx.messages.summaries()), [`${A}:a1:1`, `${B}:o4:1`, `${G1}:g1:1`].sort());
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('keeps the outbox: pending in order, messages found by recipient and timestamp, pruned when done', async () => {
      const { store, cleanup } = await make();
      try {
        await store.transaction(async (tx) => {
          await tx.outbox.put(outbox('o2', { createdAt: 200, request: new Uint8Array([7, 7]) }));
          await tx.outbox.put(outbox('o1', { createdAt: 100, kind: 'receipt' }));
          await tx.outbox.put(outbox('o3', { createdAt: 50, state: 'sent', timestamp: 33 }));
          assert.deepEqual((await tx.outbox.pending()).map((e) => e.id), ['o1', 'o2']);
          assert.deepEqual((await tx.outbox.pending(1)).map((e) => e.id), ['o1']);
          assert.deepEqual((await tx.outbox.get('o2'))?.request, new Uint8Array([7, 7]));
          assert.equal((await tx.outbox.findMessage(B, 33))?.id, 'o3');
          assert.equal(await tx.outbox.findMessage(A, 33), undefined);
          await tx.outbox.prune(60);
          assert.equal(await tx.outbox.get('o3'), undefined);
          assert.ok(await tx.outbox.get('o1'), 'pending entries are never pruned');
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('stores groups whole (bytes, members, settings, undefined fields), lists them by name then id', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        const full = group(G1);
        const bare = group(G2, {
          name: 'Family 👪',
          masterKey: undefined,
          avatar: undefined,
          avatarContentType: undefined,
          encryptedAttributes: undefined,
          inviteLinkPassword: undefined,
          distributionId: undefined,
          senderKeySharedWith: [],
          active: false,
          revision: -1,
        });
        const other = group('00000000000000000000000000000000' as GroupId, { name: 'Book club' });
        await store.transaction(async (tx) => {
          await tx.groups.put(full);
          await tx.groups.put(bare);
          await tx.groups.put(other);
        });
        const s = reopen ? await reopen() : store;
        await s.transaction(async (tx) => {
          assert.deepEqual(await tx.groups.get(G1), full);
          assert.deepEqual(await tx.groups.get(G2), bare);
          assert.equal(await tx.groups.get('ffffffffffffffffffffffffffffffff' as GroupId), undefined);
          assert.deepEqual((await tx.groups.list()).map((g) => g.id), [other.id, G1, G2]);
          await tx.groups.put({ ...full, revision: 4, members: [full.members[0] as GroupRecord['members'][number]], senderKeySharedWith: [] });
          const updated = await tx.groups.get(G1);
          assert.equal(updated?.revision, 4);
          assert.deepEqual(updated?.members.map((m) => m.accountId), [A]);
          assert.deepEqual(updated?.senderKeySharedWith, []);
        });
        if (s !== store) await s.close();
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('rolls back a group written in a failed transaction, and hands out copies', async () => {
      const { store, cleanup } = await make();
      try {
        await store.transaction(async (tx) => tx.groups.put(group(G1)));
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.groups.put(group(G1, { revision: 9, name: 'changed' }));
            throw new Error('boom');
          }),
          /boom/,
        );
        await store.transaction(async (tx) => {
          const g = await tx.groups.get(G1);
          assert.equal(g?.revision, 3);
          assert.equal(g?.name, 'Family 👪');
          (g?.masterKey as Uint8Array)[0] = 0xff;
          assert.equal((await tx.groups.get(G1))?.masterKey?.[0], 0);
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('keeps sender keys per sender device and distribution id, with their group, removed per group and sender', async () => {
      const { store, cleanup } = await make();
      const D1 = 'd3b07384-d113-4ec6-a7a6-8a2e2b3c5f10';
      const D2 = '6f1ed002-ab56-4b89-a1c4-3f2e5d6c7b8a';
      try {
        await store.transaction(async (tx) => {
          await tx.senderKeys.put(A, 1, D1, { groupId: G1, record: new Uint8Array([1]) });
          await tx.senderKeys.put(A, 2, D1, { groupId: G1, record: new Uint8Array([2]) });
          await tx.senderKeys.put(B, 1, D2, { groupId: G1, record: new Uint8Array([3]) });
          await tx.senderKeys.put(B, 1, D1, { groupId: G2, record: new Uint8Array([4]) });
          assert.deepEqual(await tx.senderKeys.get(A, 2, D1), { groupId: G1, record: new Uint8Array([2]) });
          assert.equal(await tx.senderKeys.get(A, 3, D1), undefined);
          assert.equal(await tx.senderKeys.get(A, 1, D2), undefined);
          // Storing again replaces the record (and its group).
          await tx.senderKeys.put(A, 1, D1, { groupId: G1, record: new Uint8Array([5, 5]) });
          assert.deepEqual((await tx.senderKeys.get(A, 1, D1))?.record, new Uint8Array([5, 5]));
        });
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.senderKeys.removeGroup(G1);
            throw new Error('boom');
          }),
          /boom/,
        );
        await store.transaction(async (tx) => {
          assert.ok(await tx.senderKeys.get(A, 1, D1), 'a failed transaction removes nothing');
          await tx.senderKeys.removeGroup(G1, A);
          assert.equal(await tx.senderKeys.get(A, 1, D1), undefined);
          assert.equal(await tx.senderKeys.get(A, 2, D1), undefined);
          assert.ok(await tx.senderKeys.get(B, 1, D2), 'other senders keep theirs');
          assert.ok(await tx.senderKeys.get(B, 1, D1), 'other groups keep theirs');
          await tx.senderKeys.removeGroup(G1);
          assert.equal(await tx.senderKeys.get(B, 1, D2), undefined);
          assert.deepEqual(await tx.senderKeys.get(B, 1, D1), { groupId: G2, record: new Uint8Array([4]) });
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('stores group messages with per-member receipts and group updates; the outbox finds group entries', async () => {
      const { store, reopen, cleanup } = await make();
      try {
        const sent = message('g1', {
          conversationId: G1,
          senderId: A,
          direction: 'outgoing',
          status: 'delivered',
          receipts: [
            { accountId: B, status: 'read', at: 50 },
            { accountId: A, status: 'delivered', at: 40 },
          ],
        });
        const update = message(`${A}:g2:${G1}`, {
          conversationId: G1,
          senderId: A,
          kind: 'group-update',
          body: '',
          quote: undefined,
          reactions: [],
          groupUpdate: {
            revision: 2,
            actorId: A,
            created: false,
            added: [B],
            removed: [],
            promoted: [B],
            demoted: [],
            name: 'New name',
            descriptionChanged: true,
            avatarChanged: false,
            settingsChanged: false,
            inviteLinkChanged: false,
            joinedByLink: false,
            left: false,
          },
        });
        await store.transaction(async (tx) => {
          await tx.messages.put(sent);
          await tx.messages.put(update);
          await tx.messages.put(message('m1', { timestamp: 1 }));
          await tx.outbox.put(outbox('og', { recipientId: G1, timestamp: 77 }));
          await tx.outbox.put(outbox('sk', { kind: 'sender-key', recipientId: B, timestamp: 77 }));
        });
        const s = reopen ? await reopen() : store;
        await s.transaction(async (tx) => {
          assert.deepEqual(await tx.messages.get('g1' as MessageId), sent);
          assert.deepEqual(await tx.messages.get(update.id), update);
          assert.deepEqual((await tx.messages.list(G1)).map((m) => m.id).sort(), ['g1', update.id].sort());
          assert.deepEqual((await tx.messages.list(B)).map((m) => m.id), ['m1']);
          assert.equal((await tx.outbox.findMessage(G1, 77))?.id, 'og');
          assert.equal(await tx.outbox.findMessage(B, 77), undefined, 'a sender-key entry is not a message');
          assert.equal((await tx.outbox.get('sk'))?.kind, 'sender-key');
        });
        if (s !== store) await s.close();
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('stores attachments of messages (bytes, undefined fields), hands out copies, rolls back', async () => {
      const { store, cleanup } = await make();
      try {
        const two = [attachment(), attachment({ type: 'document', state: 'failed', path: undefined, error: 'CLIENT_BAD_MEDIA', thumbnail: undefined, fileName: undefined, width: undefined, height: undefined })];
        await store.transaction(async (tx) => {
          await tx.messages.put(message('a1', { timestamp: 1, attachments: two }));
          await tx.messages.put(message('a2', { timestamp: 2 }));
        });
        await store.transaction(async (tx) => {
          const got = await tx.messages.get('a1' as MessageId);
          assert.deepEqual(got?.attachments, two);
          assert.deepEqual((await tx.messages.get('a2' as MessageId))?.attachments, []);
          (got?.attachments[0]?.mediaKey as Uint8Array)[0] = 0xff;
          assert.deepEqual((await tx.messages.get('a1' as MessageId))?.attachments, two);
          assert.deepEqual((await tx.messages.list(B)).map((m) => m.attachments.length), [2, 0]);
        });
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.messages.put(message('a1', { timestamp: 1, attachments: [] }));
            throw new Error('boom');
          }),
          /boom/,
        );
        await store.transaction(async (tx) => assert.deepEqual((await tx.messages.get('a1' as MessageId))?.attachments, two));
      } finally {
        await store.close();
        cleanup?.();
      }
    });

    it('keeps upload jobs by resume key, with their completion, removed, pruned by age, rolled back', async () => {
      const { store, reopen, cleanup } = await make();
      let current = store;
      try {
        const done = uploadJob('k2', {
          uploadId: '0123456789abcdef0123456789abcdef',
          completed: { blobId: 'cd'.repeat(32), plaintextSha256: new Uint8Array(32).fill(2), encryptedSha256: new Uint8Array(32).fill(0xcd), uploadedAt: 999 },
          createdAt: 300,
        });
        await current.transaction(async (tx) => {
          assert.equal(await tx.uploads.get('k1'), undefined);
          await tx.uploads.put(uploadJob('k1'));
          await tx.uploads.put(done);
          await tx.uploads.put(uploadJob('k3', { createdAt: 50 }));
        });
        if (reopen) {
          await current.close();
          current = await reopen();
        }
        await current.transaction(async (tx) => {
          assert.deepEqual(await tx.uploads.get('k1'), uploadJob('k1'));
          assert.deepEqual(await tx.uploads.get('k2'), done);
          await tx.uploads.put({ ...uploadJob('k1'), uploadId: 'ff'.repeat(16) });
          assert.equal((await tx.uploads.get('k1'))?.uploadId, 'ff'.repeat(16));
          await tx.uploads.prune(100);
          assert.equal(await tx.uploads.get('k3'), undefined);
          assert.notEqual(await tx.uploads.get('k1'), undefined);
          await tx.uploads.remove('k2');
          await tx.uploads.remove('nothing');
          assert.equal(await tx.uploads.get('k2'), undefined);
        });
        await assert.rejects(
          current.transaction(async (tx) => {
            await tx.uploads.remove('k1');
            await tx.uploads.put(uploadJob('k4'));
            throw new Error('boom');
          }),
          /boom/,
        );
        await current.transaction(async (tx) => {
          assert.notEqual(await tx.uploads.get('k1'), undefined);
          assert.equal(await tx.uploads.get('k4'), undefined);
        });
      } finally {
        await current.close();
        cleanup?.();
      }
    });

    it('remembers processed envelope guids until pruned', async () => {
      const { store, cleanup } = await make();
      try {
        await store.transaction(async (tx) => {
          await tx.envelopes.add('aa', 10);
          await tx.envelopes.add('bb', 20);
          assert.equal(await tx.envelopes.has('aa'), true);
          await tx.envelopes.prune(15);
          assert.equal(await tx.envelopes.has('aa'), false);
          assert.equal(await tx.envelopes.has('bb'), true);
        });
      } finally {
        await store.close();
        cleanup?.();
      }
    });
  });
}
