// Blob retention against the real server (SQLite in a temporary folder, the injected clock): `blob_ids` in
// 1:1 and group sends (validated always; with retention `fetched` they register every destination device
// as a pending fetcher in the transaction that queues the envelopes), `POST /v1/blobs/{id}/fetched`, a
// removed device counting as done, the grace period, the sweep deleting the file and the index row (404,
// quota freed, a later upload of the same bytes works), idempotent repeats, and `expiry` never deleting
// on fetch.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import { createAccountSignature, createSignedDeviceList, deviceSignatureMessage, encodeDeviceIdentityDetails, encodeSignedDeviceList, type DeviceIdentity } from '../../src/protocol/device-identity.ts';
import {
  CreateGroupRequestSchema,
  DeviceIdentitySchema,
  GroupDevicesSchema,
  GroupSettingsSchema,
  LinkDeviceRequestSchema,
  LinkDeviceResponseSchema,
  OutgoingMessageSchema,
  ProvisioningResponseSchema,
  SendGroupMessageRequestSchema,
  SendMessageRequestSchema,
  SendMessageResponseSchema,
  type GroupDevices,
} from '../../src/protocol/gen/service_pb.ts';
import { KeyPair } from '../../src/protocol/keys.ts';
import { recordSecret, startTestServer, type TestServer } from '../support/server-harness.ts';
import { decodeBody, fakeCiphertext, http, register, WsTestClient, type DeviceCredentials, type HttpResult, type TestAccount } from '../support/server-client.ts';
import { crypto, kyberPreKey, signedPreKey } from '../support/server-keys.ts';
import { sqliteStorage } from '../../src/server/app.ts';

const KIB = 1024;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const GRACE = 10 * MINUTE;
const idOf = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A device the test can send to and authenticate as. */
interface Device extends DeviceCredentials {
  readonly accountId: string;
  readonly deviceId: number;
  readonly registrationId: number;
}

/** An account with its primary and one listed companion. */
interface TwoDevices {
  readonly primary: TestAccount;
  readonly laptop: Device;
}

/** Links a companion to `primary` with valid signatures and lists it (alone) in device list `version`. */
async function linkListedCompanion(t: TestServer, primary: TestAccount, version = 1): Promise<Device> {
  const provisioned = await http(t.url, 'POST', '/v1/devices/provisioning', { auth: primary });
  assert.equal(provisioned.status, 200);
  const { code, deviceId } = fromBinary(ProvisioningResponseSchema, provisioned.body);
  recordSecret(code);
  const keys = await KeyPair.generate(crypto);
  recordSecret(keys.publicKey.serialized);
  const details = encodeDeviceIdentityDetails({ accountId: primary.accountId, deviceId, timestamp: Date.now() });
  const identity: DeviceIdentity = create(DeviceIdentitySchema, {
    details,
    identityKey: keys.publicKey.serialized,
    accountSignature: createAccountSignature(crypto, primary.identity, details, keys.publicKey),
    deviceSignature: keys.sign(crypto, deviceSignatureMessage(details, keys.publicKey, primary.identity.publicKey)),
  });
  const registrationId = 1 + Math.floor(Math.random() * 16000);
  const body = toBinary(LinkDeviceRequestSchema, create(LinkDeviceRequestSchema, { code, registrationId, identity, signedPreKey: await signedPreKey(keys, 1), kyberLastResortPreKey: kyberPreKey(keys, 1000) }));
  const linked = await http(t.url, 'POST', '/v1/devices/link', { body });
  assert.equal(linked.status, 200, `link: ${linked.status} ${linked.code}`);
  const response = fromBinary(LinkDeviceResponseSchema, linked.body);
  recordSecret(response.password);
  const list = createSignedDeviceList(crypto, primary.identity, { accountId: primary.accountId, version, timestamp: Date.now(), devices: [{ deviceId, identity }] });
  assert.equal((await http(t.url, 'PUT', '/v1/devices/list', { auth: primary, body: encodeSignedDeviceList(list) })).status, 200);
  return { accountId: primary.accountId, deviceId, login: `${primary.accountId}.${deviceId}`, password: response.password, registrationId };
}

