// Linked devices and blobs against the real server: provisioning codes, provisioning messages, linking with
// real account and device signatures (src/protocol/device-identity.ts on the node:crypto provider), the
// signed device list and the required device set, removal, re-registration, and blobs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import {
  accountSignatureMessage,
  createAccountSignature,
  createDeviceIdentity,
  createSignedDeviceList,
  deviceSignatureMessage,
  encodeDeviceIdentityDetails,
  encodeSignedDeviceList,
  type DeviceIdentity,
} from '../../src/protocol/device-identity.ts';
import {
  CreateGroupRequestSchema,
  DeviceIdentitySchema,
  DevicesResponseSchema,
  GroupDevicesSchema,
  LinkDeviceRequestSchema,
  LinkDeviceResponseSchema,
  MismatchedDevicesSchema,
  PreKeyResponseSchema,
  ProvisioningResponseSchema,
  ProvisionEnvelopeSchema,
  PutBlobResponseSchema,
  SetKeysRequestSchema,
} from '../../src/protocol/gen/service_pb.ts';
import { KeyPair } from '../../src/protocol/keys.ts';
import { recordSecret, startTestServer, type TestServer } from '../support/server-harness.ts';
import { basic, decodeBody, fakeCiphertext, http, register, sendBody, WsTestClient, type DeviceCredentials, type TestAccount } from '../support/server-client.ts';
import { crypto, kyberPreKey, signedPreKey } from '../support/server-keys.ts';
import { sqliteStorage } from '../../src/server/app.ts';

const MINUTE = 60_000;

/** A linked companion as the test knows it. */
interface Companion extends DeviceCredentials {
  readonly accountId: string;
  readonly deviceId: number;
  readonly keys: KeyPair;
  readonly identity: DeviceIdentity;
  readonly registrationId: number;
}

async function provision(t: TestServer, primary: DeviceCredentials): Promise<{ code: string; deviceId: number }> {
  const r = await http(t.url, 'POST', '/v1/devices/provisioning', { auth: primary });
  assert.equal(r.status, 200, `provisioning: ${r.status} ${r.code}`);
  const response = fromBinary(ProvisioningResponseSchema, r.body);
  assert.equal(response.expiresInSeconds, 600);
  recordSecret(response.code);
  return { code: response.code, deviceId: response.deviceId };
}

interface LinkOptions {
  /** Signs the account signature (default: the account's key). */
  readonly accountSigner?: KeyPair;
  /** Signs the device signature (default: the companion's key). */
  readonly deviceSigner?: KeyPair;
  /** The device id the details name (default: the reserved one). */
  readonly detailsDeviceId?: number;
  /** Signs the companion's prekeys (default: the companion's key). */
  readonly preKeySigner?: KeyPair;
}

/** Builds a LinkDeviceRequest the way the two devices make it. */
async function linkRequest(primary: TestAccount, code: string, deviceId: number, o: LinkOptions = {}): Promise<{ body: Uint8Array; keys: KeyPair; identity: DeviceIdentity; registrationId: number }> {
  const keys = await KeyPair.generate(crypto);
  recordSecret(keys.publicKey.serialized);
  const details = encodeDeviceIdentityDetails({ accountId: primary.accountId, deviceId: o.detailsDeviceId ?? deviceId, timestamp: Date.now() });
  const accountSignature = createAccountSignature(crypto, o.accountSigner ?? primary.identity, details, keys.publicKey);
  const deviceSigner = o.deviceSigner ?? keys;
  const identity = create(DeviceIdentitySchema, {
    details,
    identityKey: keys.publicKey.serialized,
    accountSignature,
    deviceSignature: deviceSigner.sign(crypto, deviceSignatureMessage(details, keys.publicKey, primary.identity.publicKey)),
  });
  const preKeySigner = o.preKeySigner ?? keys;
  const registrationId = 1 + Math.floor(Math.random() * 16000);
  const body = toBinary(
    LinkDeviceRequestSchema,
    create(LinkDeviceRequestSchema, { code, registrationId, identity, signedPreKey: await signedPreKey(preKeySigner, 1), kyberLastResortPreKey: kyberPreKey(preKeySigner, 1000) }),
  );
  return { body, keys, identity, registrationId };
}

