// The WebSocket transport against the fake server: state events, reconnects with backoff, request ids and
// timeouts, AbortSignal, pushes acknowledged by response, credentials refused; and the frame decoder and
// full-jitter backoff on their own.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../../src/client/transport/backoff.ts';
import { decodeFrame, encodeRequestFrame, encodeResponseFrame, MAX_FRAME_BYTES } from '../../../src/client/transport/frames.ts';
import { ConnectionReason, ConnectionState, WebSocketTransport, websocketUrl, type StateChange } from '../../../src/client/transport/websocket.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { FakeServer } from '../../fakes/fake-server.ts';
import { ALICE, eventually, registerOn } from './support.ts';
import { HttpTransport } from '../../../src/client/transport/http.ts';

async function credentialsOf(fake: FakeServer): Promise<{ accountId: string; deviceId: number; password: string }> {
  const store = await registerOn(fake, ALICE);
  const account = await store.transaction((tx) => tx.account.get());
  assert.ok(account);
  return { accountId: account.accountId, deviceId: account.deviceId, password: account.password };
}

describe('frames', () => {
  it('round-trips requests and responses', () => {
    const req = decodeFrame(encodeRequestFrame(7n, 'GET', '/v1/x', new Uint8Array([1, 2])));
    assert.equal(req?.kind, 'request');
    const res = decodeFrame(encodeResponseFrame(7n, 200, new Uint8Array([3])));
    assert.equal(res?.kind, 'response');
  });

  it('refuses oversized, truncated, random and empty frames without throwing', () => {
    assert.equal(decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1)), undefined);
    const good = encodeRequestFrame(1n, 'PUT', '/v1/queue/message', new Uint8Array(100));
    assert.equal(decodeFrame(good.subarray(0, good.length - 10)), undefined);
    assert.equal(decodeFrame(new Uint8Array(0)), undefined);
    let seed = 1;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let i = 0; i < 500; i++) {
      const bytes = Uint8Array.from({ length: 1 + (i % 64) }, rand);
      assert.doesNotThrow(() => decodeFrame(bytes));
    }
  });
});

describe('Backoff (full jitter)', () => {
  it('draws each delay uniformly below min(cap, base * 2^n) and starts over on reset', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [99, 199, 399, 799, 999, 999]);
    b.reset();
    assert.equal(b.next(), 99);
    const zero = new Backoff({ baseMs: 100, random: () => 0 });
    assert.equal(zero.next(), 0);
  });
});