/** The digest of service.proto: SHA-256 over "<account>.<device>.<registration>\n" in GroupDevices order. */
function digestOf(devices: GroupDevices): Uint8Array {
  const hash = createHash('sha256');
  for (const d of devices.devices) hash.update(`${d.accountId}.${d.deviceId}.${d.registrationId}\n`);
  return new Uint8Array(hash.digest());
}

/** Everything a retention test needs on one server. */
class Fixture {
  readonly t: TestServer;

  constructor(t: TestServer) {
    this.t = t;
  }

  /** Uploads `bytes` in one request as `who`; the HTTP status. */
  async upload(who: DeviceCredentials, bytes: Uint8Array): Promise<number> {
    return (await http(this.t.url, 'PUT', `/v1/blobs/${idOf(bytes)}`, { auth: who, body: bytes })).status;
  }

  /** Uploads fresh random bytes (asserting 200) and returns the blob id. */
  async newBlob(who: DeviceCredentials, size = 16 * KIB): Promise<{ id: string; bytes: Uint8Array }> {
    const bytes = new Uint8Array(randomBytes(size));
    assert.equal(await this.upload(who, bytes), 200);
    return { id: idOf(bytes), bytes };
  }

  getBlob(who: DeviceCredentials, id: string): Promise<HttpResult> {
    return http(this.t.url, 'GET', `/v1/blobs/${id}`, { auth: who });
  }

  fetched(who: DeviceCredentials, id: string): Promise<HttpResult> {
    return http(this.t.url, 'POST', `/v1/blobs/${id}/fetched`, { auth: who });
  }

  /** A 1:1 send naming `blobIds` to every listed device of `to`. */
  send(from: DeviceCredentials, to: readonly Device[], blobIds: readonly string[], options: { idempotencyKey?: Uint8Array; ephemeral?: boolean } = {}): Promise<HttpResult> {
    const accountId = to[0]?.accountId ?? '';
    const body = toBinary(
      SendMessageRequestSchema,
      create(SendMessageRequestSchema, {
        messages: to.map((d) => create(OutgoingMessageSchema, { destinationDeviceId: d.deviceId, destinationRegistrationId: d.registrationId, type: 2, content: fakeCiphertext(64) })),
        timestamp: BigInt(Date.now()),
        ephemeral: options.ephemeral ?? false,
        idempotencyKey: options.idempotencyKey ?? new Uint8Array(0),
        blobIds: [...blobIds],
      }),
    );
    return http(this.t.url, 'PUT', `/v1/messages/${accountId}`, { auth: from, body });
  }

  async sendGroup(from: DeviceCredentials, groupId: string, blobIds: readonly string[], options: { idempotencyKey?: Uint8Array } = {}): Promise<HttpResult> {
    const devices = decodeBody(GroupDevicesSchema, (await http(this.t.url, 'GET', `/v1/groups/${groupId}/devices`, { auth: from })).body);
    const body = toBinary(
      SendGroupMessageRequestSchema,
      create(SendGroupMessageRequestSchema, {
        content: fakeCiphertext(64),
        timestamp: BigInt(Date.now()),
        devicesDigest: digestOf(devices),
        idempotencyKey: options.idempotencyKey ?? new Uint8Array(0),
        blobIds: [...blobIds],
      }),
    );
    return http(this.t.url, 'PUT', `/v1/groups/${groupId}/messages`, { auth: from, body });
  }

