// Groups against the real server (docs/api.md, "Groups"): create, read, changes and their permission
// refusals, invite links, leaving with last-admin promotion, the 1,024-member limit, type 9 updates for
// members and removed members, group messages stored once and fanned out to every member device but the
// sender's (checked against the devices digest), durability across a restart, exactly-once delivery to
// offline devices, concurrent changes, and type 9 refused from clients.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  CreateGroupRequestSchema,
  GroupChangeRequestSchema,
  GroupDevicesSchema,
  GroupSettingsSchema,
  GroupStateSchema,
  GroupUpdateSchema,
  JoinGroupRequestSchema,
  SendGroupMessageRequestSchema,
  SendMessageResponseSchema,
  type Envelope,
  type GroupDevices,
  type GroupState,
} from '../../src/protocol/gen/service_pb.ts';
import type { AccountId, PhoneNumber } from '../../src/server/ids.ts';
import { decodeBody, fakeCiphertext, http, register, sendBody, WsTestClient, type HttpResult, type TestAccount } from '../support/server-client.ts';
import { countRows, startTestServer, type TestServer } from '../support/server-harness.ts';
import { sqliteStorage } from '../../src/server/app.ts';

const newGroupId = (): string => randomBytes(16).toString('hex');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Waits until `table` holds `n` rows (acknowledged envelopes are deleted asynchronously). */
async function untilRows(t: TestServer, table: Parameters<typeof countRows>[1], n: number): Promise<void> {
  for (let i = 0; i < 200 && (await countRows(t, table)) !== n; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await countRows(t, table), n, `rows in ${table}`);
}

/** The digest of service.proto: SHA-256 over "<account>.<device>.<registration>\n" in GroupDevices order. */
function digestOf(devices: GroupDevices): Uint8Array {
  const hash = createHash('sha256');
  for (const d of devices.devices) hash.update(`${d.accountId}.${d.deviceId}.${d.registrationId}\n`);
  return new Uint8Array(hash.digest());
}