/** Provisions and links one companion with valid signatures. */
async function linkCompanion(t: TestServer, primary: TestAccount): Promise<Companion> {
  const { code, deviceId } = await provision(t, primary);
  const { body, keys, identity, registrationId } = await linkRequest(primary, code, deviceId);
  const r = await http(t.url, 'POST', '/v1/devices/link', { body });
  assert.equal(r.status, 200, `link: ${r.status} ${r.code}`);
  const response = fromBinary(LinkDeviceResponseSchema, r.body);
  recordSecret(response.password);
  assert.equal(response.accountId, primary.accountId);
  assert.equal(response.deviceId, deviceId);
  return { accountId: response.accountId, deviceId, login: `${response.accountId}.${deviceId}`, password: response.password, keys, identity, registrationId };
}

/** Publishes a device list signed with `signer` (default: the account key) naming `companions`. */
function putList(t: TestServer, primary: TestAccount, version: number, companions: ReadonlyArray<{ deviceId: number; identity: DeviceIdentity }>, signer = primary.identity) {
  const signed = createSignedDeviceList(crypto, signer, { accountId: primary.accountId, version, timestamp: Date.now(), devices: companions.map((c) => ({ deviceId: c.deviceId, identity: c.identity })) });
  return http(t.url, 'PUT', '/v1/devices/list', { auth: primary, body: encodeSignedDeviceList(signed) });
}

async function bundles(t: TestServer, requester: DeviceCredentials, accountId: string, device: number | '*') {
  const r = await http(t.url, 'GET', `/v1/keys/${accountId}/${device}`, { auth: requester });
  return { status: r.status, code: r.code, response: r.status === 200 ? fromBinary(PreKeyResponseSchema, r.body) : undefined };
}

async function devicesOf(t: TestServer, device: DeviceCredentials) {
  const r = await http(t.url, 'GET', '/v1/devices', { auth: device });
  assert.equal(r.status, 200);
  return fromBinary(DevicesResponseSchema, r.body);
}

