// Web Push against the real server (in-process, port 0, SQLite in a temporary folder) and a loopback HTTP
// server standing in for a browser's push service. The test plays the browser: it makes the subscription's
// keys itself (an ECDH P-256 pair and a 16-byte auth secret, as PushManager.subscribe does), registers
// them, and then checks every push the server sends: the VAPID token (RFC 8292) verifies under the key
// GET /v1/push/vapid hands out, for the endpoint's origin, unexpired; the body decrypts (aes128gcm, RFC
// 8188/8291) with the subscription's private key to the wake-up payload and nothing else. Bursts are
// collapsed, connected devices are not pushed, a 410 deletes the subscription, and bad subscriptions are
// refused with typed errors.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, createDecipheriv, createPublicKey, hkdfSync, randomBytes, verify, type ECDH } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fakeCiphertext, http, register, sendBody, WsTestClient, type TestAccount } from '../support/server-client.ts';
import { startTestServer, type TestServer } from '../support/server-harness.ts';

const MIN_INTERVAL_MS = 1500;

/** One request the push service received. */
interface PushRequest {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly at: number;
}

/** A loopback push service: records each POST and answers with `status`. */
class FakePushService {
  readonly requests: PushRequest[] = [];
  status = 201;
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<FakePushService> {
    const server = createServer();
    const service = new FakePushService(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        service.requests.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
        res.writeHead(service.status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return service;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** What a browser keeps of its subscription: the ECDH pair and the auth secret. */
interface BrowserSubscription {
  readonly endpoint: string;
  readonly ecdh: ECDH;
  readonly auth: Buffer;
  readonly json: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } };
}

function browserSubscription(endpoint: string): BrowserSubscription {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16);
  return { endpoint, ecdh, auth, json: { endpoint, expirationTime: null, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } } };
}

/** Decrypts an aes128gcm Web Push body (RFC 8291 key derivation, RFC 8188 framing, one record). */
function decryptPush(body: Buffer, sub: BrowserSubscription): Buffer {
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body[20] ?? 0;
  const serverPublic = body.subarray(21, 21 + idLength);
  const ciphertext = body.subarray(21 + idLength);
  assert.equal(idLength, 65, 'keyid is the server\'s ephemeral public key');
  assert.ok(ciphertext.length <= recordSize, 'one record');
  const shared = sub.ecdh.computeSecret(serverPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), sub.ecdh.getPublicKey(), serverPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', shared, sub.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  // The last record ends with the delimiter 0x02, then zero padding.
  let end = padded.length;
  while (end > 0 && padded[end - 1] === 0) end--;
  assert.equal(padded[end - 1], 2, 'last-record delimiter');
  return padded.subarray(0, end - 1);
}

