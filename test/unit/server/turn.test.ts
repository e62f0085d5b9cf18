// TURN REST credentials (src/server/turn.ts) and GET /v1/calls/turn through the router in-process: the
// credential is checked against an independent HMAC-SHA1 (WebCrypto), the route needs credentials, and a
// server without TURN answers 404 SERVER_NOT_FOUND.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator } from '../../../src/server/auth/authenticator.ts';
import { sha256 } from '../../../src/server/auth/credentials.ts';
import { Router, type RouterRequest } from '../../../src/server/http/router.ts';
import { createLogger } from '../../../src/server/log.ts';
import { ServerMetrics } from '../../../src/server/metrics.ts';
import { callRoutes } from '../../../src/server/routes/calls.ts';
import type { AccountStore } from '../../../src/server/storage/stores.ts';
import { checkTurnConfig, DEFAULT_TURN_TTL_SECONDS, mintTurnCredentials, turnPassword, type TurnConfig } from '../../../src/server/turn.ts';

const ACCOUNT = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
const PASSWORD = 'device-password-for-the-test';
const SECRET = 'a-shared-secret-of-some-length';

async function webcryptoHmacSha1Base64(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
  return Buffer.from(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(message))).toString('base64');
}

function router(turn: TurnConfig | undefined, now: number): Router {
  // Only the authenticator's device lookup is needed: one device with a known password.
  const accounts = {
    device: async (accountId: string, deviceId: number) =>
      accountId === ACCOUNT && deviceId === 1 ? { accountId, deviceId, ref: `${accountId}.1`, passwordHash: sha256(PASSWORD) } : undefined,
  } as unknown as AccountStore;
  return new Router(callRoutes(turn, { now: () => now }), new Authenticator(accounts), new ServerMetrics(async () => 0), createLogger('error', { write: () => undefined }));
}

const request = (auth: boolean): RouterRequest => ({
  verb: 'GET',
  path: '/v1/calls/turn',
  body: new Uint8Array(),
  remoteAddress: '127.0.0.1',
  transport: 'http',
  auth: { credentials: auth ? { login: `${ACCOUNT}.1`, password: PASSWORD } : undefined },
});

describe('TURN credentials', () => {
  it('mints <expiry>:<account> with base64(HMAC-SHA1(secret, username)), as coturn checks', async () => {
    const now = 1_800_000_000_123;
    const c = mintTurnCredentials({ secret: SECRET, urls: ['turn:127.0.0.1:3478'], ttlSeconds: 600 }, ACCOUNT, now);
    assert.equal(c.username, `${1_800_000_000 + 600}:${ACCOUNT}`);
    assert.equal(c.credential, await webcryptoHmacSha1Base64(SECRET, c.username));
    assert.equal(turnPassword('another-secret-entirely', c.username) === c.credential, false);
    assert.deepEqual([c.ttl, c.urls], [600, ['turn:127.0.0.1:3478']]);
    assert.equal(mintTurnCredentials({ secret: SECRET, urls: ['turn:x'] }, ACCOUNT, now).ttl, DEFAULT_TURN_TTL_SECONDS);
  });

  it('refuses weak or malformed configurations', () => {
    assert.throws(() => checkTurnConfig({ secret: 'short', urls: ['turn:a'] }), RangeError);
    assert.throws(() => checkTurnConfig({ secret: SECRET, urls: [] }), RangeError);
    assert.throws(() => checkTurnConfig({ secret: SECRET, urls: ['http://a'] }), RangeError);
    assert.throws(() => checkTurnConfig({ secret: SECRET, urls: ['turn:a'], ttlSeconds: 5 }), RangeError);
    assert.doesNotThrow(() => checkTurnConfig({ secret: SECRET, urls: ['turn:127.0.0.1:3478?transport=udp', 'stun:127.0.0.1:3478'] }));
  });

  it('GET /v1/calls/turn answers JSON credentials for the authenticated account', async () => {
    const now = Date.UTC(2030, 0, 1);
    const r = await router({ secret: SECRET, urls: ['turn:127.0.0.1:3478?transport=udp'], ttlSeconds: 3600 }, now).handle(request(true));
    assert.equal(r.status, 200);
    assert.equal(r.contentType, 'application/json');
    const body = JSON.parse(Buffer.from(r.body).toString('utf8')) as { username: string; credential: string; ttl: number; urls: string[] };
    assert.equal(body.username, `${now / 1000 + 3600}:${ACCOUNT}`);
    assert.equal(body.credential, await webcryptoHmacSha1Base64(SECRET, body.username));
    assert.deepEqual([body.ttl, body.urls], [3600, ['turn:127.0.0.1:3478?transport=udp']]);
  });

  it('requires credentials, and answers 404 SERVER_NOT_FOUND when no TURN server is configured', async () => {
    const unauth = await router({ secret: SECRET, urls: ['turn:a'] }, 0).handle(request(false));
    assert.deepEqual([unauth.status, unauth.code], [401, 'SERVER_UNAUTHORIZED']);
    const none = await router(undefined, 0).handle(request(true));
    assert.deepEqual([none.status, none.code], [404, 'SERVER_NOT_FOUND']);
  });
});