/** Counts rows on a separate read-only connection. */
function count(t: TestServer, query: string, ...params: unknown[]): number {
  const db = new Database(sqliteStorage(t.server.app).file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(query).get(...params) as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('linked devices', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('links a companion end to end: provisioning message once, link, list, required set, delivery', async () => {
    const alice = await register(t.url, '+15550100001', '111111');
    const bob = await register(t.url, '+15550100002', '222222');
    const linkId = randomBytes(16).toString('hex');
    // The companion polls: 404 until the primary leaves the message.
    assert.equal((await http(t.url, 'GET', `/v1/provisioning/${linkId}`)).status, 404);
    const sealed = randomBytes(300);
    recordSecret(sealed);
    const put = await http(t.url, 'PUT', `/v1/provisioning/${linkId}`, { auth: alice, body: toBinary(ProvisionEnvelopeSchema, create(ProvisionEnvelopeSchema, { body: sealed })) });
    assert.equal(put.status, 200);
    const got = await http(t.url, 'GET', `/v1/provisioning/${linkId}`);
    assert.equal(got.status, 200);
    assert.deepEqual(fromBinary(ProvisionEnvelopeSchema, got.body).body, new Uint8Array(sealed));
    assert.equal((await http(t.url, 'GET', `/v1/provisioning/${linkId}`)).status, 404, 'deleted when read');
    assert.equal((await http(t.url, 'GET', `/v1/provisioning/${linkId.toUpperCase()}`)).status, 400, 'link ids are lowercase hex');

    const laptop = await linkCompanion(t, alice);
    assert.equal(laptop.deviceId, 2);
    const listed = await devicesOf(t, laptop);
    assert.deepEqual(listed.devices.map((d) => d.deviceId), [1, 2]);
    assert.deepEqual(listed.devices[0]?.identityKey, alice.identity.publicKey.serialized);
    assert.deepEqual(listed.devices[1]?.identityKey, laptop.keys.publicKey.serialized);
    assert.deepEqual(listed.devices[1]?.identity?.accountSignature, laptop.identity.accountSignature);
    assert.equal(listed.deviceList, undefined);

    // Not listed yet: neither served nor required nor reachable.
    assert.deepEqual((await bundles(t, bob, alice.accountId, '*')).response?.devices.map((d) => d.deviceId), [1]);
    assert.equal((await bundles(t, bob, alice.accountId, 2)).status, 404);
    const toPrimary = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, { auth: bob, body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(40) }]) });
    assert.equal(toPrimary.status, 200, 'an unlisted companion is not required');
    const toUnlisted = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
      auth: bob,
      body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(40) }, { deviceId: 2, registrationId: laptop.registrationId, content: fakeCiphertext(40) }]),
    });
    assert.equal(toUnlisted.status, 409);
    assert.deepEqual(decodeBody(MismatchedDevicesSchema, toUnlisted.body).extraDevices, [2]);

    // Listed: served with its own identity key and the list; required.
    assert.equal((await putList(t, alice, 1, [laptop])).status, 200);
    const fetched = (await bundles(t, bob, alice.accountId, '*')).response;
    assert.deepEqual(fetched?.devices.map((d) => d.deviceId), [1, 2]);
    assert.deepEqual(fetched?.devices[1]?.identityKey, laptop.keys.publicKey.serialized);
    assert.deepEqual(fetched?.devices[0]?.identityKey, alice.identity.publicKey.serialized);
    assert.ok(fetched?.deviceList !== undefined && fetched.deviceList.list.length > 0);
    const missing = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, { auth: bob, body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(40) }]) });
    assert.equal(missing.status, 409);
    assert.deepEqual(decodeBody(MismatchedDevicesSchema, missing.body).missingDevices, [2]);

    const socket = await WsTestClient.connect(t.wsUrl, laptop);
    try {
      const both = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
        auth: bob,
        body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(40) }, { deviceId: 2, registrationId: laptop.registrationId, content: fakeCiphertext(41) }]),
      });
      assert.equal(both.status, 200);
      await socket.waitForEnvelopes(1);
      assert.equal(socket.received[0]?.destinationDeviceId, 2);
      // Alice's primary writing to her own account must include the laptop, and the laptop the primary.
      const own = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, { auth: alice, body: sendBody([]) });
      assert.equal(own.status, 409);
      assert.deepEqual(decodeBody(MismatchedDevicesSchema, own.body).missingDevices, [2]);
      const fromLaptop = await socket.request('PUT', `/v1/messages/${alice.accountId}`, sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(42) }]));
      assert.equal(fromLaptop.status, 200);
    } finally {
      await socket.close();
    }
  });

  it('uploads of a companion are checked against its own identity key', async () => {
    const alice = await register(t.url, '+15550100003', '333333');
    const laptop = await linkCompanion(t, alice);
    const upload = (signer: KeyPair) => http(t.url, 'PUT', '/v1/keys', { auth: laptop, body: toBinary(SetKeysRequestSchema, create(SetKeysRequestSchema, { kyberPreKeys: [kyberPreKey(signer, 5)] })) });
    assert.equal((await upload(laptop.keys)).status, 200);
    const refused = await upload(alice.identity);
    assert.equal(refused.status, 400);
    assert.equal(refused.code, 'SERVER_INVALID_KEY');
    // A link whose prekeys the account key signed (not the companion's) is refused too, and the code survives.
    const { code, deviceId } = await provision(t, alice);
    const wrong = await linkRequest(alice, code, deviceId, { preKeySigner: alice.identity });
    assert.equal((await http(t.url, 'POST', '/v1/devices/link', { body: wrong.body })).code, 'SERVER_INVALID_KEY');
    const right = await linkRequest(alice, code, deviceId);
    assert.equal((await http(t.url, 'POST', '/v1/devices/link', { body: right.body })).status, 200);
  });

  it('refuses forged account and device signatures and a wrong device id, without burning the code', async () => {
    const alice = await register(t.url, '+15550100004', '444444');
    const mallory = await KeyPair.generate(crypto);
    const { code, deviceId } = await provision(t, alice);
    for (const [what, options] of [
      ['account signature by another key', { accountSigner: mallory }],
      ['device signature by another key', { deviceSigner: mallory }],
      ['details naming another device id', { detailsDeviceId: deviceId + 1 }],
    ] as const) {
      const { body } = await linkRequest(alice, code, deviceId, options);
      const r = await http(t.url, 'POST', '/v1/devices/link', { body });
      assert.equal(r.status, 403, what);
      assert.equal(r.code, 'SERVER_FORBIDDEN', what);
    }
    // A self-made identity (the companion signs for the account) is refused the same way.
    const keys = await KeyPair.generate(crypto);
    const details = encodeDeviceIdentityDetails({ accountId: alice.accountId, deviceId, timestamp: Date.now() });
    const selfMade = create(LinkDeviceRequestSchema, {
      code,
      registrationId: 7,
      identity: create(DeviceIdentitySchema, {
        details,
        identityKey: keys.publicKey.serialized,
        accountSignature: keys.sign(crypto, accountSignatureMessage(details, keys.publicKey)),
        deviceSignature: keys.sign(crypto, deviceSignatureMessage(details, keys.publicKey, alice.identity.publicKey)),
      }),
      signedPreKey: await signedPreKey(keys, 1),
      kyberLastResortPreKey: kyberPreKey(keys, 1000),
    });
    assert.equal((await http(t.url, 'POST', '/v1/devices/link', { body: toBinary(LinkDeviceRequestSchema, selfMade) })).status, 403);
    assert.equal(count(t, 'SELECT COUNT(*) AS n FROM devices WHERE account_id = ?', alice.accountId), 1, 'no device was created');
    const { body } = await linkRequest(alice, code, deviceId);
    assert.equal((await http(t.url, 'POST', '/v1/devices/link', { body })).status, 200, 'the code still works after refused attempts');
  });

  it('codes work once, even concurrently, and expire after 10 minutes', async () => {
    const alice = await register(t.url, '+15550100005', '555555');
    const first = await provision(t, alice);
    const [a, b] = await Promise.all([linkRequest(alice, first.code, first.deviceId), linkRequest(alice, first.code, first.deviceId)]);
    const results = await Promise.all([http(t.url, 'POST', '/v1/devices/link', { body: a.body }), http(t.url, 'POST', '/v1/devices/link', { body: b.body })]);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 403]);
    assert.equal(results.find((r) => r.status === 403)?.code, 'SERVER_INVALID_CODE');
    const again = await linkRequest(alice, first.code, first.deviceId);
    assert.equal((await http(t.url, 'POST', '/v1/devices/link', { body: again.body })).code, 'SERVER_INVALID_CODE', 'used');

    const late = await provision(t, alice);
    assert.equal(late.deviceId, 3);
    t.clock.advance(10 * MINUTE);
    const expired = await linkRequest(alice, late.code, late.deviceId);
    assert.equal((await http(t.url, 'POST', '/v1/devices/link', { body: expired.body })).code, 'SERVER_INVALID_CODE', 'expired');
    // The expired reservation frees its device id.
    assert.equal((await provision(t, alice)).deviceId, 3);
    const bogus = await linkRequest(alice, 'A'.repeat(32), 3);
    assert.equal((await http(t.url, 'POST', '/v1/devices/link', { body: bogus.body })).code, 'SERVER_INVALID_CODE');
  });

  it('reserves for the primary only, and at most 4 companions', async () => {
    const alice = await register(t.url, '+15550100006', '666666');
    const laptop = await linkCompanion(t, alice);
    for (const [verb, route, body] of [
      ['POST', '/v1/devices/provisioning', undefined],
      ['PUT', `/v1/provisioning/${randomBytes(16).toString('hex')}`, toBinary(ProvisionEnvelopeSchema, create(ProvisionEnvelopeSchema, { body: new Uint8Array(10) }))],
      ['PUT', '/v1/devices/list', encodeSignedDeviceList(createSignedDeviceList(crypto, alice.identity, { accountId: alice.accountId, version: 1, timestamp: 1, devices: [] }))],
    ] as const) {
      const r = await http(t.url, verb, route, { auth: laptop, body });
      assert.equal(r.status, 403, `${verb} ${route}`);
      assert.equal(r.code, 'SERVER_FORBIDDEN');
    }
    const ids = [laptop.deviceId];
    for (let i = 0; i < 3; i++) ids.push((await provision(t, alice)).deviceId);
    assert.deepEqual(ids, [2, 3, 4, 5]);
    const fifth = await http(t.url, 'POST', '/v1/devices/provisioning', { auth: alice });
    assert.equal(fifth.status, 409);
    assert.equal(fifth.code, 'SERVER_TOO_MANY_DEVICES');
  });

  it('device lists: signed by the account key, versions increase, named devices exist with that key', async () => {
    const alice = await register(t.url, '+15550100007', '777777');
    const laptop = await linkCompanion(t, alice);
    const bob = await register(t.url, '+15550100008', '888888');
    const mallory = await KeyPair.generate(crypto);
    const forged = await putList(t, alice, 1, [laptop], mallory);
    assert.equal(forged.status, 400, 'signed by another key');
    assert.equal((await putList(t, alice, 0, [laptop])).status, 400, 'version 0');
    assert.equal((await http(t.url, 'PUT', '/v1/devices/list', { auth: alice, body: new Uint8Array([1, 2, 3]) })).status, 400);
    // A device that does not exist, and the laptop under another key (validly signed for device 2).
    const ghostKeys = await KeyPair.generate(crypto);
    const ghostDetails = encodeDeviceIdentityDetails({ accountId: alice.accountId, deviceId: 3, timestamp: 1 });
    const ghost = await createDeviceIdentity(crypto, ghostKeys, alice.identity.publicKey, ghostDetails, createAccountSignature(crypto, alice.identity, ghostDetails, ghostKeys.publicKey), { accountId: alice.accountId, deviceId: 3 });
    assert.equal((await putList(t, alice, 1, [laptop, { deviceId: 3, identity: ghost }])).code, 'SERVER_CONFLICT', 'non-existent device');
    const otherDetails = encodeDeviceIdentityDetails({ accountId: alice.accountId, deviceId: 2, timestamp: 1 });
    const otherKey = await createDeviceIdentity(crypto, ghostKeys, alice.identity.publicKey, otherDetails, createAccountSignature(crypto, alice.identity, otherDetails, ghostKeys.publicKey), { accountId: alice.accountId, deviceId: 2 });
    assert.equal((await putList(t, alice, 1, [{ deviceId: 2, identity: otherKey }])).code, 'SERVER_CONFLICT', 'wrong key');
    assert.equal((await bundles(t, bob, alice.accountId, 2)).status, 404, 'refused lists changed nothing');

    assert.equal((await putList(t, alice, 5, [laptop])).status, 200);
    assert.equal((await putList(t, alice, 5, [])).code, 'SERVER_CONFLICT', 'same version');
    assert.equal((await putList(t, alice, 4, [])).code, 'SERVER_CONFLICT', 'older version');
    assert.equal((await bundles(t, bob, alice.accountId, 2)).status, 200, 'still listed');
    assert.equal((await putList(t, alice, 6, [])).status, 200);
    assert.equal((await bundles(t, bob, alice.accountId, 2)).status, 404, 'unlisted again');
    const list = (await devicesOf(t, alice)).deviceList;
    assert.ok(list !== undefined);
  });

  it('groups: the companion is a recipient once listed; updates reach every device', async () => {
    const alice = await register(t.url, '+15550100009', '999999');
    const bob = await register(t.url, '+15550100001', '111111');
    const laptop = await linkCompanion(t, alice);
    const groupId = randomBytes(16).toString('hex');
    const created = await http(t.url, 'PUT', `/v1/groups/${groupId}`, { auth: bob, body: toBinary(CreateGroupRequestSchema, create(CreateGroupRequestSchema, { memberAccountIds: [alice.accountId], attributes: new Uint8Array(4) })) });
    assert.equal(created.status, 200);
    const recipients = async () => decodeBody(GroupDevicesSchema, (await http(t.url, 'GET', `/v1/groups/${groupId}/devices`, { auth: bob })).body).devices.map((d) => `${d.accountId === alice.accountId ? 'alice' : 'bob'}.${d.deviceId}`);
    assert.deepEqual(await recipients(), ['alice.1']);
    assert.equal(count(t, 'SELECT COUNT(*) AS n FROM messages m JOIN devices d ON d.ref = m.device_ref WHERE d.account_id = ? AND d.device_id = 2 AND m.type = 9', alice.accountId), 1, 'the group update reached the unlisted laptop');
    assert.equal((await putList(t, alice, 1, [laptop])).status, 200);
    assert.deepEqual(await recipients(), ['alice.1', 'alice.2']);
  });
});

