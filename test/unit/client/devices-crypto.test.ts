// The pure parts of linked devices: the linking URI, the provisioning and blob encryption (tamper, wrong key),
// the history bundle (build and import round trip, malformed entries skipped, nothing overwritten), and
// applying verified device lists (added, removed, changed keys, older lists refused).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyPair } from '../../../src/protocol/index.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { applyDeviceList } from '../../../src/client/devices.ts';
import { buildHistoryBundle, decodeHistoryBundle, importHistoryBundle } from '../../../src/client/history.ts';
import type { AccountId, GroupId, MessageId } from '../../../src/client/ids.ts';
import {
  decryptBlob,
  decryptDeviceName,
  decryptProvisioning,
  encodeLinkUri,
  encryptBlob,
  encryptDeviceName,
  encryptProvisioning,
  LINK_URI_PREFIX,
  parseLinkUri,
} from '../../../src/client/link-crypto.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { MessageRecord } from '../../../src/client/store/types.ts';
import { crypto } from './support.ts';

const A = '11111111-1111-4111-8111-111111111111' as AccountId;
const B = '22222222-2222-4222-8222-222222222222' as AccountId;
const G = '0123456789abcdef0123456789abcdef' as GroupId;

const isCode = (code: string) => (err: unknown) => ClientError.is(err) && err.code === code;

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at] = (out[at] as number) ^ 1;
  return out;
}

function message(fields: Omit<Partial<MessageRecord>, 'id'> & { id: string; timestamp: number }): MessageRecord {
  return {
    conversationId: B,
    senderId: B,
    direction: 'incoming',
    serverTimestamp: 5,
    receivedAt: 6,
    kind: 'text',
    body: 'hi',
    quote: undefined,
    reactions: [],
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
    id: fields.id as MessageId,
  };
}

describe('linking URI', () => {
  it('round-trips link id, secret and identity key; refuses other schemes, damaged text and bad keys', async () => {
    const identity = await KeyPair.generate(crypto);
    const link = { linkId: crypto.randomBytes(16), linkingSecret: crypto.randomBytes(32), identityKey: identity.publicKey.serialized };
    const uri = encodeLinkUri(link);
    assert.ok(uri.startsWith(LINK_URI_PREFIX));
    assert.match(uri.slice(LINK_URI_PREFIX.length), /^[A-Za-z0-9_-]{108}$/);
    assert.deepEqual(parseLinkUri(`  ${uri}\n`), link);
    for (const bad of ['', 'parley://join#abc', uri.slice(0, -2), `${uri}AA`, uri.replace(/.$/, '!'), `https://link/${uri.slice(LINK_URI_PREFIX.length)}`]) {
      assert.throws(() => parseLinkUri(bad), isCode(ClientErrorCode.BadLinkUri), bad);
    }
    // A key of the wrong type byte.
    const wrongKey = encodeLinkUri({ ...link, identityKey: Uint8Array.from([0x07, ...identity.publicKey.serialized.subarray(1)]) });
    assert.throws(() => parseLinkUri(wrongKey), isCode(ClientErrorCode.BadLinkUri));
  });
});

describe('provisioning encryption', () => {
  it('decrypts under the same secret; a flipped bit anywhere, a truncation or another secret fails the MAC (CLIENT_LINK_FAILED)', async () => {
    const secret = crypto.randomBytes(32);
    const plaintext = new TextEncoder().encode('provision me');
    const body = await encryptProvisioning(crypto, secret, plaintext);
    assert.equal(body[0], 0x01);
    assert.deepEqual(await decryptProvisioning(crypto, secret, body), plaintext);
    for (const at of [0, 1, 17, body.length - 33, body.length - 1]) {
      await assert.rejects(decryptProvisioning(crypto, secret, flip(body, at)), isCode(ClientErrorCode.LinkFailed), `bit flipped at ${at}`);
    }
    await assert.rejects(decryptProvisioning(crypto, secret, body.subarray(0, body.length - 1)), isCode(ClientErrorCode.LinkFailed));
    await assert.rejects(decryptProvisioning(crypto, crypto.randomBytes(32), body), isCode(ClientErrorCode.LinkFailed));
    // The same plaintext twice gives different bodies (a random IV).
    assert.notDeepEqual(await encryptProvisioning(crypto, secret, plaintext), body);
  });
});

