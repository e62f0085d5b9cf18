// The router in-process (no socket), as Hono's app.request: matching, authentication, and the one
// error mapping. Also: request logs name route patterns, never raw paths (which can hold a number).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createApp, type App } from '../../../src/server/app.ts';
import { Authenticator } from '../../../src/server/auth/authenticator.ts';
import { resolveConfig } from '../../../src/server/config.ts';
import { ServerError, ServerErrorCode } from '../../../src/server/errors.ts';
import { Router, type RouterRequest } from '../../../src/server/http/router.ts';
import { createLogger } from '../../../src/server/log.ts';
import { ServerMetrics } from '../../../src/server/metrics.ts';
import type { AccountStore } from '../../../src/server/storage/stores.ts';
import { assertCleanLog } from '../../support/server-harness.ts';

const request = (verb: string, p: string, extra: Partial<RouterRequest> = {}): RouterRequest => ({
  verb,
  path: p,
  body: new Uint8Array(),
  remoteAddress: '127.0.0.1',
  transport: 'http',
  auth: { credentials: undefined },
  ...extra,
});

describe('router (in-process)', () => {
  let app: App;
  let dir: string;
  const lines: string[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'parley-router-test-'));
    app = await createApp(resolveConfig({ dataDir: dir, logLevel: 'debug', logDestination: { write: (l: string) => void lines.push(l) } }));
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /healthz without a socket', async () => {
    const r = await app.router.handle(request('GET', '/healthz'));
    assert.deepEqual([r.status, Buffer.from(r.body).toString(), r.contentType], [200, 'ok', 'text/plain; charset=utf-8']);
  });

  it('answers unknown paths and verbs with 404 SERVER_UNKNOWN_PATH', async () => {
    for (const [verb, p] of [['GET', '/nope'], ['DELETE', '/healthz'], ['GET', 'healthz'], ['GET', '/v1/keys/a/b/c']]) {
      const r = await app.router.handle(request(verb as string, p as string));
      assert.deepEqual([r.status, r.code], [404, 'SERVER_UNKNOWN_PATH'], `${verb} ${p}`);
    }
  });

  it('requires credentials on device routes', async () => {
    const r = await app.router.handle(request('GET', '/v1/accounts/whoami'));
    assert.deepEqual([r.status, r.code], [401, 'SERVER_UNAUTHORIZED']);
  });

  it('logs route patterns, never raw paths', async () => {
    await app.router.handle(request('GET', '/v1/accounts/lookup/+15559876543'));
    const log = lines.join('');
    assert.ok(log.includes('"route":"GET /v1/accounts/lookup/:number"'));
    assertCleanLog(log);
  });

  it('maps ServerErrors to their status and code, and anything else to a bare 500 logged at error level', async () => {
    const errors: string[] = [];
    const logger = createLogger('info', { write: (l: string) => void errors.push(l) });
    const accounts = { device: async () => undefined } as unknown as AccountStore;
    const router = new Router(
      [
        { verb: 'GET', path: '/limited', auth: false, handle: async () => { throw new ServerError(ServerErrorCode.RateLimited, 'slow down', { retryAfterMs: 1500 }); } },
        { verb: 'GET', path: '/bug', auth: false, handle: async () => { throw new TypeError('secret internals'); } },
      ],
      new Authenticator(accounts),
      new ServerMetrics(async () => 0),
      logger,
    );
    const limited = await router.handle(request('GET', '/limited'));
    assert.deepEqual([limited.status, limited.code, limited.message, limited.retryAfterMs], [429, 'SERVER_RATE_LIMITED', 'slow down', 1500]);
    const bug = await router.handle(request('GET', '/bug'));
    assert.deepEqual([bug.status, bug.code, bug.message], [500, 'SERVER_INTERNAL', 'internal error']);
    assert.equal(errors.filter((l) => (JSON.parse(l) as { level: number }).level === 50).length, 1, 'one error-level line for the bug');
  });

  it('exports request latency, connections and queue depth metrics', async () => {
    const r = await app.router.handle(request('GET', '/metrics'));
    const text = Buffer.from(r.body).toString();
    for (const name of ['parley_request_duration_seconds_bucket', 'parley_ws_connections', 'parley_messages_stored_total', 'parley_messages_delivered_total', 'parley_queue_depth']) {
      assert.ok(text.includes(name), name);
    }
    assert.ok(text.includes('route="GET /healthz",transport="http",status="200"'));
  });
});
