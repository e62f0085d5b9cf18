// Authentication: every route that needs credentials refuses missing, malformed and wrong ones, over HTTP
// and over the WebSocket upgrade. The table comes from the server's own route table, so a new route is
// covered the day it is added. And a device's queue reaches only that device.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { FrameSchema, ResponseSchema } from '../../src/protocol/gen/transport_pb.ts';
import { basic, fakeCiphertext, http, register, sendBody, WsTestClient, type TestAccount } from '../support/server-client.ts';
import { startTestServer, type TestServer } from '../support/server-harness.ts';

/** The routes docs/api.md lists as unauthenticated. Anything else must require credentials. */
const PUBLIC_ROUTES = [
  'GET /healthz',
  'GET /metrics',
  'POST /v1/verification/request',
  'POST /v1/accounts/register',
  'POST /v1/devices/link',
  'GET /v1/provisioning/:linkId',
  'GET /v1/push/vapid',
];

describe('server authentication', () => {
  let t: TestServer;
  let alice: TestAccount;
  let bob: TestAccount;

  before(async () => {
    t = await startTestServer();
    alice = await register(t.url, '+15550100001', '111111');
    bob = await register(t.url, '+15550100002', '222222');
  });
  after(() => t.close());

  /** A concrete path for a route pattern, with parameters that would be valid for an authenticated caller. */
  function concrete(pattern: string): string {
    return pattern.replace(':accountId', bob.accountId).replace(':deviceId', '1').replace(':number', encodeURIComponent(bob.number));
  }

  it('has exactly the documented unauthenticated routes', () => {
    const open = t.server.app.router.routes.filter((r) => !r.auth).map((r) => `${r.verb} ${r.path}`);
    assert.deepEqual(open.sort(), [...PUBLIC_ROUTES].sort());
  });

  it('refuses missing, malformed and wrong credentials on every authenticated route (HTTP)', async () => {
    const guarded = t.server.app.router.routes.filter((r) => r.auth);
    assert.ok(guarded.length >= 8, 'the route table has the authenticated routes');
    const badAuth: Array<[string, string | undefined]> = [
      ['none', undefined],
      ['empty', ''],
      ['not basic', `Bearer ${alice.password}`],
      ['garbage base64', 'Basic !!!!'],
      ['no colon', `Basic ${Buffer.from(alice.login).toString('base64')}`],
      ['wrong password', basic({ login: alice.login, password: bob.password })],
      ['empty password', basic({ login: alice.login, password: '' })],
      ['unknown device', basic({ login: `${alice.accountId}.2`, password: alice.password })],
      ['unknown account', basic({ login: '00000000-0000-4000-8000-000000000000.1', password: alice.password })],
      ['malformed login', basic({ login: 'alice', password: alice.password })],
      ['device id zero', basic({ login: `${alice.accountId}.0`, password: alice.password })],
      ['oversized', `Basic ${'A'.repeat(4000)}`],
    ];
    for (const route of guarded) {
      for (const [label, header] of badAuth) {
        const result = await http(t.url, route.verb, concrete(route.path), header === undefined ? {} : { auth: header });
        assert.deepEqual([result.status, result.code], [401, 'SERVER_UNAUTHORIZED'], `${route.verb} ${route.path} with ${label} credentials`);
      }
      const ok = await http(t.url, route.verb, concrete(route.path), { auth: alice });
      assert.notEqual(ok.status, 401, `${route.verb} ${route.path} accepts valid credentials`);
    }
  });

  it('refuses WebSocket upgrades without valid credentials, with HTTP 401 before the socket opens', async () => {
    const attempts: Array<[string, Parameters<typeof WsTestClient.connect>[1], boolean]> = [
      ['none', undefined, false],
      ['wrong password', { login: alice.login, password: bob.password }, false],
      ['wrong password in query', { login: alice.login, password: bob.password }, true],
      ['unknown device', { login: `${alice.accountId}.3`, password: alice.password }, false],
    ];
    for (const [label, credentials, viaQuery] of attempts) {
      await assert.rejects(WsTestClient.connect(t.wsUrl, credentials, { viaQuery }), (err: { status?: number; code?: string }) => {
        assert.equal(err.status, 401, label);
        assert.equal(err.code, 'SERVER_UNAUTHORIZED', label);
        return true;
      });
    }
    await assert.rejects(WsTestClient.connect(t.wsUrl.replace('/v1/websocket', '/v1/other'), alice), (err: { status?: number }) => err.status === 404);
    const viaQuery = await WsTestClient.connect(t.wsUrl, alice, { viaQuery: true });
    const who = await viaQuery.request('GET', '/v1/accounts/whoami');
    assert.equal(who.status, 200, 'query-parameter credentials work (browsers)');
    await viaQuery.close();
  });

  it("delivers a device's queue only to that device", async () => {
    const contents = [fakeCiphertext(48), fakeCiphertext(48), fakeCiphertext(48)];
    for (const content of contents) {
      const sent = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
        auth: bob,
        body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content }]),
      });
      assert.equal(sent.status, 200);
    }
    // Bob connects: he sees his own (empty) queue only, and cannot ack Alice's envelopes by guessing ids.
    const asBob = await WsTestClient.connect(t.wsUrl, bob);
    await asBob.waitForQueueEmpty();
    assert.equal(asBob.received.length, 0);
    for (let id = 1n; id <= 10n; id++) {
      asBob.sendRaw(toBinary(FrameSchema, create(FrameSchema, { kind: { case: 'response', value: create(ResponseSchema, { id, status: 200 }) } })));
    }
    // The server's push routes are not callable by clients.
    const push = await asBob.request('PUT', '/v1/queue/message', new Uint8Array(0));
    assert.deepEqual([push.status, push.code], [404, 'SERVER_UNKNOWN_PATH']);
    await asBob.close();

    const asAlice = await WsTestClient.connect(t.wsUrl, alice);
    await asAlice.waitForQueueEmpty();
    assert.deepEqual(
      asAlice.received.map((e) => Buffer.from(e.content).toString('hex')),
      contents.map((c) => Buffer.from(c).toString('hex')),
    );
    await asAlice.close();
  });
});
