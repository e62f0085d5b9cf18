// Registration flows against the real server: test numbers, codes through a sender, expiry with the
// injected clock, the attempts limit, rate limits, and re-registration (same account id, new identity,
// old devices and their queues gone, their sockets closed).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { PreKeyResponseSchema, RegisterRequestSchema, VerificationCodeResponseSchema, WhoAmIResponseSchema } from '../../src/protocol/gen/service_pb.ts';
import type { PhoneNumber } from '../../src/server/ids.ts';
import { decodeBody, fakeCiphertext, http, register, registerRequest, requestCode, sendBody, WsTestClient } from '../support/server-client.ts';
import { startTestServer, type TestServer } from '../support/server-harness.ts';
import { kyberPreKey, newIdentity, signedPreKey } from '../support/server-keys.ts';

const MINUTE = 60_000;

/** A sender that keeps the last code per number instead of sending it. */
function capturingSender(): { codes: Map<string, string>; send(number: PhoneNumber, code: string): Promise<void> } {
  const codes = new Map<string, string>();
  return {
    codes,
    async send(number, code) {
      codes.set(number, code);
    },
  };
}

describe('server registration', () => {
  let t: TestServer;
  const sender = capturingSender();

  before(async () => {
    t = await startTestServer({
      verificationSender: { kind: 'custom', sender },
      rateLimits: { verificationPerAddress: { capacity: 1000, windowMs: MINUTE } },
    });
  });
  after(() => t.close());

  it('registers a test number with its fixed code, without sending anything', async () => {
    const requested = await requestCode(t.url, '+15550100001');
    assert.equal(requested.status, 200);
    assert.equal(decodeBody(VerificationCodeResponseSchema, requested.body).expiresInSeconds, 600);
    assert.equal(sender.codes.has('+15550100001'), false);
    const a = await register(t.url, '+15550100001', '111111');
    assert.equal(a.deviceId, 1);
    assert.equal(a.reregistered, false);
    assert.match(a.accountId, /^[0-9a-f-]{36}$/);
    assert.equal(Buffer.from(a.password, 'base64url').length, 24);
    const who = await http(t.url, 'GET', '/v1/accounts/whoami', { auth: a });
    assert.equal(who.status, 200);
    const body = decodeBody(WhoAmIResponseSchema, who.body);
    assert.deepEqual([body.accountId, body.deviceId, body.number], [a.accountId, 1, '+15550100001']);
  });

  it('refuses a wrong code for a test number', async () => {
    await assert.rejects(register(t.url, '+15550100002', '000000'), /403 SERVER_INVALID_CODE/);
  });

  it('registers a normal number with the code the sender got, once', async () => {
    const number = '+15550200001';
    assert.equal((await requestCode(t.url, number)).status, 200);
    const code = sender.codes.get(number);
    assert.match(code ?? '', /^[0-9]{6}$/);
    const a = await register(t.url, number, code as string);
    assert.equal(a.reregistered, false);
    await assert.rejects(register(t.url, number, code as string), /403 SERVER_INVALID_CODE/, 'a code is consumed by its registration');
  });

  it('expires codes after 10 minutes (injected clock)', async () => {
    const number = '+15550200002';
    await requestCode(t.url, number);
    t.clock.advance(10 * MINUTE + 1);
    await assert.rejects(register(t.url, number, sender.codes.get(number) as string), /403 SERVER_INVALID_CODE/);
    await requestCode(t.url, number);
    t.clock.advance(9 * MINUTE);
    await register(t.url, number, sender.codes.get(number) as string);
  });

  it('invalidates a code after 5 wrong attempts', async () => {
    const number = '+15550200003';
    await requestCode(t.url, number);
    const code = sender.codes.get(number) as string;
    const wrong = code === '000000' ? '000001' : '000000';
    for (let i = 0; i < 5; i++) await assert.rejects(register(t.url, number, wrong), /403 SERVER_INVALID_CODE/);
    await assert.rejects(register(t.url, number, code), /403 SERVER_INVALID_CODE/, 'the right code no longer works');
  });

  it('does not burn the code on a request with invalid keys', async () => {
    const number = '+15550200004';
    await requestCode(t.url, number);
    const code = sender.codes.get(number) as string;
    const identity = await newIdentity();
    const other = await newIdentity();
    const bad = toBinary(
      RegisterRequestSchema,
      create(RegisterRequestSchema, {
        number,
        code,
        registrationId: 7,
        identityKey: identity.publicKey.serialized,
        signedPreKey: await signedPreKey(other, 1), // signed by the wrong identity
        kyberLastResortPreKey: kyberPreKey(identity, 2),
      }),
    );
    const refused = await http(t.url, 'POST', '/v1/accounts/register', { body: bad });
    assert.deepEqual([refused.status, refused.code], [400, 'SERVER_INVALID_KEY']);
    await register(t.url, number, code);
  });

  it('validates fields: number format, registration id, garbage bodies', async () => {
    const badNumber = await http(t.url, 'POST', '/v1/verification/request', { body: new Uint8Array([0x0a, 0x03, 0x31, 0x32, 0x33]) });
    assert.deepEqual([badNumber.status, badNumber.code], [400, 'SERVER_BAD_REQUEST']);
    const garbage = await http(t.url, 'POST', '/v1/accounts/register', { body: new Uint8Array([0xff, 0xff, 0xff]) });
    assert.deepEqual([garbage.status, garbage.code], [400, 'SERVER_BAD_REQUEST']);
    const { body } = await registerRequest('+15550100003', '333333', 0);
    const zeroId = await http(t.url, 'POST', '/v1/accounts/register', { body });
    assert.deepEqual([zeroId.status, zeroId.code], [400, 'SERVER_BAD_REQUEST']);
  });

  it('re-registration keeps the account id, replaces the identity, drops old devices, queues and sockets', async () => {
    const alice = await register(t.url, '+15550100004', '444444');
    const bob = await register(t.url, '+15550100005', '555555');
    // Bob queues two envelopes for Alice while she is offline, and a third while she is connected.
    for (let i = 0; i < 2; i++) {
      const sent = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, {
        auth: bob,
        body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content: fakeCiphertext(64) }]),
      });
      assert.equal(sent.status, 200);
    }
    const oldSocket = await WsTestClient.connect(t.wsUrl, alice, { ack: () => 'hold' });
    await oldSocket.waitForEnvelopes(2);

    const again = await register(t.url, '+15550100004', '444444');
    assert.equal(again.accountId, alice.accountId);
    assert.equal(again.reregistered, true);
    assert.notEqual(again.password, alice.password);
    assert.equal((await oldSocket.closed).code, 4401, 'the old device socket is closed (credentials revoked)');
    assert.equal((await http(t.url, 'GET', '/v1/accounts/whoami', { auth: alice })).status, 401, 'old credentials are dead');

    const keys = await http(t.url, 'GET', `/v1/keys/${alice.accountId}/*`, { auth: bob });
    const bundle = decodeBody(PreKeyResponseSchema, keys.body);
    assert.deepEqual(Buffer.from(bundle.identityKey), Buffer.from(again.identity.publicKey.serialized), 'the new identity is published');
    assert.equal(bundle.devices[0]?.registrationId, again.registrationId);

    const fresh = await WsTestClient.connect(t.wsUrl, again);
    await fresh.waitForQueueEmpty();
    assert.equal(fresh.received.length, 0, 'the old queue was deleted');
    await fresh.close();
  });

  it('rate limits code requests per number (3 per 10 minutes) with Retry-After', async () => {
    const number = '+15550200005';
    for (let i = 0; i < 3; i++) assert.equal((await requestCode(t.url, number)).status, 200);
    const limited = await requestCode(t.url, number);
    assert.deepEqual([limited.status, limited.code], [429, 'SERVER_RATE_LIMITED']);
    assert.ok(limited.retryAfter > 0 && limited.retryAfter <= 600, `Retry-After ${limited.retryAfter}`);
    t.clock.advance(limited.retryAfter * 1000);
    assert.equal((await requestCode(t.url, number)).status, 200, 'allowed again after Retry-After');
  });
});

describe('server registration: per-address limits and the log sender', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer({ rateLimits: { verificationPerAddress: { capacity: 2, windowMs: 10 * MINUTE } } });
  });
  after(() => t.close());

  it('writes the code to the log with the number masked, and the code works', async () => {
    const number = '+15550300001';
    assert.equal((await requestCode(t.url, number)).status, 200);
    const line = t
      .log()
      .split('\n')
      .find((l) => l.includes('"verification_code"'));
    assert.ok(line !== undefined, 'a verification_code log line');
    const entry = JSON.parse(line) as { to: string; verificationCode: string };
    assert.equal(entry.to, '+1555*****01');
    await register(t.url, number, entry.verificationCode);
  });

  it('rate limits code requests per client address', async () => {
    assert.equal((await requestCode(t.url, '+15550300002')).status, 200);
    const limited = await requestCode(t.url, '+15550300003');
    assert.deepEqual([limited.status, limited.code], [429, 'SERVER_RATE_LIMITED']);
    assert.equal((await requestCode(t.url, '+15550100001')).status, 200, 'test numbers are exempt');
  });
});