describe('device names', () => {
  it('are readable with the account key only; tampering or another key fails (CLIENT_BAD_BLOB), and the name is not in the bytes', async () => {
    const account = await KeyPair.generate(crypto);
    const other = await KeyPair.generate(crypto);
    const name = new TextEncoder().encode('Grace’s laptop');
    const body = await encryptDeviceName(crypto, account.publicKey, name);
    assert.equal(await decryptDeviceName(crypto, account, body), 'Grace’s laptop');
    assert.equal(Buffer.from(body).includes(Buffer.from('laptop')), false);
    const bad = (p: Promise<unknown>): Promise<void> => assert.rejects(p, (e: unknown) => ClientError.is(e, ClientErrorCode.BadBlob));
    await bad(decryptDeviceName(crypto, other, body));
    for (const i of [0, 20, 40, body.length - 1]) {
      const t = body.slice();
      t[i] = (t[i] as number) ^ 1;
      await bad(decryptDeviceName(crypto, account, t));
    }
    await bad(decryptDeviceName(crypto, account, body.subarray(0, 33)));
  });
});

describe('encrypted blobs', () => {
  it('are named by the SHA-256 of their bytes; size, hash and MAC are checked before decryption (CLIENT_BAD_BLOB)', async () => {
    const plaintext = crypto.randomBytes(5000);
    const blob = await encryptBlob(crypto, plaintext);
    assert.match(blob.id, /^[0-9a-f]{64}$/);
    assert.equal(blob.key.length, 64);
    const expected = { key: blob.key, sha256: blob.sha256, size: blob.bytes.length };
    assert.deepEqual(await decryptBlob(crypto, blob.bytes, expected), plaintext);
    await assert.rejects(decryptBlob(crypto, flip(blob.bytes, 40), expected), isCode(ClientErrorCode.BadBlob));
    await assert.rejects(decryptBlob(crypto, blob.bytes.subarray(1), expected), isCode(ClientErrorCode.BadBlob));
    // The right hash for tampered bytes is not enough: the MAC fails.
    const tampered = flip(blob.bytes, 40);
    const { sha256 } = await import('@noble/hashes/sha2.js');
    await assert.rejects(decryptBlob(crypto, tampered, { ...expected, sha256: sha256(tampered) }), isCode(ClientErrorCode.BadBlob));
    await assert.rejects(decryptBlob(crypto, blob.bytes, { ...expected, key: crypto.randomBytes(64) }), isCode(ClientErrorCode.BadBlob));
  });
});

