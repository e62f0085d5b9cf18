// Presence: online while a socket is connected, last seen when the last socket closes, and the
// account's visibility setting (everyone, nobody, an allow-list).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { PresenceResponseSchema, PresenceSettings_Visibility, PresenceSettingsSchema, type PresenceResponse } from '../../src/protocol/gen/service_pb.ts';
import { decodeBody, http, register, WsTestClient, type TestAccount } from '../support/server-client.ts';
import { startTestServer, type TestServer } from '../support/server-harness.ts';

describe('server presence', () => {
  let t: TestServer;
  let alice: TestAccount;
  let bob: TestAccount;
  let carol: TestAccount;

  const presenceOf = async (target: TestAccount, asker: TestAccount): Promise<PresenceResponse> => {
    const result = await http(t.url, 'GET', `/v1/presence/${target.accountId}`, { auth: asker });
    assert.equal(result.status, 200, result.code);
    return decodeBody(PresenceResponseSchema, result.body);
  };
  const setVisibility = (who: TestAccount, visibility: number, allowed: string[] = []) =>
    http(t.url, 'PUT', '/v1/presence/settings', {
      auth: who,
      body: toBinary(PresenceSettingsSchema, create(PresenceSettingsSchema, { visibility, allowedAccountIds: allowed })),
    });

  before(async () => {
    t = await startTestServer();
    alice = await register(t.url, '+15550100001', '111111');
    bob = await register(t.url, '+15550100002', '222222');
    carol = await register(t.url, '+15550100003', '333333');
  });
  after(() => t.close());

  it('is online while a socket is connected and records last seen when it closes', async () => {
    assert.deepEqual(await presenceOf(alice, bob), create(PresenceResponseSchema, { online: false, lastSeen: 0n, visible: true }));
    const ws = await WsTestClient.connect(t.wsUrl, alice);
    assert.equal((await presenceOf(alice, bob)).online, true);
    t.clock.advance(1234);
    await ws.close();
    const seenAt = BigInt(t.clock.now());
    let after = await presenceOf(alice, bob);
    for (let i = 0; i < 100 && after.lastSeen !== seenAt; i++) {
      await new Promise((r) => setTimeout(r, 10));
      after = await presenceOf(alice, bob);
    }
    assert.deepEqual([after.online, after.lastSeen, after.visible], [false, seenAt, true]);
  });

  it('hides presence from everyone but the account itself with NOBODY', async () => {
    assert.equal((await setVisibility(alice, PresenceSettings_Visibility.NOBODY)).status, 200);
    const ws = await WsTestClient.connect(t.wsUrl, alice);
    assert.deepEqual(await presenceOf(alice, bob), create(PresenceResponseSchema, { online: false, lastSeen: 0n, visible: false }));
    assert.equal((await presenceOf(alice, alice)).online, true, 'an account sees itself');
    await ws.close();
  });

  it('shows presence only to the allow-list with ALLOWED', async () => {
    assert.equal((await setVisibility(alice, PresenceSettings_Visibility.ALLOWED, [bob.accountId])).status, 200);
    const ws = await WsTestClient.connect(t.wsUrl, alice);
    assert.equal((await presenceOf(alice, bob)).online, true);
    assert.equal((await presenceOf(alice, carol)).visible, false);
    await ws.close();
    assert.equal((await setVisibility(alice, PresenceSettings_Visibility.EVERYONE)).status, 200);
    assert.equal((await presenceOf(alice, carol)).visible, true);
  });

  it('validates settings and targets', async () => {
    const badEnum = await setVisibility(alice, 7);
    assert.deepEqual([badEnum.status, badEnum.code], [400, 'SERVER_BAD_REQUEST']);
    const badId = await setVisibility(alice, PresenceSettings_Visibility.ALLOWED, ['not-an-id']);
    assert.deepEqual([badId.status, badId.code], [400, 'SERVER_BAD_REQUEST']);
    const unknown = await http(t.url, 'GET', '/v1/presence/00000000-0000-4000-8000-000000000000', { auth: bob });
    assert.deepEqual([unknown.status, unknown.code], [404, 'SERVER_NOT_FOUND']);
  });
});