/** Checks the VAPID `Authorization` header; returns the token's claims. */
function verifyVapid(headers: IncomingHttpHeaders, vapidPublicKey: string, audience: string): Record<string, unknown> {
  const match = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(headers.authorization ?? '');
  assert.ok(match !== null, `vapid authorization header, got ${headers.authorization}`);
  const [, token = '', k = ''] = match;
  assert.equal(k, vapidPublicKey, 'k= is the key GET /v1/push/vapid hands out');
  const [h = '', p = '', s = ''] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { typ: 'JWT', alg: 'ES256' });
  const point = Buffer.from(vapidPublicKey, 'base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') }, format: 'jwk' });
  assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')), 'ES256 signature verifies');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  assert.equal(claims.aud, audience, 'aud is the origin of the endpoint');
  assert.ok(typeof claims.exp === 'number' && claims.exp > Date.now() / 1000 && claims.exp <= Date.now() / 1000 + 24 * 3600, 'exp in the future, within 24 h');
  assert.equal(claims.sub, 'mailto:push-test@parley.invalid');
  return claims;
}

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('web push', () => {
  let t: TestServer;
  let service: FakePushService;
  let alice: TestAccount;
  let bob: TestAccount;
  let vapidKey: string;
  let sub: BrowserSubscription;

  /** Bob sends `n` envelopes to Alice's device 1, one request each. */
  const sendToAlice = async (n: number): Promise<Uint8Array[]> => {
    const contents: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const content = fakeCiphertext(64, 0x5eed0000 + i);
      contents.push(content);
      const r = await http(t.url, 'PUT', `/v1/messages/${alice.accountId}`, { auth: bob, body: sendBody([{ deviceId: 1, registrationId: alice.registrationId, content }]) });
      assert.equal(r.status, 200);
    }
    return contents;
  };
  /** Waits until the notifier tracks no device (every window closed). */
  const untilIdle = async (): Promise<void> => {
    for (let i = 0; i < 400 && t.server.app.push.notifier.tracked > 0; i++) await sleep(25);
    assert.equal(t.server.app.push.notifier.tracked, 0, 'the notifier drains');
  };
  const untilPushes = async (n: number, timeoutMs = 10_000): Promise<void> => {
    const end = Date.now() + timeoutMs;
    while (service.requests.length < n && Date.now() < end) await sleep(20);
    assert.ok(service.requests.length >= n, `${n} pushes (have ${service.requests.length})`);
  };
  const subscribe = (s: BrowserSubscription, who: TestAccount = alice) => http(t.url, 'PUT', '/v1/push/subscription', { auth: who, body: json(s.json) });

  before(async () => {
    service = await FakePushService.start();
    t = await startTestServer({
      push: { allowLoopbackHttp: true, minIntervalMs: MIN_INTERVAL_MS, ackGraceMs: 300, vapidSubject: 'mailto:push-test@parley.invalid' },
      rateLimits: { messagesPerSender: { capacity: 10_000, windowMs: 1000 } },
    });
    alice = await register(t.url, '+15550100001', '111111');
    bob = await register(t.url, '+15550100002', '222222');
    const vapid = await http(t.url, 'GET', '/v1/push/vapid');
    assert.equal(vapid.status, 200);
    vapidKey = (JSON.parse(Buffer.from(vapid.body).toString()) as { publicKey: string }).publicKey;
    sub = browserSubscription(`${service.origin}/wpush/alice-1`);
    assert.equal((await subscribe(sub)).status, 204);
  });
  afterEach(async () => {
    // Empty Alice's queue and let every push window close, so each case starts from nothing.
    const drain = await WsTestClient.connect(t.wsUrl, alice);
    await drain.waitForQueueEmpty();
    await drain.close();
    await untilIdle();
    service.requests.length = 0;
    service.status = 201;
  });
  after(async () => {
    await t.close();
    await service.close();
  });

  it('hands out a 65-byte P-256 VAPID public key, and shows the device its subscription', async () => {
    const key = Buffer.from(vapidKey, 'base64url');
    assert.equal(key.length, 65);
    assert.equal(key[0], 4);
    const mine = await http(t.url, 'GET', '/v1/push/subscription', { auth: alice });
    assert.equal(mine.status, 200);
    assert.equal((JSON.parse(Buffer.from(mine.body).toString()) as { endpoint: string }).endpoint, sub.endpoint);
    assert.equal((await http(t.url, 'GET', '/v1/push/subscription', { auth: bob })).status, 404);
  });

  it('wakes an offline device with a VAPID-signed, encrypted push that carries no message content', async () => {
    const [content] = await sendToAlice(1);
    await untilPushes(1);
    const [push] = service.requests;
    assert.ok(push !== undefined && content !== undefined);
    assert.equal(push.path, '/wpush/alice-1');
    verifyVapid(push.headers, vapidKey, service.origin);
    assert.equal(push.headers['content-encoding'], 'aes128gcm');
    assert.equal(push.headers.urgency, 'high');
    assert.equal(push.headers.topic, 'parley-wake');
    assert.equal(push.headers.ttl, '86400');
    assert.ok(push.body.length < 200, `a small body (${push.body.length} bytes)`);
    const plaintext = decryptPush(push.body, sub);
    assert.deepEqual(JSON.parse(plaintext.toString('utf8')), { type: 'wake' }, 'the wake-up payload and nothing else');
    assert.equal(plaintext.indexOf(Buffer.from(content)), -1);
    assert.equal(push.body.indexOf(Buffer.from(content)), -1, 'not even as ciphertext');
    assert.ok(!plaintext.toString().includes(bob.accountId), 'no sender');
  });

  it('collapses a burst of 50 messages into a bounded number of pushes', async () => {
    const started = Date.now();
    await sendToAlice(50);
    // The first push at once, at most one more per window for what arrived meanwhile.
    await untilPushes(1);
    await sleep(2 * MIN_INTERVAL_MS + 500);
    const windows = Math.ceil((Date.now() - started) / MIN_INTERVAL_MS);
    assert.ok(service.requests.length >= 1 && service.requests.length <= Math.min(3, 1 + windows), `pushes for 50 messages: ${service.requests.length}`);
    for (const push of service.requests) assert.deepEqual(JSON.parse(decryptPush(push.body, sub).toString()), { type: 'wake' });
  });

  it('does not push a device that is connected', async () => {
    const online = await WsTestClient.connect(t.wsUrl, alice);
    try {
      await online.waitForQueueEmpty();
      await sendToAlice(5);
      await online.waitForEnvelopes(5);
      await sleep(MIN_INTERVAL_MS);
      assert.equal(service.requests.length, 0, 'no push while connected');
    } finally {
      await online.close();
    }
    // Once the socket is gone, the next message wakes the device again.
    await sendToAlice(1);
    await untilPushes(1);
  });

  it('deletes the subscription when the push service answers 410 Gone', async () => {
    service.status = 410;
    await sendToAlice(1);
    await untilPushes(1);
    let status = 200;
    for (let i = 0; i < 200 && status === 200; i++) {
      status = (await http(t.url, 'GET', '/v1/push/subscription', { auth: alice })).status;
      if (status === 200) await sleep(20);
    }
    assert.equal(status, 404, 'deleted after the 410');
    const metrics = Buffer.from((await http(t.url, 'GET', '/metrics')).body).toString();
    assert.match(metrics, /parley_push_requests_total\{result="gone"\} 1/);
    // Nothing more is pushed there; a new subscription starts again.
    await untilIdle();
    service.requests.length = 0;
    service.status = 201;
    await sendToAlice(1);
    await sleep(500);
    assert.equal(service.requests.length, 0);
    assert.equal((await subscribe(sub)).status, 204);
  });

  it('replaces and deletes a subscription; a deleted one gets no push', async () => {
    const second = browserSubscription(`${service.origin}/wpush/alice-2`);
    assert.equal((await subscribe(second)).status, 204);
    await sendToAlice(1);
    await untilPushes(1);
    assert.equal(service.requests[0]?.path, '/wpush/alice-2', 'the replacement is used');
    assert.deepEqual(JSON.parse(decryptPush(service.requests[0]?.body ?? Buffer.alloc(0), second).toString()), { type: 'wake' });
    await untilIdle();
    service.requests.length = 0;
    assert.equal((await http(t.url, 'DELETE', '/v1/push/subscription', { auth: alice })).status, 204);
    assert.equal((await http(t.url, 'DELETE', '/v1/push/subscription', { auth: alice })).status, 204, 'idempotent');
    await sendToAlice(1);
    await sleep(500);
    assert.equal(service.requests.length, 0);
    assert.equal((await subscribe(sub)).status, 204);
  });

  it('refuses malformed subscriptions with typed errors', async () => {
    const good = sub.json;
    const cases: Array<[string, unknown, number, string]> = [
      ['not JSON', 'nope{', 400, 'SERVER_BAD_REQUEST'],
      ['no keys', { endpoint: good.endpoint }, 400, 'SERVER_BAD_REQUEST'],
      ['http on a public host', { ...good, endpoint: 'http://push.example.org/x' }, 400, 'SERVER_BAD_REQUEST'],
      ['https on a private address', { ...good, endpoint: 'https://10.1.2.3/x' }, 400, 'SERVER_BAD_REQUEST'],
      ['credentials in the endpoint', { ...good, endpoint: 'https://u:p@push.example.org/x' }, 400, 'SERVER_BAD_REQUEST'],
      ['not a URL', { ...good, endpoint: 'push service' }, 400, 'SERVER_BAD_REQUEST'],
      ['endpoint too long', { ...good, endpoint: `https://push.example.org/${'a'.repeat(2100)}` }, 400, 'SERVER_BAD_REQUEST'],
      ['p256dh too short', { ...good, keys: { ...good.keys, p256dh: Buffer.alloc(33, 4).toString('base64url') } }, 400, 'SERVER_BAD_REQUEST'],
      ['p256dh not on the curve', { ...good, keys: { ...good.keys, p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]).toString('base64url') } }, 400, 'SERVER_BAD_REQUEST'],
      ['p256dh not base64url', { ...good, keys: { ...good.keys, p256dh: '***' } }, 400, 'SERVER_BAD_REQUEST'],
      ['auth of 15 bytes', { ...good, keys: { ...good.keys, auth: randomBytes(15).toString('base64url') } }, 400, 'SERVER_BAD_REQUEST'],
      ['body above 4 KiB', { ...good, padding: 'x'.repeat(5000) }, 413, 'SERVER_PAYLOAD_TOO_LARGE'],
    ];
    for (const [what, body, status, code] of cases) {
      const r = await http(t.url, 'PUT', '/v1/push/subscription', { auth: bob, body: typeof body === 'string' ? new TextEncoder().encode(body) : json(body) });
      assert.deepEqual([r.status, r.code], [status, code], what);
    }
    assert.equal((await http(t.url, 'PUT', '/v1/push/subscription', { body: json(good) })).status, 401, 'unauthenticated');
    assert.equal((await http(t.url, 'GET', '/v1/push/subscription', { auth: bob })).status, 404, 'nothing stored for bob');
  });

  it('keeps its VAPID key pair across a restart', async () => {
    const dataDir = t.dataDir;
    await t.close({ keepData: true });
    t = await startTestServer({ dataDir, push: { allowLoopbackHttp: true, minIntervalMs: MIN_INTERVAL_MS, ackGraceMs: 300, vapidSubject: 'mailto:push-test@parley.invalid' } });
    const again = await http(t.url, 'GET', '/v1/push/vapid');
    assert.equal((JSON.parse(Buffer.from(again.body).toString()) as { publicKey: string }).publicKey, vapidKey);
  });
});