describe('WebSocketTransport', () => {
  it('builds the socket URL with credentials as query parameters', () => {
    const url = new URL(websocketUrl('https://example.org:8443', { accountId: 'a', deviceId: 1, password: 'p w' }));
    assert.equal(url.protocol, 'wss:');
    assert.equal(url.pathname, '/v1/websocket');
    assert.equal(url.searchParams.get('login'), 'a.1');
    assert.equal(url.searchParams.get('password'), 'p w');
  });

  it('connects, emits typed state events, reconnects after a drop, and closes for good', async () => {
    const fake = new FakeServer();
    const credentials = await credentialsOf(fake);
    const t = new WebSocketTransport({ url: fake.url, credentials, WebSocket: fake.WebSocket, backoff: { baseMs: 5, maxMs: 10 }, keepAliveMs: 0 });
    const states: StateChange[] = [];
    t.on('state', (s) => states.push(s));
    t.connect();
    await t.waitUntilConnected();
    assert.deepEqual(states.map((s) => s.state), ['connecting', 'connected']);
    fake.disconnectAll();
    await eventually(() => states.filter((s) => s.state === 'connected').length === 2);
    const reconnecting = states.find((s) => s.state === ConnectionState.Reconnecting);
    assert.equal(reconnecting?.reason, ConnectionReason.ConnectionLost);
    assert.ok((reconnecting?.retryInMs ?? -1) >= 0);
    t.close();
    assert.equal(t.state, ConnectionState.Closed);
    await assert.rejects(t.request({ verb: 'GET', path: '/v1/accounts/whoami' }), (e: unknown) => ClientError.is(e, ClientErrorCode.Closed));
  });

  it('matches responses to requests by id, and times out or aborts requests', async () => {
    const fake = new FakeServer();
    const credentials = await credentialsOf(fake);
    const t = new WebSocketTransport({ url: fake.url, credentials, WebSocket: fake.WebSocket, keepAliveMs: 0 });
    t.connect();
    try {
      const [a, b] = await Promise.all([
        t.request({ verb: 'GET', path: '/v1/accounts/whoami' }),
        t.request({ verb: 'GET', path: '/v1/keys/status' }),
      ]);
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      // A request the server never answers.
      fake.hooks.request = (r) => (r.path === '/v1/slow' ? new Promise<never>(() => undefined) : undefined);
      await assert.rejects(t.request({ verb: 'GET', path: '/v1/slow' }, { timeoutMs: 30 }), (e: unknown) => ClientError.is(e, ClientErrorCode.Timeout));
      const controller = new AbortController();
      const pending = t.request({ verb: 'GET', path: '/v1/slow' }, { signal: controller.signal, timeoutMs: 5_000 });
      controller.abort();
      await assert.rejects(pending, (e: unknown) => ClientError.is(e, ClientErrorCode.Aborted));
    } finally {
      t.close();
    }
  });

  it('fails requests in flight with CONNECTION_CLOSED when the socket drops', async () => {
    const fake = new FakeServer();
    const credentials = await credentialsOf(fake);
    const t = new WebSocketTransport({ url: fake.url, credentials, WebSocket: fake.WebSocket, keepAliveMs: 0, backoff: { baseMs: 5, maxMs: 5 } });
    t.connect();
    await t.waitUntilConnected();
    fake.hooks.request = (r) => (r.path === '/v1/hang' ? new Promise<never>(() => undefined) : undefined);
    const pending = t.request({ verb: 'GET', path: '/v1/hang' }, { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 10));
    fake.disconnectAll();
    await assert.rejects(pending, (e: unknown) => ClientError.is(e, ClientErrorCode.ConnectionClosed) && e.retryable);
    t.close();
  });

  it('answers pushes with the handler status, and only on the socket that delivered them', async () => {
    const fake = new FakeServer();
    const credentials = await credentialsOf(fake);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const t = new WebSocketTransport({
      url: fake.url,
      credentials,
      WebSocket: fake.WebSocket,
      keepAliveMs: 0,
      backoff: { baseMs: 5, maxMs: 5 },
      onRequest: async (req) => {
        seen.push(req.path);
        if (req.path === '/v1/queue/message') await gate;
        return { status: 200 };
      },
    });
    fake.inject(credentials.accountId, 1, { type: 2, sourceAccountId: credentials.accountId, sourceDeviceId: 1, timestamp: 1n, content: new Uint8Array([1]) });
    t.connect();
    await eventually(() => seen.includes('/v1/queue/message'));
    // The socket that carried the push closes before the handler answers: no ack; it stays queued.
    fake.disconnectAll();
    release();
    await eventually(() => seen.filter((p) => p === '/v1/queue/message').length === 2);
    await eventually(() => fake.queue(credentials.accountId).length === 0, 2_000, 'the redelivered push to be acked');
    t.close();
  });

  it('stops reconnecting when the credentials are refused', async () => {
    const fake = new FakeServer();
    const credentials = await credentialsOf(fake);
    await registerOn(fake, ALICE); // a re-registration: the old password is void now
    const t = new WebSocketTransport({
      url: fake.url,
      credentials,
      WebSocket: fake.WebSocket,
      keepAliveMs: 0,
      backoff: { baseMs: 5, maxMs: 5 },
      checkCredentials: async () => {
        const http = new HttpTransport({ url: fake.url, credentials, fetch: fake.fetch });
        return (await http.request({ verb: 'GET', path: '/v1/accounts/whoami' })).status !== 401;
      },
    });
    const closed = new Promise<StateChange>((resolve) => t.on('state', (s) => s.state === ConnectionState.Closed && resolve(s)));
    t.connect();
    assert.equal((await closed).reason, ConnectionReason.Unauthorized);
  });
});