  #query<T>(query: string, ...params: unknown[]): T {
    const db = new Database(sqliteStorage(this.t.server.app).file, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(query).get(...params) as T;
    } finally {
      db.close();
    }
  }

  /** `<account>.<device>` of every device with a pending fetch of `blobId`, sorted. */
  pending(blobId: string): string[] {
    const db = new Database(sqliteStorage(this.t.server.app).file, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT d.account_id AS a, d.device_id AS d FROM blob_fetches f JOIN devices d ON d.ref = f.device_ref WHERE f.blob_id = ?').all(blobId) as Array<{ a: string; d: number }>;
      return rows.map((r) => `${r.a}.${r.d}`).sort();
    } finally {
      db.close();
    }
  }

  /** When a message last named the blob (retention `fetched`), or undefined. */
  lastRegistered(blobId: string): number | undefined {
    return this.#query<{ t: number } | undefined>('SELECT last_registered_at AS t FROM blob_fetch_marks WHERE blob_id = ?', blobId)?.t;
  }

  messages(): number {
    return this.#query<{ n: number }>('SELECT COUNT(*) AS n FROM messages').n;
  }

  fileExists(blobId: string): boolean {
    return existsSync(path.join(this.t.dataDir, 'blobs', blobId));
  }
}

const ref = (d: Device | TestAccount): string => `${d.accountId}.${d.deviceId}`;