describe('history bundle', () => {
  it('round-trips contacts, groups with master keys and the newest messages per conversation; keeps what is there; skips malformed entries', async () => {
    const primary = new InMemoryClientStore();
    const masterKey = crypto.randomBytes(32);
    await primary.transaction(async (tx) => {
      await tx.contacts.put({ accountId: B, number: '+15550100002' as never, numberVerified: true, expireTimer: 30, createdAt: 1, updatedAt: 2 });
      await tx.groups.put({
        id: G,
        masterKey,
        revision: 2,
        name: 'g',
        description: '',
        avatar: undefined,
        avatarContentType: undefined,
        members: [{ accountId: A, admin: true, joinedAt: 1, joinedRevision: 0 }],
        settings: { adminsManageMembers: true, adminsEditInfo: true, adminsSend: false },
        creatorId: A,
        inviteLinkEnabled: false,
        inviteLinkPassword: undefined,
        expireTimer: 60,
        active: true,
        distributionId: undefined,
        senderKeySharedWith: [],
        createdAt: 1,
        updatedAt: 1,
      });
      for (let i = 1; i <= 7; i++) {
        await tx.messages.put(
          message({
            id: `${i % 2 ? B : A}:${i}`,
            timestamp: i,
            senderId: i % 2 ? B : A,
            direction: i % 2 ? 'incoming' : 'outgoing',
            status: i % 2 ? 'read' : 'delivered',
            body: `m${i}`,
            reactions: i === 3 ? [{ authorId: A, emoji: '👍', timestamp: 9 }] : [],
            quote: i === 4 ? { timestamp: 3, authorId: B, text: 'm3' } : undefined,
          }),
        );
      }
      await tx.messages.put(message({ id: `${A}:100`, timestamp: 100, conversationId: G, senderId: A, direction: 'outgoing', status: 'sent', receipts: [{ accountId: B, status: 'read', at: 3 }] }));
    });
    const bytes = await primary.transaction((tx) => buildHistoryBundle(tx, 1000, 5));
    const bundle = decodeHistoryBundle(bytes);
    assert.equal(bundle.messages.length, 6, 'the newest 5 of the contact and the 1 of the group');

    const companion = new InMemoryClientStore();
    // Something the companion already has is kept as it is.
    await companion.transaction((tx) => tx.messages.put(message({ id: `${B}:7`, timestamp: 7, body: 'mine' })));
    // A malformed entry (sender not the id's) is skipped.
    bundle.messages.push({ ...(bundle.messages[0] as (typeof bundle.messages)[number]), id: `${A}:999`, senderAccountId: B });
    const imported = await companion.transaction((tx) => importHistoryBundle(tx, bundle, 2000));
    assert.deepEqual({ messages: imported.messages, contacts: imported.contacts, groups: imported.groups }, { messages: 5, contacts: 1, groups: 1 });
    assert.deepEqual(imported.newGroups, [G]);
    const want = await primary.transaction((tx) => tx.messages.list(B, { limit: 5 }));
    const got = await companion.transaction((tx) => tx.messages.list(B));
    const strip = (m: MessageRecord) => ({ ...m, receivedAt: 0 });
    assert.deepEqual(got.filter((m) => m.id !== `${B}:7`).map(strip), want.filter((m) => m.id !== `${B}:7`).map(strip));
    assert.equal(got.find((m) => m.id === `${B}:7`)?.body, 'mine');
    const g = await companion.transaction((tx) => tx.groups.get(G));
    assert.deepEqual(g?.masterKey, masterKey);
    assert.equal(g?.revision, -1, 'known by id and key until its state is fetched');
    assert.deepEqual((await companion.transaction((tx) => tx.messages.list(G)))[0]?.receipts, [{ accountId: B, status: 'read', at: 3 }]);
    assert.equal((await companion.transaction((tx) => tx.contacts.get(B)))?.expireTimer, 30);
    await assert.rejects(Promise.resolve().then(() => decodeHistoryBundle(new Uint8Array([0xff, 0xff, 0xff]))), isCode(ClientErrorCode.BadBlob));
  });
});

describe('verified device lists', () => {
  it('pins companions: added, key changed (a warning, the old session dropped), removed; an older list changes nothing', async () => {
    const store = new InMemoryClientStore();
    const k2 = crypto.randomBytes(33);
    const k3 = crypto.randomBytes(33);
    const k3b = crypto.randomBytes(33);
    await store.transaction((tx) => tx.identities.put({ accountId: B, identityKey: crypto.randomBytes(33), status: 'verified', firstSeenAt: 1, changedAt: undefined }));
    const first = await store.transaction((tx) => applyDeviceList(tx, { accountId: B, version: 1, devices: new Map([[2, k2]]) }, 10, false));
    assert.equal(first.devices, undefined, 'the first list of an account seen for the first time is no change');
    const second = await store.transaction(async (tx) => {
      await tx.sessions.put(B, 2, new Uint8Array([1]));
      return applyDeviceList(tx, { accountId: B, version: 2, devices: new Map([[2, k2], [3, k3]]) }, 20, false);
    });
    assert.deepEqual(second.devices, { accountId: B, added: [3], removed: [] });
    const third = await store.transaction(async (tx) => {
      await tx.sessions.put(B, 3, new Uint8Array([1]));
      return applyDeviceList(tx, { accountId: B, version: 3, devices: new Map([[3, k3b]]) }, 30, false);
    });
    assert.deepEqual(third.devices, { accountId: B, added: [], removed: [2] });
    assert.equal(third.identityChanges.length, 1);
    assert.equal(third.identityChanges[0]?.deviceId, 3);
    assert.equal(third.identityChanges[0]?.status, 'verified');
    assert.deepEqual(third.identityChanges[0]?.newKey, k3b);
    await store.transaction(async (tx) => {
      assert.deepEqual(await tx.sessions.devices(B), [], 'no session with a removed device, nor with the old key');
      assert.deepEqual((await tx.deviceIdentities.list(B)).map((d) => [d.deviceId, d.listVersion, d.changedAt]), [[3, 3, 30]]);
    });
    const old = await store.transaction((tx) => applyDeviceList(tx, { accountId: B, version: 2, devices: new Map([[2, k2], [3, k3]]) }, 40, true));
    assert.equal(old.applied, false);
    assert.deepEqual((await store.transaction((tx) => tx.deviceIdentities.list(B))).map((d) => d.deviceId), [3]);
  });
});
