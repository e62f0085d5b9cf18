// What the server keeps: after a real end-to-end-encrypted conversation (src/protocol sessions through
// the server: bundles fetched from its key directory, envelopes through its queues, online and offline),
// neither its database files (main file, WAL, shared memory) nor its log contain any plaintext, in text,
// base64 or hex, and the envelopes it still holds carry exactly the ciphertext bytes that were sent and
// nothing derived from them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import { PreKeyResponseSchema, PreKeySchema, RegisterRequestSchema, RegisterResponseSchema, SetKeysRequestSchema } from '../../src/protocol/gen/service_pb.ts';
import { http, sendBody, WsTestClient, type TestAccount } from '../support/server-client.ts';
import { dataFolderBytes, recordSecret, startTestServer, type TestServer } from '../support/server-harness.ts';
import { crypto } from '../support/server-keys.ts';
import { ParleyPeer, type BundleBytes } from '../support/parley-peer.ts';
import { sqliteStorage } from '../../src/server/app.ts';

const ROUNDS = 12;

/** Registers a protocol peer with its own keys, and uploads a one-time prekey. */
async function registerPeer(t: TestServer, peer: ParleyPeer, number: string, code: string): Promise<TestAccount> {
  const bundle = await peer.bundle();
  const body = toBinary(
    RegisterRequestSchema,
    create(RegisterRequestSchema, {
      number,
      code,
      registrationId: peer.registrationId,
      identityKey: bundle.identityKey,
      signedPreKey: { id: bundle.signedPreKeyId, publicKey: bundle.signedPreKey, signature: bundle.signedPreKeySignature },
      kyberLastResortPreKey: { id: bundle.kyberPreKeyId, publicKey: bundle.kyberPreKey, signature: bundle.kyberPreKeySignature },
    }),
  );
  const result = await http(t.url, 'POST', '/v1/accounts/register', { body });
  assert.equal(result.status, 200);
  const r = fromBinary(RegisterResponseSchema, result.body);
  recordSecret(r.password);
  const account = { accountId: r.accountId, deviceId: 1, login: `${r.accountId}.1`, password: r.password, number, identity: peer.identity, registrationId: peer.registrationId, reregistered: false };
  const keys = create(SetKeysRequestSchema, { preKeys: [create(PreKeySchema, { id: bundle.preKeyId ?? 0, publicKey: bundle.preKey ?? new Uint8Array() })] });
  assert.equal((await http(t.url, 'PUT', '/v1/keys', { auth: account, body: toBinary(SetKeysRequestSchema, keys) })).status, 200);
  return account;
}

/** Fetches `target`'s bundle from the server's key directory, in the helper's byte form. */
async function fetchBundle(t: TestServer, asker: TestAccount, target: TestAccount): Promise<BundleBytes> {
  const result = await http(t.url, 'GET', `/v1/keys/${target.accountId}/1`, { auth: asker });
  const r = fromBinary(PreKeyResponseSchema, result.body);
  const d = r.devices[0];
  assert.ok(d?.signedPreKey !== undefined && d.kyberPreKey !== undefined);
  return {
    registrationId: d.registrationId,
    deviceId: d.deviceId,
    preKeyId: d.preKey?.id,
    preKey: d.preKey?.publicKey,
    signedPreKeyId: d.signedPreKey.id,
    signedPreKey: d.signedPreKey.publicKey,
    signedPreKeySignature: d.signedPreKey.signature,
    kyberPreKeyId: d.kyberPreKey.id,
    kyberPreKey: d.kyberPreKey.publicKey,
    kyberPreKeySignature: d.kyberPreKey.signature,
    identityKey: r.identityKey,
  };
}

