// The webhook verification sender against a local node:http server: the JSON it posts, and failures.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookVerificationSender } from '../../../src/server/services/webhook-verification-sender.ts';
import type { PhoneNumber } from '../../../src/server/ids.ts';
import { http, requestCode, register } from '../../support/server-client.ts';
import { startTestServer } from '../../support/server-harness.ts';

describe('webhook verification sender', () => {
  let gateway: Server;
  let url: string;
  let status = 200;
  const received: Array<{ method: string; type: string; body: unknown }> = [];

  before(async () => {
    gateway = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        received.push({ method: req.method ?? '', type: req.headers['content-type'] ?? '', body: JSON.parse(data) });
        res.writeHead(status).end('ok');
      });
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/sms`;
  });
  after(() => new Promise<void>((resolve) => gateway.close(() => resolve())));

  it('POSTs {number, code} as JSON', async () => {
    await new WebhookVerificationSender(url).send('+15550100007' as PhoneNumber, '123456');
    assert.deepEqual(received.at(-1), { method: 'POST', type: 'application/json', body: { number: '+15550100007', code: '123456' } });
  });

  it('rejects on a non-2xx answer and on an unreachable URL', async () => {
    status = 500;
    await assert.rejects(new WebhookVerificationSender(url).send('+15550100007' as PhoneNumber, '123456'), /500/);
    status = 200;
    await assert.rejects(new WebhookVerificationSender('http://127.0.0.1:1/none', 2000).send('+15550100007' as PhoneNumber, '123456'));
  });

  it('delivers codes that register, and maps a failing gateway to 503 SERVER_UNAVAILABLE', async () => {
    const t = await startTestServer({ verificationSender: { kind: 'webhook', url } });
    try {
      assert.equal((await requestCode(t.url, '+15550200001')).status, 200);
      const sent = received.at(-1)?.body as { number: string; code: string };
      assert.equal(sent.number, '+15550200001');
      await register(t.url, '+15550200001', sent.code);
      status = 502;
      const failed = await requestCode(t.url, '+15550200002');
      assert.deepEqual([failed.status, failed.code], [503, 'SERVER_UNAVAILABLE']);
      assert.ok(failed.retryAfter > 0);
      assert.equal((await http(t.url, 'GET', '/healthz')).status, 200);
    } finally {
      status = 200;
      await t.close();
    }
  });
});
