// nodeFetch (the terminal client's FetchLike over node:http) against a real loopback HTTP server: request
// method, headers and body arrive as sent; status, headers, whole bodies and streamed bodies come back; an
// abort before the response and one during a streamed body both reject; a refused connection rejects.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { nodeFetch } from '../../../src/cli/http-fetch.ts';

describe('nodeFetch', () => {
  let server: http.Server;
  let base = '';
  const seen: Array<{ method: string; url: string; auth: string | undefined; body: Buffer }> = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body: Buffer.concat(parts) });
        if (req.url === '/slow') {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.write(Buffer.alloc(1000, 1)); // then never ends
          return;
        }
        if (req.url === '/hang') return; // never answers
        res.writeHead(201, { 'x-parley-error': 'SERVER_TEST', 'set-cookie': ['a=1', 'b=2'] });
        res.end(Buffer.concat([Buffer.from('echo:'), Buffer.concat(parts)]));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends the method, headers and body, and reads status, headers and the whole body', async () => {
    const res = await nodeFetch(`${base}/v1/x`, { method: 'PATCH', headers: { authorization: 'Basic abc' }, body: new Uint8Array([1, 2, 3]) });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('X-Parley-Error'), 'SERVER_TEST');
    assert.equal(res.headers.get('set-cookie'), 'a=1, b=2');
    assert.equal(res.headers.get('missing'), null);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), new Uint8Array([...Buffer.from('echo:'), 1, 2, 3]));
    assert.deepEqual(seen.at(-1), { method: 'PATCH', url: '/v1/x', auth: 'Basic abc', body: Buffer.from([1, 2, 3]) });
  });

  it('streams a body through body.getReader()', async () => {
    const res = await nodeFetch(`${base}/stream`, { method: 'POST', headers: {}, body: new Uint8Array(70_000).fill(9) });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let n = 0;
    for (;;) {
      const step = await reader.read();
      if (step.done) break;
      n += step.value.length;
    }
    assert.equal(n, 5 + 70_000);
  });

  it('rejects when aborted before the response, and while a body is being read', async () => {
    const early = new AbortController();
    const pending = nodeFetch(`${base}/hang`, { method: 'GET', headers: {}, signal: early.signal });
    setTimeout(() => early.abort(new Error('stop')), 20);
    await assert.rejects(pending, /stop/);

    const late = new AbortController();
    const res = await nodeFetch(`${base}/slow`, { method: 'GET', headers: {}, signal: late.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    assert.equal((await reader.read()).value?.length, 1000);
    late.abort(new Error('gone'));
    await assert.rejects(reader.read());

    const already = new AbortController();
    already.abort(new Error('before'));
    await assert.rejects(nodeFetch(`${base}/v1/x`, { method: 'GET', headers: {}, signal: already.signal }), /before/);
  });

  it('rejects when nothing listens', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(nodeFetch(`http://127.0.0.1:${port}/`, { method: 'GET', headers: {} }));
  });
});
