// The pure parts of groups: encrypted attributes (tampering gives a typed error and decrypts nothing), invite
// links, the devices digest, distribution ids, receipt aggregation, and applying server states to a record.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { GroupStateSchema } from '../../../src/protocol/gen/service_pb.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import {
  decryptAttributes,
  devicesDigest,
  encodeInviteLink,
  encryptAttributes,
  MAX_AVATAR_BYTES,
  newDistributionId,
  newGroupId,
  newMasterKey,
  parseInviteLink,
} from '../../../src/client/groups/crypto.ts';
import { groupMessageStatus, groupReceiptCounts, upsertMemberReceipt } from '../../../src/client/groups/receipts.ts';
import { applyGroupState, placeholderGroup } from '../../../src/client/groups/state.ts';
import type { AccountId, GroupId, MessageId } from '../../../src/client/ids.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { GroupRecord, MessageRecord } from '../../../src/client/store/types.ts';
import { crypto } from './support.ts';

const A = '11111111-1111-4111-8111-111111111111' as AccountId;
const B = '22222222-2222-4222-8222-222222222222' as AccountId;
const C = '33333333-3333-4333-8333-333333333333' as AccountId;
const code = (c: ClientErrorCode) => (err: unknown) => ClientError.is(err, c);

describe('group attributes', () => {
  it('round-trip name, description and avatar under the master key', async () => {
    const key = newMasterKey(crypto);
    const avatar = crypto.randomBytes(1000);
    const blob = await encryptAttributes(crypto, key, { name: 'Fämily 👪', description: 'd', avatar, avatarContentType: 'image/png' });
    assert.equal(blob[0], 1);
    assert.equal((blob.length - 1 - 16 - 32) % 16, 0);
    assert.deepEqual(await decryptAttributes(crypto, key, blob), { name: 'Fämily 👪', description: 'd', avatar, avatarContentType: 'image/png' });
    const empty = await encryptAttributes(crypto, key, { name: 'x', description: '', avatar: undefined, avatarContentType: undefined });
    assert.deepEqual(await decryptAttributes(crypto, key, empty), { name: 'x', description: '', avatar: undefined, avatarContentType: undefined });
  });

  it('refuses tampered blobs, another key and malformed blobs with CLIENT_BAD_GROUP_ATTRIBUTES', async () => {
    const key = newMasterKey(crypto);
    const blob = await encryptAttributes(crypto, key, { name: 'n', description: '', avatar: undefined, avatarContentType: undefined });
    for (const at of [0, 1, 20, blob.length - 40, blob.length - 1]) {
      const bad = blob.slice();
      bad[at] = (bad[at] as number) ^ 1;
      await assert.rejects(decryptAttributes(crypto, key, bad), code(ClientErrorCode.BadGroupAttributes), `byte ${at}`);
    }
    await assert.rejects(decryptAttributes(crypto, newMasterKey(crypto), blob), code(ClientErrorCode.BadGroupAttributes));
    await assert.rejects(decryptAttributes(crypto, key, blob.subarray(0, 40)), code(ClientErrorCode.BadGroupAttributes));
    await assert.rejects(decryptAttributes(crypto, key, new Uint8Array(0)), code(ClientErrorCode.BadGroupAttributes));
  });

  it('refuses an avatar over 48 KiB or without a content type', async () => {
    const key = newMasterKey(crypto);
    const big = new Uint8Array(MAX_AVATAR_BYTES + 1);
    await assert.rejects(encryptAttributes(crypto, key, { name: 'n', description: '', avatar: big, avatarContentType: 'image/png' }), code(ClientErrorCode.InvalidArgument));
    await assert.rejects(encryptAttributes(crypto, key, { name: 'n', description: '', avatar: new Uint8Array(3), avatarContentType: undefined }), code(ClientErrorCode.InvalidArgument));
    const max = await encryptAttributes(crypto, key, { name: 'n', description: '', avatar: new Uint8Array(MAX_AVATAR_BYTES), avatarContentType: 'image/jpeg' });
    assert.equal((await decryptAttributes(crypto, key, max)).avatar?.length, MAX_AVATAR_BYTES);
  });
});