describe('removing devices and re-registering', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('the primary removes a companion: keys, queue and socket go, its credentials stop working', async () => {
    const alice = await register(t.url, '+15550100001', '111111');
    const bob = await register(t.url, '+15550100002', '222222');
    const laptop = await linkCompanion(t, alice);
    const phone = await linkCompanion(t, alice);
    assert.equal((await putList(t, alice, 1, [laptop, phone])).status, 200);
    const queued = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
      auth: bob,
      body: sendBody([
        { deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(40) },
        { deviceId: 2, registrationId: laptop.registrationId, content: fakeCiphertext(40) },
        { deviceId: 3, registrationId: phone.registrationId, content: fakeCiphertext(40) },
      ]),
    });
    assert.equal(queued.status, 200);
    const socket = await WsTestClient.connect(t.wsUrl, laptop, { ack: () => 'hold' });
    await socket.waitForEnvelopes(1);
    assert.equal(count(t, 'SELECT COUNT(*) AS n FROM messages m JOIN devices d ON d.ref = m.device_ref WHERE d.account_id = ? AND d.device_id = 2', alice.accountId), 1);

    // A companion may remove neither the primary nor another companion.
    assert.equal((await http(t.url, 'DELETE', '/v1/devices/1', { auth: phone })).status, 400);
    assert.equal((await http(t.url, 'DELETE', '/v1/devices/2', { auth: phone })).status, 403);
    assert.equal((await http(t.url, 'DELETE', '/v1/devices/1', { auth: alice })).status, 400, 'the primary cannot remove itself');
    assert.equal((await http(t.url, 'DELETE', '/v1/devices/7', { auth: alice })).status, 404);

    assert.equal((await http(t.url, 'DELETE', '/v1/devices/2', { auth: alice })).status, 200);
    assert.equal((await socket.closed).code, 4401, 'its socket is closed (credentials revoked)');
    assert.equal(count(t, 'SELECT COUNT(*) AS n FROM devices WHERE account_id = ? AND device_id = 2', alice.accountId), 0);
    assert.equal(count(t, 'SELECT COUNT(*) AS n FROM messages m LEFT JOIN devices d ON d.ref = m.device_ref WHERE d.ref IS NULL'), 0, 'its queue is gone');
    assert.equal(count(t, 'SELECT COUNT(*) AS n FROM signed_pre_keys s LEFT JOIN devices d ON d.ref = s.device_ref WHERE d.ref IS NULL'), 0, 'its keys are gone');
    assert.equal((await http(t.url, 'GET', '/v1/devices', { auth: laptop })).status, 401);
    await assert.rejects(WsTestClient.connect(t.wsUrl, laptop), (err: { status?: number }) => err.status === 401);
    // No longer required (the list still names it, but it does not exist), and not served.
    const send = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
      auth: bob,
      body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(40) }, { deviceId: 3, registrationId: phone.registrationId, content: fakeCiphertext(40) }]),
    });
    assert.equal(send.status, 200);
    assert.deepEqual((await bundles(t, bob, alice.accountId, '*')).response?.devices.map((d) => d.deviceId), [1, 3]);

    // A new companion may take the freed id; it is not listed until the primary says so.
    const tablet = await linkCompanion(t, alice);
    assert.equal(tablet.deviceId, 2);
    assert.equal((await bundles(t, bob, alice.accountId, 2)).status, 404);
  });

  it('a companion logs itself out', async () => {
    const alice = await register(t.url, '+15550100003', '333333');
    const laptop = await linkCompanion(t, alice);
    const socket = await WsTestClient.connect(t.wsUrl, laptop);
    const r = await socket.request('DELETE', `/v1/devices/${laptop.deviceId}`);
    assert.equal(r.status, 200, 'answered before the socket closes');
    assert.equal((await socket.closed).code, 4401);
    assert.equal((await http(t.url, 'GET', '/v1/devices', { auth: laptop })).status, 401);
    assert.deepEqual((await devicesOf(t, alice)).devices.map((d) => d.deviceId), [1]);
  });

  it('re-registering the number removes every companion, the codes and the device list', async () => {
    const alice = await register(t.url, '+15550100004', '444444');
    const laptop = await linkCompanion(t, alice);
    assert.equal((await putList(t, alice, 1, [laptop])).status, 200);
    const pending = await provision(t, alice);
    const socket = await WsTestClient.connect(t.wsUrl, laptop);
    const again = await register(t.url, '+15550100004', '444444');
    assert.equal(again.accountId, alice.accountId);
    assert.equal((await socket.closed).code, 4401);
    assert.equal((await http(t.url, 'GET', '/v1/devices', { auth: laptop })).status, 401);
    const devices = await devicesOf(t, again);
    assert.deepEqual(devices.devices.map((d) => d.deviceId), [1]);
    assert.equal(devices.deviceList, undefined);
    assert.equal(count(t, 'SELECT COUNT(*) AS n FROM provisioning_codes WHERE account_id = ?', alice.accountId), 0);
    const stale = await linkRequest(again, pending.code, pending.deviceId);
    assert.equal((await http(t.url, 'POST', '/v1/devices/link', { body: stale.body })).code, 'SERVER_INVALID_CODE');
    // The new identity starts a new list from any version.
    const next = await linkCompanion(t, again);
    assert.equal((await putList(t, again, 1, [next])).status, 200);
  });
});