describe('server groups', () => {
  let t: TestServer;
  let alice: TestAccount;
  let bob: TestAccount;
  let carol: TestAccount;
  let dave: TestAccount;
  let erin: TestAccount;
  const sockets: WsTestClient[] = [];

  const call = <D extends DescMessage>(who: TestAccount, verb: string, path: string, schema?: D, message?: MessageShape<D>): Promise<HttpResult> =>
    http(t.url, verb, path, { auth: who, body: schema === undefined || message === undefined ? undefined : toBinary(schema, message) });
  const createGroup = (who: TestAccount, id: string, members: readonly string[], settings?: { adminsManageMembers?: boolean; adminsSend?: boolean }) =>
    call(who, 'PUT', `/v1/groups/${id}`, CreateGroupRequestSchema, create(CreateGroupRequestSchema, { memberAccountIds: [...members], attributes: fakeCiphertext(40), settings: create(GroupSettingsSchema, settings ?? { adminsManageMembers: true }) }));
  const change = (who: TestAccount, id: string, fields: Parameters<typeof create<typeof GroupChangeRequestSchema>>[1]) =>
    call(who, 'POST', `/v1/groups/${id}/changes`, GroupChangeRequestSchema, create(GroupChangeRequestSchema, fields));
  const state = (r: HttpResult): GroupState => {
    assert.equal(r.status, 200, `expected 200, got ${r.status} ${r.code}`);
    return decodeBody(GroupStateSchema, r.body);
  };
  const refused = (r: HttpResult, status: number, code: string): void => assert.deepEqual([r.status, r.code], [status, code]);
  const devicesOf = async (who: TestAccount, id: string): Promise<GroupDevices> => decodeBody(GroupDevicesSchema, (await call(who, 'GET', `/v1/groups/${id}/devices`)).body);
  const sendGroup = async (who: TestAccount, id: string, content: Uint8Array, options: { digest?: Uint8Array; ephemeral?: boolean; idempotencyKey?: Uint8Array } = {}) =>
    call(
      who,
      'PUT',
      `/v1/groups/${id}/messages`,
      SendGroupMessageRequestSchema,
      create(SendGroupMessageRequestSchema, {
        content,
        timestamp: BigInt(Date.now()),
        devicesDigest: options.digest ?? digestOf(await devicesOf(who, id)),
        ephemeral: options.ephemeral ?? false,
        idempotencyKey: options.idempotencyKey ?? new Uint8Array(),
      }),
    );
  const connect = async (who: TestAccount, ack?: (e: Envelope) => number): Promise<WsTestClient> => {
    const socket = await WsTestClient.connect(t.wsUrl, who, ack === undefined ? {} : { ack });
    sockets.push(socket);
    return socket;
  };
  /** Connects, waits for the stored queue, and returns what arrived for group `id` (acknowledged). */
  const drain = async (who: TestAccount, id: string): Promise<Envelope[]> => {
    const socket = await connect(who);
    await socket.waitForQueueEmpty();
    await socket.close();
    // The acks arrived before the close; wait for their deletes to commit.
    await sqliteStorage(t.server.app).writer.drain();
    return socket.received.filter((e) => e.groupId === id);
  };
  const updates = (envelopes: readonly Envelope[]) => envelopes.filter((e) => e.type === 9).map((e) => decodeBody(GroupUpdateSchema, e.content));

  before(async () => {
    t = await startTestServer({ rateLimits: { groupChangesPerAccount: { capacity: 10_000, windowMs: 1000 } } });
    const accounts = await Promise.all([1, 2, 3, 4, 5].map((n) => register(t.url, `+1555010000${n}`, String(n).repeat(6))));
    [alice, bob, carol, dave, erin] = accounts as [TestAccount, TestAccount, TestAccount, TestAccount, TestAccount];
  });
  after(async () => {
    for (const s of sockets) await s.close();
    await t.close();
  });

  it('creates a group (caller sole admin), answers members only, and repeats idempotently for the creator', async () => {
    const id = newGroupId();
    const created = state(await createGroup(alice, id, [bob.accountId, carol.accountId, bob.accountId]));
    assert.equal(created.revision, 0);
    assert.equal(created.creatorAccountId, alice.accountId);
    assert.deepEqual(created.members.map((m) => [m.accountId, m.admin]), [alice, bob, carol].map((a) => [a.accountId, a === alice]).sort());
    assert.equal(state(await call(bob, 'GET', `/v1/groups/${id}`)).members.length, 3);
    refused(await call(dave, 'GET', `/v1/groups/${id}`), 403, 'SERVER_FORBIDDEN');
    refused(await call(dave, 'GET', `/v1/groups/${id}/devices`), 403, 'SERVER_FORBIDDEN');
    refused(await call(alice, 'GET', `/v1/groups/${newGroupId()}`), 404, 'SERVER_NOT_FOUND');
    refused(await call(alice, 'GET', '/v1/groups/not-a-group'), 400, 'SERVER_BAD_REQUEST');
    assert.equal(state(await createGroup(alice, id, [bob.accountId])).members.length, 3, 'a repeat at revision 0 answers the state');
    refused(await createGroup(bob, id, []), 409, 'SERVER_CONFLICT');
    refused(await createGroup(alice, newGroupId(), [randomUUID()]), 404, 'SERVER_NOT_FOUND');
    refused(await createGroup(alice, newGroupId(), ['nobody']), 400, 'SERVER_BAD_REQUEST');
    const tooLarge = create(CreateGroupRequestSchema, { memberAccountIds: [bob.accountId], attributes: new Uint8Array(64 * 1024 + 1) });
    refused(await call(alice, 'PUT', `/v1/groups/${newGroupId()}`, CreateGroupRequestSchema, tooLarge), 413, 'SERVER_PAYLOAD_TOO_LARGE');
    // Over the WebSocket, the same router answers.
    const ws = await connect(dave);
    const response = await ws.request('GET', `/v1/groups/${id}`);
    assert.deepEqual([response.status, response.code], [403, 'SERVER_FORBIDDEN']);
    await ws.close();
  });

  it('applies changes by their permission rules, one revision each, and refuses the rest unchanged', async () => {
    const id = newGroupId();
    state(await createGroup(alice, id, [bob.accountId, carol.accountId]));
    refused(await change(bob, id, { addMembers: [dave.accountId] }), 403, 'SERVER_FORBIDDEN');
    refused(await change(bob, id, { settings: create(GroupSettingsSchema, { adminsManageMembers: false }) }), 403, 'SERVER_FORBIDDEN');
    refused(await change(bob, id, { inviteLinkPassword: randomBytes(16) }), 403, 'SERVER_FORBIDDEN');
    refused(await change(dave, id, { attributes: new Uint8Array(4) }), 403, 'SERVER_FORBIDDEN');
    refused(await change(alice, id, { attributes: new Uint8Array(64 * 1024 + 1) }), 413, 'SERVER_PAYLOAD_TOO_LARGE');
    refused(await change(alice, id, { addMembers: [randomUUID()] }), 404, 'SERVER_NOT_FOUND');
    refused(await change(alice, id, { inviteLinkPassword: randomBytes(15) }), 400, 'SERVER_BAD_REQUEST');
    assert.equal(state(await call(alice, 'GET', `/v1/groups/${id}`)).revision, 0, 'nothing applied');
    assert.equal(state(await change(alice, id, { addMembers: [dave.accountId] })).revision, 1);
    assert.equal(state(await change(alice, id, { addMembers: [dave.accountId], removeMembers: [erin.accountId] })).revision, 1, 'a change that changes nothing');
    const promoted = state(await change(alice, id, { promote: [bob.accountId] }));
    assert.equal(promoted.revision, 2);
    assert.equal(state(await change(bob, id, { demote: [alice.accountId] })).revision, 3, 'an admin demotes another admin');
    refused(await change(alice, id, { removeMembers: [bob.accountId] }), 403, 'SERVER_FORBIDDEN');
    refused(await change(bob, id, { demote: [bob.accountId] }), 409, 'SERVER_CONFLICT');
    // Open membership: members add and promote, but removing an admin still takes an admin.
    state(await change(bob, id, { settings: create(GroupSettingsSchema, { adminsManageMembers: false }) }));
    const opened = state(await change(carol, id, { addMembers: [erin.accountId], promote: [erin.accountId] }));
    assert.equal(opened.members.find((m) => m.accountId === erin.accountId)?.admin, true);
    refused(await change(carol, id, { removeMembers: [erin.accountId] }), 403, 'SERVER_FORBIDDEN');
    const removed = state(await change(carol, id, { removeMembers: [dave.accountId] }));
    assert.equal(removed.revision, 6);
    refused(await change(dave, id, { addMembers: [dave.accountId] }), 403, 'SERVER_FORBIDDEN');

    // Type 9 updates: every device of the members after each change (the actor's included) with the state,
    // and the removed member's devices without it. Servers write them; the source is the actor.
    const forCarol = updates(await drain(carol, id));
    assert.deepEqual(forCarol.map((u) => u.revision), [0, 1, 2, 3, 4, 5, 6]);
    assert.ok(forCarol.every((u) => u.state?.revision === u.revision && u.groupId === id));
    assert.deepEqual([forCarol[0]?.created, forCarol[1]?.added, forCarol[6]?.removed, forCarol[6]?.actorAccountId], [true, [dave.accountId], [dave.accountId], carol.accountId]);
    assert.deepEqual(updates(await drain(alice, id)).map((u) => u.revision), [0, 1, 2, 3, 4, 5, 6]);
    const forDave = updates(await drain(dave, id));
    assert.deepEqual(forDave.map((u) => [u.revision, u.state === undefined]), [[1, false], [2, false], [3, false], [4, false], [5, false], [6, true]]);
  });

  it('joins through the invite link (constant answers for wrong and revoked links) and stops after a revoke', async () => {
    const id = newGroupId();
    state(await createGroup(alice, id, [bob.accountId]));
    const password = randomBytes(16);
    const join = (who: TestAccount, p: Uint8Array) => call(who, 'POST', `/v1/groups/${id}/join`, JoinGroupRequestSchema, create(JoinGroupRequestSchema, { inviteLinkPassword: p }));
    refused(await join(carol, password), 403, 'SERVER_FORBIDDEN');
    assert.equal(state(await change(alice, id, { inviteLinkPassword: password })).inviteLinkEnabled, true);
    refused(await join(carol, randomBytes(16)), 403, 'SERVER_FORBIDDEN');
    const joined = state(await join(carol, password));
    assert.equal(joined.revision, 2);
    assert.equal(joined.members.find((m) => m.accountId === carol.accountId)?.joinedRevision, 2);
    assert.equal(state(await join(carol, randomBytes(16))).revision, 2, 'a member joining again gets the state');
    assert.equal(state(await change(alice, id, { revokeInviteLink: true })).inviteLinkEnabled, false);
    refused(await join(dave, password), 403, 'SERVER_FORBIDDEN');
    const [last] = updates(await drain(bob, id)).filter((u) => u.joinedByLink);
    assert.deepEqual([last?.actorAccountId, last?.added], [carol.accountId, [carol.accountId]]);
  });

  it('promotes the longest-standing member when the last admin leaves; the last member deletes the group', async () => {
    const id = newGroupId();
    state(await createGroup(alice, id, [carol.accountId]));
    t.clock.advance(1000);
    state(await change(alice, id, { addMembers: [bob.accountId] }));
    assert.equal((await call(alice, 'POST', `/v1/groups/${id}/leave`)).status, 200);
    const after = state(await call(bob, 'GET', `/v1/groups/${id}`));
    assert.deepEqual(after.members.map((m) => [m.accountId, m.admin]), [[bob.accountId, false], [carol.accountId, true]].sort());
    const aliceUpdates = updates(await drain(alice, id));
    const leftUpdate = aliceUpdates.at(-1);
    assert.deepEqual([leftUpdate?.left, leftUpdate?.state, leftUpdate?.promoted], [true, undefined, [carol.accountId]]);
    assert.equal((await call(alice, 'POST', `/v1/groups/${id}/leave`)).status, 200, 'leaving again changes nothing');
    assert.equal((await call(bob, 'POST', `/v1/groups/${id}/leave`)).status, 200);
    assert.equal((await call(carol, 'POST', `/v1/groups/${id}/leave`)).status, 200);
    refused(await call(carol, 'GET', `/v1/groups/${id}`), 404, 'SERVER_NOT_FOUND');
  });

  it('holds at most 1,024 members, the creator included', async () => {
    const others: string[] = [];
    for (let i = 0; i < 1024; i++) {
      const key = { id: 1, publicKey: new Uint8Array(33).fill(5), signature: new Uint8Array(64) };
      const r = await t.server.app.storage.accounts.register({
        newAccountId: randomUUID() as AccountId,
        number: `+1999${String(i).padStart(8, '0')}` as PhoneNumber,
        identityKey: key.publicKey,
        registrationId: 1 + i,
        passwordHash: new Uint8Array(32),
        deviceName: new Uint8Array(),
        signedPreKey: key,
        kyberLastResortKey: key,
        now: t.clock.now(),
      });
      others.push(r.account.id);
    }
    refused(await createGroup(alice, newGroupId(), others), 413, 'SERVER_GROUP_FULL');
    const id = newGroupId();
    assert.equal(state(await createGroup(alice, id, others.slice(0, 1023))).members.length, 1024);
    refused(await change(alice, id, { addMembers: [bob.accountId] }), 413, 'SERVER_GROUP_FULL');
    assert.equal((await devicesOf(alice, id)).devices.length, 1023);
    assert.equal(state(await call(alice, 'GET', `/v1/groups/${id}`)).revision, 0);
  });

  it('fans a group message out to every member device but the sender, stored once, after the digest check', async () => {
    const id = newGroupId();
    state(await createGroup(alice, id, [bob.accountId, carol.accountId, dave.accountId]));
    for (const who of [alice, bob, carol, dave]) await drain(who, id);
    const devices = await devicesOf(alice, id);
    assert.deepEqual(devices.devices.map((d) => d.accountId), [bob, carol, dave].map((a) => a.accountId).sort());
    assert.deepEqual(devices.devices.map((d) => d.registrationId), [...devices.devices].sort((x, y) => (x.accountId < y.accountId ? -1 : 1)).map((d) => ([bob, carol, dave].find((a) => a.accountId === d.accountId) as TestAccount).registrationId));
    const [messagesBefore, payloadsBefore] = [await countRows(t, 'messages'), await countRows(t, 'payloads')];
    const mismatch = await sendGroup(alice, id, fakeCiphertext(64), { digest: new Uint8Array(32) });
    refused(mismatch, 409, 'SERVER_MISMATCHED_DEVICES');
    assert.deepEqual(decodeBody(GroupDevicesSchema, mismatch.body).devices.map((d) => d.accountId), devices.devices.map((d) => d.accountId));
    assert.deepEqual([await countRows(t, 'messages'), await countRows(t, 'payloads')], [messagesBefore, payloadsBefore], 'nothing stored');
    const content = fakeCiphertext(2000);
    const key = randomBytes(16);
    assert.equal(decodeBody(SendMessageResponseSchema, (await sendGroup(alice, id, content, { idempotencyKey: key })).body).stored, 3);
    assert.equal(decodeBody(SendMessageResponseSchema, (await sendGroup(alice, id, content, { idempotencyKey: key })).body).stored, 3, 'a retry stores nothing new');
    assert.deepEqual([await countRows(t, 'messages'), await countRows(t, 'payloads')], [messagesBefore + 3, payloadsBefore + 1], 'three queue rows, one content');
    for (const who of [bob, carol, dave]) {
      const got = (await drain(who, id)).filter((e) => e.type === 7);
      assert.deepEqual(got.map((e) => [hex(e.content), e.sourceAccountId, e.sourceDeviceId, e.groupId]), [[hex(content), alice.accountId, 1, id]]);
    }
    assert.deepEqual(await drain(alice, id), [], "not to the sender's device");
    await untilRows(t, 'payloads', payloadsBefore); // freed once every device acknowledged

    // After a removal the removed member's devices get nothing more.
    state(await change(alice, id, { removeMembers: [dave.accountId] }));
    refused(await sendGroup(alice, id, fakeCiphertext(64), { digest: digestOf(devices) }), 409, 'SERVER_MISMATCHED_DEVICES');
    assert.equal(decodeBody(SendMessageResponseSchema, (await sendGroup(alice, id, fakeCiphertext(64))).body).stored, 2);
    const daveGot = await drain(dave, id);
    assert.deepEqual(daveGot.map((e) => e.type), [9], 'only the update telling dave he was removed');
    refused(await sendGroup(dave, id, fakeCiphertext(64), { digest: new Uint8Array(32) }), 403, 'SERVER_FORBIDDEN');
    const metrics = new TextDecoder().decode((await http(t.url, 'GET', '/metrics')).body);
    assert.match(metrics, /^parley_group_messages_total [1-9]/m);
    assert.match(metrics, /^parley_group_fanout_devices_bucket\{le="4"\} [1-9]/m);
  });

  it('refuses non-admins in an admins_send group, pushes ephemeral sends without storing them', async () => {
    const id = newGroupId();
    state(await createGroup(alice, id, [bob.accountId], { adminsManageMembers: true, adminsSend: true }));
    await drain(bob, id);
    refused(await sendGroup(bob, id, fakeCiphertext(64)), 403, 'SERVER_FORBIDDEN');
    const bobSocket = await connect(bob);
    await bobSocket.waitForQueueEmpty();
    const before = await countRows(t, 'messages');
    refused(await sendGroup(alice, id, fakeCiphertext(32), { ephemeral: true, digest: new Uint8Array(32) }), 409, 'SERVER_MISMATCHED_DEVICES');
    const typing = fakeCiphertext(32);
    assert.equal(decodeBody(SendMessageResponseSchema, (await sendGroup(alice, id, typing, { ephemeral: true })).body).stored, 0);
    await bobSocket.waitForEnvelopes(1);
    assert.deepEqual(bobSocket.received.map((e) => [e.ephemeral, e.groupId, hex(e.content)]), [[true, id, hex(typing)]]);
    assert.equal(await countRows(t, 'messages'), before);
    await bobSocket.close();
  });

  it('applies concurrent changes from two admins, both, with consecutive revisions', async () => {
    const id = newGroupId();
    state(await createGroup(alice, id, [bob.accountId, carol.accountId]));
    state(await change(alice, id, { promote: [bob.accountId] }));
    const [a, b] = await Promise.all([change(alice, id, { addMembers: [dave.accountId] }), change(bob, id, { attributes: fakeCiphertext(50) })]);
    assert.deepEqual([state(a).revision, state(b).revision].sort(), [2, 3]);
    const final = state(await call(carol, 'GET', `/v1/groups/${id}`));
    assert.equal(final.revision, 3);
    assert.ok(final.members.some((m) => m.accountId === dave.accountId));
  });

  it('keeps a re-registered account a member; its new device replaces the old one in GroupDevices', async () => {
    const id = newGroupId();
    state(await createGroup(alice, id, [erin.accountId]));
    const before = await devicesOf(alice, id);
    const again = await register(t.url, '+15550100005', '555555', (erin.registrationId % 16000) + 1);
    assert.equal(again.accountId, erin.accountId);
    const after = await devicesOf(alice, id);
    assert.deepEqual(after.devices.map((d) => [d.accountId, d.deviceId, d.registrationId]), [[erin.accountId, 1, again.registrationId]]);
    refused(await sendGroup(alice, id, fakeCiphertext(64), { digest: digestOf(before) }), 409, 'SERVER_MISMATCHED_DEVICES');
    assert.equal(state(await call(again, 'GET', `/v1/groups/${id}`)).members.length, 2);
    erin = again;
  });

  it('refuses type 9 from clients on the 1:1 path', async () => {
    const r = await http(t.url, 'PUT', `/v1/messages/${bob.accountId}`, { auth: alice, body: sendBody([{ deviceId: 1, registrationId: bob.registrationId, content: fakeCiphertext(20), type: 9 }]) });
    refused(r, 400, 'SERVER_BAD_REQUEST');
  });
});