describe('server privacy', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('stores and logs only ciphertext during a real encrypted conversation', { timeout: 60_000 }, async () => {
    const alicePeer = await ParleyPeer.create(crypto, 'alice');
    const bobPeer = await ParleyPeer.create(crypto, 'bob');
    const alice = await registerPeer(t, alicePeer, '+15550100001', '111111');
    const bob = await registerPeer(t, bobPeer, '+15550100002', '222222');
    await bobPeer.processBundle(alice.accountId, await fetchBundle(t, bob, alice));

    const canary = Buffer.from(crypto.randomBytes(6)).toString('hex');
    const plaintexts: string[] = [];
    const sent: Array<{ to: TestAccount; ciphertext: Uint8Array }> = [];
    const send = async (fromPeer: ParleyPeer, from: TestAccount, to: TestAccount, text: string) => {
      plaintexts.push(text);
      const wire = await fromPeer.encrypt(to.accountId, new TextEncoder().encode(text));
      sent.push({ to, ciphertext: wire.body });
      const result = await http(t.url, 'PUT', `/v1/messages/${to.accountId}`, {
        auth: from,
        body: sendBody([{ deviceId: 1, registrationId: to.registrationId, content: wire.body, type: wire.type }]),
      });
      assert.equal(result.status, 200);
    };

    // Bob writes while Alice is offline; she comes online, reads and answers; the last messages stay queued.
    const aliceWs = await WsTestClient.connect(t.wsUrl, alice, { ack: () => 'hold' });
    await aliceWs.close();
    for (let i = 0; i < ROUNDS; i++) await send(bobPeer, bob, alice, `canary ${canary} bob->alice ${i}: the meeting is at noon`);
    const aliceOnline = await WsTestClient.connect(t.wsUrl, alice);
    await aliceOnline.waitForEnvelopes(ROUNDS);
    for (const [i, envelope] of aliceOnline.received.entries()) {
      const text = new TextDecoder().decode(await alicePeer.decrypt(bob.accountId, { type: envelope.type, body: envelope.content }));
      assert.equal(text, plaintexts[i], 'the relayed ciphertext decrypts to what was sent');
    }
    await aliceOnline.close();
    const bobOnline = await WsTestClient.connect(t.wsUrl, bob);
    for (let i = 0; i < ROUNDS; i++) await send(alicePeer, alice, bob, `canary ${canary} alice->bob ${i}: bring the documents`);
    await bobOnline.waitForEnvelopes(ROUNDS);
    await bobOnline.close();
    const stillQueued = ROUNDS / 2;
    for (let i = 0; i < stillQueued; i++) await send(bobPeer, bob, alice, `canary ${canary} queued ${i}: not yet read`);
    await sqliteStorage(t.server.app).writer.drain();

    // 1. Nothing on disk or in the log contains a plaintext, or its base64 or hex.
    const disk = dataFolderBytes(t.dataDir);
    const log = t.log();
    for (const text of [canary, ...plaintexts]) {
      const b = Buffer.from(text);
      for (const form of [b, Buffer.from(b.toString('base64')), Buffer.from(b.toString('hex'))]) {
        assert.equal(disk.indexOf(form), -1, 'plaintext found in the database files');
        assert.equal(log.indexOf(form.toString()), -1, 'plaintext found in the log');
      }
    }

    // 2. What is still queued is exactly the ciphertext that was sent (1:1 envelopes keep it inline: no
    // payload, no group), and the other columns hold only ids, types and times.
    const db = new Database(sqliteStorage(t.server.app).file, { readonly: true, fileMustExist: true });
    const rows = db.prepare('SELECT * FROM messages ORDER BY seq').all() as Array<Record<string, unknown>>;
    db.close();
    const expected = sent.slice(-stillQueued);
    assert.equal(rows.length, stillQueued);
    rows.forEach((row, i) => {
      assert.deepEqual(Buffer.from(row.content as Uint8Array), Buffer.from((expected[i] as { ciphertext: Uint8Array }).ciphertext));
      assert.deepEqual(Object.keys(row).sort(), ['content', 'destination_device_id', 'device_ref', 'group_id', 'guid', 'payload_id', 'seq', 'server_timestamp', 'source_account_id', 'source_device_id', 'timestamp', 'type']);
      assert.deepEqual([row.payload_id, row.group_id], [null, null]);
      assert.equal((row.guid as Uint8Array).length, 16);
      assert.equal(row.source_account_id, bob.accountId);
    });
  });
});