describe('invite links', () => {
  it('carry group id, password and master key, and parse back', () => {
    const link = { groupId: newGroupId(crypto), password: crypto.randomBytes(16), masterKey: newMasterKey(crypto) };
    const text = encodeInviteLink(link);
    assert.match(text, /^parley:\/\/join#[A-Za-z0-9_-]{86}$/);
    assert.deepEqual(parseInviteLink(`  ${text}\n`), link);
  });

  it('refuse other schemes, bad base64url and wrong lengths with CLIENT_BAD_INVITE_LINK', () => {
    const text = encodeInviteLink({ groupId: newGroupId(crypto), password: crypto.randomBytes(16), masterKey: newMasterKey(crypto) });
    for (const bad of ['', 'https://example.com/join#abc', 'parley://join#', `${text}AA`, text.slice(0, -4), `${text.slice(0, -1)}!`, 'parley://join#a+b/c']) {
      assert.throws(() => parseInviteLink(bad), code(ClientErrorCode.BadInviteLink), JSON.stringify(bad));
    }
  });
});

describe('group ids and digests', () => {
  it('makes 32-hex group ids and version-4 distribution ids', () => {
    assert.match(newGroupId(crypto), /^[0-9a-f]{32}$/);
    assert.notEqual(newGroupId(crypto), newGroupId(crypto));
    assert.match(newDistributionId(crypto), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('hashes the devices in GroupDevices order (account id, then device id numerically)', () => {
    const keys = [`${B}.10.7`, `${A}.2.5`, `${B}.9.6`, `${A}.1.4`];
    const lines = `${A}.1.4\n${A}.2.5\n${B}.9.6\n${B}.10.7\n`;
    assert.deepEqual(devicesDigest(keys), new Uint8Array(createHash('sha256').update(lines).digest()));
    assert.deepEqual(devicesDigest([]), new Uint8Array(createHash('sha256').update('').digest()));
  });
});

function outgoing(receipts: MessageRecord['receipts'], status: MessageRecord['status'] = 'sent'): MessageRecord {
  return {
    id: `${A}:1` as MessageId,
    conversationId: 'ab'.repeat(16) as GroupId,
    senderId: A,
    direction: 'outgoing',
    timestamp: 1,
    serverTimestamp: undefined,
    receivedAt: 1,
    kind: 'text',
    body: 'x',
    quote: undefined,
    reactions: [],
    editedAt: undefined,
    deleted: false,
    viewOnce: false,
    expireTimer: 0,
    expiresAt: undefined,
    status,
    error: undefined,
    receipts,
    groupUpdate: undefined,
    attachments: [],
  };
}

describe('group receipts', () => {
  const group: GroupRecord = {
    ...placeholderGroup('ab'.repeat(16) as GroupId, 0),
    revision: 1,
    members: [A, B, C].map((accountId) => ({ accountId, admin: accountId === A, joinedAt: 0, joinedRevision: 0 })),
  };

  it('keeps each member\'s newest receipt and never downgrades it', () => {
    let r = upsertMemberReceipt([], B, 'read', 5);
    r = upsertMemberReceipt(r, B, 'delivered', 6);
    assert.deepEqual(r, [{ accountId: B, status: 'read', at: 5 }]);
    r = upsertMemberReceipt(r, C, 'delivered', 7);
    r = upsertMemberReceipt(r, C, 'viewed', 8);
    assert.deepEqual(r.map((x) => [x.accountId, x.status]), [[B, 'read'], [C, 'viewed']]);
  });

  it('advances the overall status only when every other member got there', () => {
    const one = outgoing([{ accountId: B, status: 'read', at: 1 }]);
    assert.equal(groupMessageStatus(one, group, A), 'sent');
    assert.deepEqual(groupReceiptCounts(one, group, A), { total: 2, delivered: 1, read: 1, viewed: 0 });
    const both = outgoing([{ accountId: B, status: 'read', at: 1 }, { accountId: C, status: 'delivered', at: 2 }]);
    assert.equal(groupMessageStatus(both, group, A), 'delivered');
    const all = outgoing([{ accountId: B, status: 'read', at: 1 }, { accountId: C, status: 'viewed', at: 2 }]);
    assert.equal(groupMessageStatus(all, group, A), 'read');
    // A member who left no longer counts; a status never goes back.
    const smaller = { ...group, members: group.members.filter((m) => m.accountId !== C) };
    assert.equal(groupMessageStatus(one, smaller, A), 'read');
    assert.equal(groupMessageStatus(outgoing([], 'read'), group, A), 'read');
  });
});

describe('applying group states', () => {
  const id = 'cd'.repeat(16) as GroupId;
  const state = (revision: number, members: AccountId[], attributes: Uint8Array = new Uint8Array(0)) =>
    create(GroupStateSchema, {
      groupId: id,
      revision,
      members: members.map((accountId) => ({ accountId, admin: accountId === A, joinedAt: 1n, joinedRevision: 0 })),
      settings: { adminsManageMembers: true, adminsEditInfo: true, adminsSend: false },
      attributes,
      createdAt: 5n,
      creatorAccountId: A,
    });

  it('applies only newer revisions, decrypts with the master key, and keeps old attributes when new ones are forged', async () => {
    const store = new InMemoryClientStore();
    const key = newMasterKey(crypto);
    const v1 = await encryptAttributes(crypto, key, { name: 'one', description: '', avatar: undefined, avatarContentType: undefined });
    await store.transaction(async (tx) => {
      const first = await applyGroupState(tx, crypto, A, state(1, [A, B], v1), { now: 1, masterKey: key });
      assert.equal(first.group.name, 'one');
      assert.equal(first.group.active, true);
      const stale = await applyGroupState(tx, crypto, A, state(0, [A]), { now: 2 });
      assert.equal(stale.applied, false);
      assert.equal((await tx.groups.get(id))?.members.length, 2);
      const forged = await encryptAttributes(crypto, newMasterKey(crypto), { name: 'forged', description: '', avatar: undefined, avatarContentType: undefined });
      const next = await applyGroupState(tx, crypto, A, state(2, [A, B], forged), { now: 3 });
      assert.equal(next.applied, true);
      assert.equal(next.group.name, 'one', 'attributes that do not authenticate are not taken');
      assert.equal(next.group.revision, 2);
    });
  });

  it('rotates our sender key when a member who held it is gone, and deletes their keys; deactivates when we are gone', async () => {
    const store = new InMemoryClientStore();
    await store.transaction(async (tx) => {
      await applyGroupState(tx, crypto, A, state(1, [A, B, C]), { now: 1 });
      const g = await tx.groups.get(id);
      await tx.groups.put({ ...(g as GroupRecord), distributionId: 'd3b07384-d113-4ec6-a7a6-8a2e2b3c5f10', senderKeySharedWith: [`${B}.1.1`, `${C}.1.2`] });
      await tx.senderKeys.put(C, 1, 'x', { groupId: id, record: new Uint8Array([1]) });
      await tx.senderKeys.put(B, 1, 'y', { groupId: id, record: new Uint8Array([2]) });
      const after = await applyGroupState(tx, crypto, A, state(2, [A, B]), { now: 2 });
      assert.deepEqual(after.departed, [C]);
      assert.equal(after.group.distributionId, undefined);
      assert.deepEqual(after.group.senderKeySharedWith, []);
      assert.equal(await tx.senderKeys.get(C, 1, 'x'), undefined);
      assert.ok(await tx.senderKeys.get(B, 1, 'y'));
      const out = await applyGroupState(tx, crypto, A, state(3, [B]), { now: 3 });
      assert.equal(out.group.active, false);
      assert.equal(await tx.senderKeys.get(B, 1, 'y'), undefined);
    });
  });

  it('refuses a malformed group id or member id with CLIENT_BAD_RESPONSE and stores nothing', async () => {
    const store = new InMemoryClientStore();
    await assert.rejects(
      store.transaction((tx) => applyGroupState(tx, crypto, A, create(GroupStateSchema, { groupId: 'nope', revision: 1 }), { now: 1 })),
      code(ClientErrorCode.BadResponse),
    );
    await assert.rejects(
      store.transaction((tx) => applyGroupState(tx, crypto, A, create(GroupStateSchema, { groupId: id, revision: 1, members: [{ accountId: 'x' }] }), { now: 1 })),
      code(ClientErrorCode.BadResponse),
    );
    assert.equal(await store.transaction((tx) => tx.groups.get(id)), undefined);
  });
});