describe('server group joins', () => {
  it('rate limits invite-link joins per account', async () => {
    const t = await startTestServer({ rateLimits: { groupJoinsPerAccount: { capacity: 2, windowMs: 60_000 } } });
    try {
      const alice = await register(t.url, '+15550100001', '111111');
      const bob = await register(t.url, '+15550100002', '222222');
      const id = newGroupId();
      const body = toBinary(JoinGroupRequestSchema, create(JoinGroupRequestSchema, { inviteLinkPassword: randomBytes(16) }));
      assert.equal((await http(t.url, 'PUT', `/v1/groups/${id}`, { auth: alice, body: new Uint8Array() })).status, 200);
      const tries = [];
      for (let i = 0; i < 3; i++) tries.push(await http(t.url, 'POST', `/v1/groups/${id}/join`, { auth: bob, body }));
      assert.deepEqual(tries.map((r) => r.code), ['SERVER_FORBIDDEN', 'SERVER_FORBIDDEN', 'SERVER_RATE_LIMITED']);
      assert.ok((tries[2]?.retryAfter ?? 0) > 0);
    } finally {
      await t.close();
    }
  });
});

describe('server groups across a restart', () => {
  it('delivers group messages stored before a restart afterwards, to offline devices exactly once', async () => {
    let t = await startTestServer();
    const dataDir = t.dataDir;
    try {
      const alice = await register(t.url, '+15550100001', '111111');
      const bob = await register(t.url, '+15550100002', '222222');
      const id = newGroupId();
      const call = (path: string, body: Uint8Array, verb = 'PUT') => http(t.url, verb, path, { auth: alice, body });
      assert.equal((await call(`/v1/groups/${id}`, toBinary(CreateGroupRequestSchema, create(CreateGroupRequestSchema, { memberAccountIds: [bob.accountId] })))).status, 200);
      const devices = decodeBody(GroupDevicesSchema, (await http(t.url, 'GET', `/v1/groups/${id}/devices`, { auth: alice })).body);
      const contents = [0, 1, 2].map((i) => fakeCiphertext(300, i));
      for (const content of contents) {
        const body = toBinary(SendGroupMessageRequestSchema, create(SendGroupMessageRequestSchema, { content, timestamp: BigInt(Date.now()), devicesDigest: digestOf(devices) }));
        assert.equal((await call(`/v1/groups/${id}/messages`, body)).status, 200);
      }
      await t.close({ keepData: true });
      t = await startTestServer({ dataDir });
      const first = await WsTestClient.connect(t.wsUrl, bob);
      await first.waitForQueueEmpty();
      await first.close();
      assert.deepEqual(first.received.map((e) => e.type), [9, 7, 7, 7]);
      assert.deepEqual(first.received.filter((e) => e.type === 7).map((e) => hex(e.content)), contents.map(hex));
      assert.ok(first.received.every((e) => e.groupId === id));
      const second = await WsTestClient.connect(t.wsUrl, bob);
      await second.waitForQueueEmpty();
      await second.close();
      assert.deepEqual(second.received, [], 'acknowledged once, delivered once');
      await untilRows(t, 'payloads', 1); // only Alice's (never connected) copy of the creation update is left
    } finally {
      await t.close();
    }
  });
});