describe('blobs', () => {
  let t: TestServer;
  let alice: TestAccount;
  const blobsDir = () => path.join(t.dataDir, 'blobs');
  before(async () => {
    t = await startTestServer({ limits: { maxBlobBytes: 2 * 1024 * 1024, blobQuotaBytes: 3 * 1024 * 1024 } });
    alice = await register(t.url, '+15550100001', '111111');
  });
  after(() => t.close());

  const idOf = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
  const put = (bytes: Uint8Array, id = idOf(bytes), auth: DeviceCredentials | undefined = alice) => http(t.url, 'PUT', `/v1/blobs/${id}`, { auth, body: bytes });

  it('round-trips over HTTP (1.5 MiB, above the 1 MiB request limit) and over the WebSocket', async () => {
    const bytes = randomBytes(1536 * 1024);
    const r = await put(bytes);
    assert.equal(r.status, 200, r.code);
    const response = fromBinary(PutBlobResponseSchema, r.body);
    assert.equal(response.blobId, idOf(bytes));
    assert.equal(response.size, BigInt(bytes.length));
    const got = await http(t.url, 'GET', `/v1/blobs/${idOf(bytes)}`, { auth: alice });
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(got.body).equals(bytes));
    assert.deepEqual(readdirSync(path.join(blobsDir(), 'tmp')), [], 'no temporary file left');
    const small = randomBytes(1000);
    assert.equal((await put(small)).status, 200);
    const socket = await WsTestClient.connect(t.wsUrl, alice);
    try {
      const overWs = await socket.request('GET', `/v1/blobs/${idOf(small)}`);
      assert.equal(overWs.status, 200);
      assert.ok(Buffer.from(overWs.body).equals(small));
      assert.equal((await socket.request('GET', `/v1/blobs/${idOf(bytes)}`)).status, 413, 'larger than a frame: HTTP only');
    } finally {
      await socket.close();
    }
  });

  it('stores an existing blob once, refuses a wrong hash, an oversized body, and unauthenticated requests', async () => {
    const bytes = randomBytes(5000);
    assert.equal((await put(bytes)).status, 200);
    const files = readdirSync(blobsDir()).length;
    assert.equal((await put(bytes)).status, 200);
    assert.equal(readdirSync(blobsDir()).length, files, 'not stored twice');
    const other = randomBytes(5000);
    const mismatch = await put(other, idOf(bytes));
    assert.equal(mismatch.status, 400, 'an existing id with other bytes');
    const fresh = await put(other, idOf(randomBytes(10)));
    assert.equal(fresh.status, 400);
    assert.equal(fresh.code, 'SERVER_BAD_REQUEST');
    assert.equal(existsSync(path.join(blobsDir(), idOf(other))), false);
    assert.equal((await put(other, 'not-a-hash')).status, 400);
    const big = randomBytes(2 * 1024 * 1024 + 1);
    const tooBig = await put(big);
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.code, 'SERVER_PAYLOAD_TOO_LARGE');
    const anonymous = randomBytes(100);
    assert.equal((await http(t.url, 'PUT', `/v1/blobs/${idOf(anonymous)}`, { body: anonymous })).status, 401);
    assert.equal(existsSync(path.join(blobsDir(), idOf(anonymous))), false);
    assert.equal((await http(t.url, 'GET', `/v1/blobs/${idOf(bytes)}`)).status, 401);
    assert.equal((await http(t.url, 'GET', `/v1/blobs/${idOf(randomBytes(3))}`, { auth: alice })).status, 404);
    assert.deepEqual(readdirSync(path.join(blobsDir(), 'tmp')), []);
  });

  it('an upload cut off mid-body leaves nothing behind and is no server error', async () => {
    const bytes = randomBytes(512 * 1024);
    const id = idOf(bytes);
    await new Promise<void>((resolve) => {
      const req = request(`${t.url}/v1/blobs/${id}`, { method: 'PUT', headers: { authorization: basic(alice), 'content-length': bytes.length } });
      req.on('error', () => resolve());
      req.write(bytes.subarray(0, 128 * 1024), () => setImmediate(() => req.destroy()));
      req.on('close', () => resolve());
    });
    // The server notices the closed connection asynchronously: wait for the temporary file to go.
    const tmp = path.join(blobsDir(), 'tmp');
    for (let i = 0; i < 200 && readdirSync(tmp).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(readdirSync(tmp), []);
    assert.equal(existsSync(path.join(blobsDir(), id)), false);
    assert.equal((await put(bytes)).status, 200, 'the same blob uploads afterwards');
  });

  it('holds each account to its quota, and expires blobs after 30 days', async () => {
    const bob = await register(t.url, '+15550100002', '222222');
    const first = randomBytes(1800 * 1024);
    assert.equal((await put(first, undefined, bob)).status, 200);
    const second = randomBytes(1800 * 1024);
    const over = await put(second, undefined, bob);
    assert.equal(over.status, 507);
    assert.equal(over.code, 'SERVER_QUOTA_EXCEEDED');
    assert.equal(existsSync(path.join(blobsDir(), idOf(second))), false);
    t.clock.advance(30 * 24 * 60 * MINUTE + 1);
    assert.equal((await http(t.url, 'GET', `/v1/blobs/${idOf(first)}`, { auth: bob })).status, 404, 'expired blobs are not served');
    const swept = await t.server.app.sweep();
    assert.ok(swept.blobs >= 1);
    assert.equal(existsSync(path.join(blobsDir(), idOf(first))), false, 'the file is deleted');
    assert.equal((await put(second, undefined, bob)).status, 200, 'the quota is free again');
  });
});
