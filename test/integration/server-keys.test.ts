// The key directory: uploads with signature checks (all or nothing), counts, bundle fetches per device
// and for all devices, one-time keys handed out once even under 50 concurrent fetches, the Kyber
// last-resort fallback, limits, and the fetch rate limit.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { KeyStatusResponseSchema, PreKeyResponseSchema, SetKeysRequestSchema, type PreKeyResponse } from '../../src/protocol/gen/service_pb.ts';
import { decodeBody, http, register, WsTestClient, type TestAccount } from '../support/server-client.ts';
import { startTestServer, type TestServer } from '../support/server-harness.ts';
import { kyberPreKey, newIdentity, preKeys, signedPreKey } from '../support/server-keys.ts';

type SetKeys = Parameters<typeof create<typeof SetKeysRequestSchema>>[1];

describe('server key directory', () => {
  let t: TestServer;
  let alice: TestAccount;
  let bob: TestAccount;

  const upload = (who: TestAccount, keys: SetKeys) =>
    http(t.url, 'PUT', '/v1/keys', { auth: who, body: toBinary(SetKeysRequestSchema, create(SetKeysRequestSchema, keys)) });
  const status = async (who: TestAccount) => decodeBody(KeyStatusResponseSchema, (await http(t.url, 'GET', '/v1/keys/status', { auth: who })).body);
  const fetchBundle = async (who: TestAccount, path: string): Promise<PreKeyResponse> => {
    const result = await http(t.url, 'GET', path, { auth: who });
    assert.equal(result.status, 200, `${path}: ${result.code}`);
    return decodeBody(PreKeyResponseSchema, result.body);
  };

  before(async () => {
    t = await startTestServer({ limits: { maxKeysPerUpload: 20, maxStoredKeys: 30 } });
    alice = await register(t.url, '+15550100001', '111111');
    bob = await register(t.url, '+15550100002', '222222');
  });
  after(() => t.close());

  it('stores uploaded keys and reports counts and the signed prekey upload time', async () => {
    const before = await status(alice);
    assert.deepEqual([before.preKeyCount, before.kyberPreKeyCount, before.signedPreKeyUploadedAt], [0, 0, BigInt(t.clock.now())]);
    t.clock.advance(5000);
    const kyber = Array.from({ length: 3 }, (_, i) => kyberPreKey(alice.identity, 100 + i));
    const result = await upload(alice, { preKeys: await preKeys(1, 5), kyberPreKeys: kyber, signedPreKey: await signedPreKey(alice.identity, 2) });
    assert.equal(result.status, 200);
    const after = await status(alice);
    assert.deepEqual([after.preKeyCount, after.kyberPreKeyCount, after.signedPreKeyUploadedAt], [5, 3, BigInt(t.clock.now())]);
  });

  it('hands out the lowest one-time keys, once each, then falls back to the Kyber last-resort key', async () => {
    const seenPre: number[] = [];
    const seenKyber: number[] = [];
    for (let i = 0; i < 6; i++) {
      const bundle = await fetchBundle(bob, `/v1/keys/${alice.accountId}/1`);
      assert.deepEqual(Buffer.from(bundle.identityKey), Buffer.from(alice.identity.publicKey.serialized));
      const device = bundle.devices[0];
      assert.ok(device !== undefined);
      assert.equal(device.deviceId, 1);
      assert.equal(device.registrationId, alice.registrationId);
      assert.equal(device.signedPreKey?.id, 2);
      if (device.preKey !== undefined) seenPre.push(device.preKey.id);
      seenKyber.push(device.kyberPreKey?.id ?? -1);
    }
    assert.deepEqual(seenPre, [1, 2, 3, 4, 5], 'each EC one-time key once, lowest first, then none');
    assert.deepEqual(seenKyber, [100, 101, 102, 1000, 1000, 1000], 'one-time Kyber keys, then the last-resort key');
    const after = await status(alice);
    assert.deepEqual([after.preKeyCount, after.kyberPreKeyCount], [0, 0]);
  });

  it('rejects an upload with any bad signature or key, storing nothing of it', async () => {
    const stranger = await newIdentity();
    const cases: Array<[string, SetKeys]> = [
      ['Kyber key signed by another identity', { preKeys: await preKeys(10, 2), kyberPreKeys: [kyberPreKey(alice.identity, 200), kyberPreKey(stranger, 201)] }],
      ['signed prekey signed by another identity', { preKeys: await preKeys(10, 2), signedPreKey: await signedPreKey(stranger, 3) }],
      ['last-resort key signed by another identity', { kyberLastResortPreKey: kyberPreKey(stranger, 2000) }],
      ['EC key of the wrong length', { preKeys: [{ id: 9, publicKey: new Uint8Array(32) }] }],
      ['Kyber key of the wrong type', { kyberPreKeys: [{ ...kyberPreKey(alice.identity, 300), publicKey: new Uint8Array(1569).fill(5) }] }],
    ];
    for (const [label, keys] of cases) {
      const result = await upload(alice, keys);
      assert.deepEqual([result.status, result.code], [400, 'SERVER_INVALID_KEY'], label);
    }
    const after = await status(alice);
    assert.deepEqual([after.preKeyCount, after.kyberPreKeyCount], [0, 0]);
    const bundle = await fetchBundle(bob, `/v1/keys/${alice.accountId}/1`);
    assert.equal(bundle.devices[0]?.signedPreKey?.id, 2, 'the signed prekey was not replaced');
    assert.equal(bundle.devices[0]?.kyberPreKey?.id, 1000, 'the last-resort key was not replaced');
  });

  it('enforces the per-upload and stored limits', async () => {
    const tooMany = await upload(alice, { preKeys: await preKeys(1, 21) });
    assert.deepEqual([tooMany.status, tooMany.code], [400, 'SERVER_TOO_MANY_KEYS']);
    assert.equal((await upload(alice, { preKeys: await preKeys(1, 20) })).status, 200);
    const overflow = await upload(alice, { preKeys: await preKeys(21, 11) });
    assert.deepEqual([overflow.status, overflow.code], [400, 'SERVER_TOO_MANY_KEYS']);
    assert.equal((await status(alice)).preKeyCount, 20, 'the refused upload stored nothing');
    assert.equal((await upload(alice, { preKeys: await preKeys(15, 10) })).status, 200, 're-uploading ids replaces them');
    assert.equal((await status(alice)).preKeyCount, 24);
  });

  it('answers 404 for unknown accounts and devices, 400 for malformed ids', async () => {
    const unknown = await http(t.url, 'GET', '/v1/keys/00000000-0000-4000-8000-000000000000/1', { auth: bob });
    assert.deepEqual([unknown.status, unknown.code], [404, 'SERVER_NOT_FOUND']);
    const noDevice = await http(t.url, 'GET', `/v1/keys/${alice.accountId}/2`, { auth: bob });
    assert.deepEqual([noDevice.status, noDevice.code], [404, 'SERVER_NOT_FOUND']);
    for (const path of [`/v1/keys/not-a-uuid/1`, `/v1/keys/${alice.accountId}/0`, `/v1/keys/${alice.accountId}/x`, `/v1/keys/${alice.accountId}/%ZZ`]) {
      const result = await http(t.url, 'GET', path, { auth: bob });
      assert.deepEqual([result.status, result.code], [400, 'SERVER_BAD_REQUEST'], path);
    }
    const all = await fetchBundle(bob, `/v1/keys/${alice.accountId}/*`);
    assert.deepEqual(all.devices.map((d) => d.deviceId), [1]);
  });

  it('never hands out one one-time key twice under 50 concurrent fetches of 20 keys', async () => {
    const carol = await register(t.url, '+15550100003', '333333');
    const kyber = Array.from({ length: 20 }, (_, i) => kyberPreKey(carol.identity, 500 + i));
    assert.equal((await upload(carol, { preKeys: await preKeys(1, 20), kyberPreKeys: kyber })).status, 200);
    // Half over HTTP, half as WebSocket requests on two sockets, all in flight at once.
    const sockets = [await WsTestClient.connect(t.wsUrl, alice), await WsTestClient.connect(t.wsUrl, bob)];
    const path = `/v1/keys/${carol.accountId}/1`;
    const fetches = Array.from({ length: 50 }, async (_, i) => {
      if (i % 2 === 0) return fetchBundle(i % 4 === 0 ? alice : bob, path);
      const response = await (sockets[i % 4 === 1 ? 0 : 1] as WsTestClient).request('GET', path);
      assert.equal(response.status, 200);
      return decodeBody(PreKeyResponseSchema, response.body);
    });
    const bundles = await Promise.all(fetches);
    const pre = bundles.flatMap((b) => (b.devices[0]?.preKey === undefined ? [] : [b.devices[0].preKey.id]));
    const oneTimeKyber = bundles.map((b) => b.devices[0]?.kyberPreKey?.id ?? -1).filter((id) => id !== 1000);
    assert.equal(pre.length, 20, 'every EC one-time key was handed out');
    assert.equal(new Set(pre).size, 20, 'no EC one-time key twice');
    assert.equal(oneTimeKyber.length, 20);
    assert.equal(new Set(oneTimeKyber).size, 20, 'no Kyber one-time key twice');
    assert.equal(bundles.filter((b) => b.devices[0]?.kyberPreKey?.id === 1000).length, 30, 'the rest got the last-resort key');
    for (const s of sockets) await s.close();
  });
});

describe('server key directory: fetch rate limit', () => {
  let t: TestServer;
  after(() => t.close());

  it('limits bundle fetches per account', async () => {
    t = await startTestServer({ rateLimits: { keyFetchPerAccount: { capacity: 3, windowMs: 60_000 } } });
    const alice = await register(t.url, '+15550100001', '111111');
    const bob = await register(t.url, '+15550100002', '222222');
    for (let i = 0; i < 3; i++) assert.equal((await http(t.url, 'GET', `/v1/keys/${alice.accountId}/1`, { auth: bob })).status, 200);
    const limited = await http(t.url, 'GET', `/v1/keys/${alice.accountId}/1`, { auth: bob });
    assert.deepEqual([limited.status, limited.code], [429, 'SERVER_RATE_LIMITED']);
    assert.ok(limited.retryAfter >= 1);
  });
});
