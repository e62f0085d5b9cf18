// Bad input on the wire: malformed frames close the socket (4400), a bad request gets an error response
// and the socket stays open, oversized frames close it (1009), oversized HTTP bodies get 413, floods get
// 429 with a retry time and then a close (4429), and raw garbage on the HTTP port gets 400. The server
// keeps answering /healthz throughout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { create, toBinary } from '@bufbuild/protobuf';
import { FrameSchema, RequestSchema } from '../../src/protocol/gen/transport_pb.ts';
import { http, register, WsTestClient, type TestAccount } from '../support/server-client.ts';
import { startTestServer, type TestServer } from '../support/server-harness.ts';

describe('server robustness', () => {
  let t: TestServer;
  let alice: TestAccount;

  before(async () => {
    t = await startTestServer({
      limits: { maxRequestBytes: 64 * 1024, floodCloseAfter: 10 },
      rateLimits: { requestsPerConnection: { capacity: 20, windowMs: 1000 } },
    });
    alice = await register(t.url, '+15550100001', '111111');
  });
  after(() => t.close());

  const healthy = async () => assert.equal((await http(t.url, 'GET', '/healthz')).status, 200);

  it('closes the socket with 4400 on frames that are not a binary Frame', async () => {
    const frames: Array<[string, Uint8Array | string]> = [
      ['text frame', 'hello'],
      ['garbage', new Uint8Array([0xff, 0xff, 0xff, 0xff])],
      ['frame with no kind', toBinary(FrameSchema, create(FrameSchema, {}))],
      ['truncated frame', toBinary(FrameSchema, create(FrameSchema, { kind: { case: 'request', value: create(RequestSchema, { id: 1n, verb: 'GET', path: '/v1/accounts/whoami' }) } })).subarray(0, 5)],
    ];
    for (const [label, data] of frames) {
      const ws = await WsTestClient.connect(t.wsUrl, alice);
      ws.sendRaw(data);
      const closed = await ws.closed;
      assert.deepEqual([closed.code, closed.reason], [4400, 'SERVER_MALFORMED_FRAME'], label);
    }
    await healthy();
  });

  it('answers bad requests with an error response and keeps the socket open', async () => {
    const ws = await WsTestClient.connect(t.wsUrl, alice);
    const unknown = await ws.request('GET', '/v1/nowhere');
    assert.deepEqual([unknown.status, unknown.code], [404, 'SERVER_UNKNOWN_PATH']);
    const badVerb = await ws.request('BREW', '/v1/accounts/whoami');
    assert.equal(badVerb.status, 404);
    const withQuery = await ws.request('GET', '/v1/accounts/whoami?x=1');
    assert.equal(withQuery.status, 404, 'paths carry no query strings');
    const badBody = await ws.request('PUT', '/v1/keys', new Uint8Array([0x0a, 0xff, 0xff]));
    assert.deepEqual([badBody.status, badBody.code], [400, 'SERVER_BAD_REQUEST']);
    const longPath = await ws.request('GET', `/${'a'.repeat(5000)}`);
    assert.equal(longPath.status, 404);
    const who = await ws.request('GET', '/v1/accounts/whoami');
    assert.equal(who.status, 200, 'still usable');
    await ws.close();
  });

  it('closes the socket with 1009 on a frame above the size limit', async () => {
    const ws = await WsTestClient.connect(t.wsUrl, alice);
    ws.sendRaw(new Uint8Array(64 * 1024 + 1));
    assert.equal((await ws.closed).code, 1009);
    await healthy();
  });

  it('answers 413 to an HTTP body above the limit', async () => {
    const big = await http(t.url, 'POST', '/v1/accounts/register', { body: new Uint8Array(64 * 1024 + 1) });
    assert.deepEqual([big.status, big.code], [413, 'SERVER_PAYLOAD_TOO_LARGE']);
    await healthy();
  });

  it('answers a flood with 429 and retry_after_ms, then closes the socket with 4429', async () => {
    const ws = await WsTestClient.connect(t.wsUrl, alice);
    const first = await Promise.all(Array.from({ length: 20 }, () => ws.request('GET', '/v1/accounts/whoami')));
    assert.ok(first.every((r) => r.status === 200));
    const refused = await ws.request('GET', '/v1/accounts/whoami');
    assert.deepEqual([refused.status, refused.code], [429, 'SERVER_RATE_LIMITED']);
    assert.ok(refused.retryAfterMs > 0);
    for (let i = 0; i < 20; i++) ws.sendRaw(toBinary(FrameSchema, create(FrameSchema, { kind: { case: 'request', value: create(RequestSchema, { id: 1000n + BigInt(i), verb: 'GET', path: '/healthz' }) } })));
    const closed = await ws.closed;
    assert.deepEqual([closed.code, closed.reason], [4429, 'SERVER_RATE_LIMITED']);
    await healthy();
  });

  it('answers raw garbage on the HTTP port with 400 and stays up', async () => {
    const reply = await new Promise<string>((resolve) => {
      const socket = connect(t.server.port, '127.0.0.1', () => socket.write('\x00\x01garbage\r\n\r\n'));
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString()));
      socket.on('close', () => resolve(data));
      socket.on('error', () => resolve(data));
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    await healthy();
  });
});
