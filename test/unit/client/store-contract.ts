// One set of cases for every ClientStore implementation (as Hono runs one router suite against each router):
// the in-memory store here, the SQLite store in test/unit/cli/sqlite-store.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AccountId, E164, MessageId } from '../../../src/client/ids.ts';
import type { ClientStore, MessageRecord, OutboxEntry } from '../../../src/client/store/types.ts';

const A = '11111111-1111-4111-8111-111111111111' as AccountId;
const B = '22222222-2222-4222-8222-222222222222' as AccountId;

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