describe('blob retention "fetched"', () => {
  let f: Fixture;
  let alice: TwoDevices;
  let bob: TestAccount;
  let carol: TestAccount;
  const aliceDevices = (): Device[] => [alice.primary, alice.laptop];

  before(async () => {
    const t = await startTestServer({ blobRetention: 'fetched', limits: { blobQuotaBytes: 1024 * KIB } });
    f = new Fixture(t);
    const primary = await register(t.url, '+15550100001', '111111');
    alice = { primary, laptop: await linkListedCompanion(t, primary) };
    bob = await register(t.url, '+15550100002', '222222');
    carol = await register(t.url, '+15550100003', '333333');
  });
  after(() => f.t.close());

  it('refuses more than 32 blob ids or a malformed one with 400 and queues nothing (1:1 and group)', async () => {
    const ids = Array.from({ length: 33 }, () => randomBytes(32).toString('hex'));
    const before = f.messages();
    for (const blobIds of [ids, [randomBytes(32).toString('hex').toUpperCase()], ['ab'], [`${randomBytes(32).toString('hex')}0`]]) {
      const r = await f.send(bob, aliceDevices(), blobIds);
      assert.deepEqual([r.status, r.code], [400, 'SERVER_BAD_REQUEST']);
    }
    assert.equal(f.messages(), before, 'nothing queued');
    assert.equal((await f.send(bob, aliceDevices(), ids.slice(0, 32))).status, 200, '32 unknown ids are fine (ignored)');
    for (const id of ids) assert.deepEqual(f.pending(id), [], 'unknown ids register nothing');

    const groupId = randomBytes(16).toString('hex');
    assert.equal((await http(f.t.url, 'PUT', `/v1/groups/${groupId}`, { auth: bob, body: toBinary(CreateGroupRequestSchema, create(CreateGroupRequestSchema, { memberAccountIds: [carol.accountId], attributes: fakeCiphertext(16), settings: create(GroupSettingsSchema, {}) })) })).status, 200);
    const queued = f.messages();
    const r = await f.sendGroup(bob, groupId, ids);
    assert.deepEqual([r.status, r.code], [400, 'SERVER_BAD_REQUEST']);
    assert.equal((await f.sendGroup(bob, groupId, ['not-hex'])).status, 400);
    assert.equal(f.messages(), queued, 'nothing queued for the group');
  });

  it('keeps a blob until every device reported it fetched and the grace period passed; then deletes file, row and quota', async () => {
    const big = await f.newBlob(bob, 600 * KIB);
    assert.equal((await f.send(bob, aliceDevices(), [big.id])).status, 200);
    assert.deepEqual(f.pending(big.id), [ref(alice.primary), ref(alice.laptop)].sort());
    assert.equal(await f.upload(bob, new Uint8Array(randomBytes(600 * KIB))), 507, 'the quota is taken');

    assert.equal((await f.fetched(alice.primary, big.id)).status, 204);
    assert.equal((await f.fetched(alice.primary, big.id)).status, 204, 'idempotent');
    assert.deepEqual(f.pending(big.id), [ref(alice.laptop)]);
    f.t.clock.advance(GRACE + 1);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(alice.laptop, big.id)).status, 200, 'the laptop has not fetched it yet');

    assert.equal((await f.fetched(alice.laptop, big.id)).status, 204);
    assert.deepEqual(f.pending(big.id), []);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(alice.primary, big.id)).status, 404, 'deleted once all fetched, past the grace period');
    assert.equal(f.fileExists(big.id), false, 'the file is gone');
    assert.equal(f.lastRegistered(big.id), undefined, 'the mark went with the blob');
    assert.equal(await f.upload(bob, new Uint8Array(randomBytes(600 * KIB))), 200, 'the quota is free again');

    // The same bytes again: a new blob, served, and kept until fetched again.
    assert.equal(await f.upload(carol, big.bytes), 200);
    assert.equal((await f.getBlob(alice.primary, big.id)).status, 200);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(alice.primary, big.id)).status, 200, 'not named by a message since: only expires');
  });

  it('waits for the grace period after the last message naming the blob', async () => {
    const blob = await f.newBlob(bob);
    assert.equal((await f.send(bob, [carol], [blob.id])).status, 200);
    assert.equal((await f.fetched(carol, blob.id)).status, 204);
    f.t.clock.advance(GRACE - MINUTE);
    // A second message (e.g. the sender's sync to its other devices) moves the grace period on.
    assert.equal((await f.send(bob, aliceDevices(), [blob.id])).status, 200);
    for (const d of aliceDevices()) assert.equal((await f.fetched(d, blob.id)).status, 204);
    f.t.clock.advance(2 * MINUTE);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(carol, blob.id)).status, 200, 'within the grace period of the second message');
    f.t.clock.advance(GRACE);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(carol, blob.id)).status, 404);
    assert.equal(f.fileExists(blob.id), false);
  });

  it('counts a removed device as done', async () => {
    const blob = await f.newBlob(bob);
    assert.equal((await f.send(bob, aliceDevices(), [blob.id])).status, 200);
    assert.equal((await f.fetched(alice.primary, blob.id)).status, 204);
    assert.deepEqual(f.pending(blob.id), [ref(alice.laptop)]);
    assert.equal((await http(f.t.url, 'DELETE', `/v1/devices/${alice.laptop.deviceId}`, { auth: alice.primary })).status, 200);
    assert.deepEqual(f.pending(blob.id), [], "the removed device's pending fetch went with it");
    f.t.clock.advance(GRACE + 1);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(alice.primary, blob.id)).status, 404);
    assert.equal(f.fileExists(blob.id), false);
    // Alice gets her second device back for the tests below.
    alice = { primary: alice.primary, laptop: await linkListedCompanion(f.t, alice.primary, 2) };
  });

  it('registers the fan-out devices of a group send, and nothing for the sender or an ephemeral send', async () => {
    const blob = await f.newBlob(bob);
    const groupId = randomBytes(16).toString('hex');
    const created = await http(f.t.url, 'PUT', `/v1/groups/${groupId}`, {
      auth: bob,
      body: toBinary(CreateGroupRequestSchema, create(CreateGroupRequestSchema, { memberAccountIds: [alice.primary.accountId, carol.accountId], attributes: fakeCiphertext(16), settings: create(GroupSettingsSchema, {}) })),
    });
    assert.equal(created.status, 200);
    const sent = await f.sendGroup(bob, groupId, [blob.id]);
    assert.equal(sent.status, 200, `group send: ${sent.status} ${sent.code}`);
    assert.equal(fromBinary(SendMessageResponseSchema, sent.body).stored, 3);
    assert.deepEqual(f.pending(blob.id), [ref(alice.primary), ref(alice.laptop), ref(carol)].sort());

    const other = await f.newBlob(bob);
    assert.equal((await f.send(bob, aliceDevices(), [other.id], { ephemeral: true })).status, 200);
    assert.deepEqual(f.pending(other.id), [], 'ephemeral sends ignore blob_ids');
    assert.equal(f.lastRegistered(other.id), undefined);

    for (const d of [alice.primary, alice.laptop, carol]) assert.equal((await f.fetched(d, blob.id)).status, 204);
    f.t.clock.advance(GRACE + 1);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(bob, blob.id)).status, 404);
    assert.equal((await f.getBlob(bob, other.id)).status, 200, 'never named by a stored message: only expires');
  });

  it('registers nothing new for an idempotent repeat', async () => {
    const blob = await f.newBlob(bob);
    const key = new Uint8Array(randomBytes(16));
    assert.equal((await f.send(bob, [carol], [blob.id], { idempotencyKey: key })).status, 200);
    const first = f.lastRegistered(blob.id);
    assert.ok(first !== undefined);
    assert.equal((await f.fetched(carol, blob.id)).status, 204);
    f.t.clock.advance(MINUTE);
    const repeat = await f.send(bob, [carol], [blob.id], { idempotencyKey: key });
    assert.equal(repeat.status, 200);
    assert.equal(fromBinary(SendMessageResponseSchema, repeat.body).stored, 1, 'answered as the first send');
    assert.deepEqual(f.pending(blob.id), [], 'no new pending fetch');
    assert.equal(f.lastRegistered(blob.id), first, 'the grace period did not move');
    f.t.clock.advance(GRACE - MINUTE + 1);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(bob, blob.id)).status, 404);
  });

  it('answers /fetched with 204 for any well-formed id, 400 for a malformed one, over HTTP and the WebSocket', async () => {
    assert.equal((await f.fetched(carol, randomBytes(32).toString('hex'))).status, 204, 'nothing pending');
    const bad = await f.fetched(carol, 'xyz');
    assert.deepEqual([bad.status, bad.code], [400, 'SERVER_BAD_REQUEST']);
    assert.equal((await http(f.t.url, 'POST', `/v1/blobs/${randomBytes(32).toString('hex')}/fetched`)).status, 401);

    const blob = await f.newBlob(bob);
    assert.equal((await f.send(bob, [carol], [blob.id])).status, 200);
    const socket = await WsTestClient.connect(f.t.wsUrl, carol);
    try {
      const r = await socket.request('POST', `/v1/blobs/${blob.id}/fetched`);
      assert.equal(r.status, 204);
      assert.equal((await socket.request('POST', '/v1/blobs/nope/fetched')).status, 400);
    } finally {
      await socket.close();
    }
    assert.deepEqual(f.pending(blob.id), []);
  });
});

describe('blob retention "expiry" (the default)', () => {
  let f: Fixture;
  let alice: TestAccount;
  let bob: TestAccount;

  before(async () => {
    f = new Fixture(await startTestServer());
    alice = await register(f.t.url, '+15550100004', '444444');
    bob = await register(f.t.url, '+15550100005', '555555');
  });
  after(() => f.t.close());

  it('validates blob_ids but never deletes a blob because it was fetched; it expires 30 days after its upload', async () => {
    const r = await f.send(bob, [alice], ['A'.repeat(64)]);
    assert.deepEqual([r.status, r.code], [400, 'SERVER_BAD_REQUEST']);
    const blob = await f.newBlob(bob);
    assert.equal((await f.send(bob, [alice], [blob.id])).status, 200);
    assert.deepEqual(f.pending(blob.id), [], 'nothing is registered');
    assert.equal((await f.fetched(alice, blob.id)).status, 204);
    f.t.clock.advance(GRACE + 1);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(alice, blob.id)).status, 200, 'kept');
    f.t.clock.advance(30 * DAY);
    await f.t.server.app.sweep();
    assert.equal((await f.getBlob(alice, blob.id)).status, 404, 'expired');
    assert.equal(f.fileExists(blob.id), false);
  });
});
