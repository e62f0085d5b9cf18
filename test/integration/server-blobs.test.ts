// Resumable blob uploads and range downloads against the real server over real HTTP (fetch and node:http):
// chunks, an upload cut off mid-chunk and resumed, offsets, hash mismatches, deduplication, ranges, quota
// with uploads in progress, expiry of abandoned uploads, authentication.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { PutBlobResponseSchema } from '../../src/protocol/gen/service_pb.ts';
import { startTestServer, type TestServer } from '../support/server-harness.ts';
import { basic, http, register, WsTestClient, type DeviceCredentials, type TestAccount } from '../support/server-client.ts';

const KIB = 1024;
const MIB = 1024 * KIB;
const idOf = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('resumable blob uploads and range downloads', () => {
  let t: TestServer;
  let alice: TestAccount;
  let bob: TestAccount;
  const blobsDir = () => path.join(t.dataDir, 'blobs');
  const uploadsDir = () => path.join(blobsDir(), 'uploads');

  before(async () => {
    t = await startTestServer({ limits: { maxBlobBytes: 2 * MIB, maxUploadBytes: 4 * MIB, blobQuotaBytes: 6 * MIB } });
    alice = await register(t.url, '+15550100001', '111111');
    bob = await register(t.url, '+15550100002', '222222');
  });
  after(() => t.close());

  const call = (method: string, p: string, auth: DeviceCredentials | undefined, headers: Record<string, string> = {}, body?: Uint8Array) =>
    fetch(`${t.url}${p}`, { method, headers: { ...(auth === undefined ? {} : { authorization: basic(auth) }), ...headers }, body: body === undefined ? undefined : new Uint8Array(body) });

  const create = (bytes: Uint8Array, auth: DeviceCredentials = alice, length = bytes.length) =>
    call('POST', '/v1/blobs/uploads', auth, { 'upload-blob-id': idOf(bytes), 'upload-length': String(length) });

  async function start(bytes: Uint8Array, auth: DeviceCredentials = alice): Promise<string> {
    const r = await create(bytes, auth);
    assert.equal(r.status, 201, `create: ${r.status} ${r.headers.get('x-parley-error')}`);
    const id = r.headers.get('upload-id') ?? '';
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(r.headers.get('location'), `/v1/blobs/uploads/${id}`);
    return id;
  }

  const patch = (id: string, offset: number, chunk: Uint8Array, auth: DeviceCredentials = alice) =>
    call('PATCH', `/v1/blobs/uploads/${id}`, auth, { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }, chunk);

  async function offsetOf(id: string, auth: DeviceCredentials = alice): Promise<number> {
    const r = await call('HEAD', `/v1/blobs/uploads/${id}`, auth);
    assert.equal(r.status, 200);
    return Number(r.headers.get('upload-offset'));
  }

  const getBlob = (id: string, range?: string) => call('GET', `/v1/blobs/${id}`, alice, range === undefined ? {} : { range });

  it('uploads in three chunks, reports the offset after each, and publishes the verified blob', async () => {
    const bytes = randomBytes(700 * KIB);
    const id = await start(bytes);
    assert.equal(await offsetOf(id), 0);
    const cuts = [0, 250 * KIB, 500 * KIB, bytes.length];
    for (let i = 0; i < 3; i++) {
      const r = await patch(id, cuts[i] as number, bytes.subarray(cuts[i], cuts[i + 1]));
      assert.equal(r.headers.get('upload-offset'), String(cuts[i + 1]));
      if (i < 2) {
        assert.equal(r.status, 204);
        assert.equal(await offsetOf(id), cuts[i + 1]);
        assert.equal((await getBlob(idOf(bytes))).status, 404, 'not published before it is complete');
      } else {
        assert.equal(r.status, 200);
        const response = fromBinary(PutBlobResponseSchema, new Uint8Array(await r.arrayBuffer()));
        assert.equal(response.blobId, idOf(bytes));
        assert.equal(response.size, BigInt(bytes.length));
      }
    }
    const got = await getBlob(idOf(bytes));
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes));
    assert.deepEqual(readdirSync(uploadsDir()), [], 'the partial file became the blob');
    assert.equal((await call('HEAD', `/v1/blobs/uploads/${id}`, alice)).status, 404, 'a completed upload is gone');
  });

  it('resumes an upload cut off mid-chunk from the offset the server reports', async () => {
    const bytes = randomBytes(1 * MIB);
    const id = await start(bytes);
    const sent = 300 * KIB;
    await new Promise<void>((resolve) => {
      const req = request(`${t.url}/v1/blobs/uploads/${id}`, {
        method: 'PATCH',
        headers: { authorization: basic(alice), 'upload-offset': '0', 'content-length': bytes.length },
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(bytes.subarray(0, sent), () => setTimeout(() => req.destroy(), 50));
    });
    // The server notices the closed connection asynchronously; until then the upload is busy (409).
    let offset = -1;
    for (let i = 0; i < 200; i++) {
      const r = await patch(id, 0, new Uint8Array(0));
      if (r.status === 409) {
        offset = Number(r.headers.get('upload-offset'));
        if (offset === sent) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(offset, sent, 'every byte that arrived was kept');
    assert.equal(await offsetOf(id), sent);
    const rest = await patch(id, offset, bytes.subarray(offset));
    assert.equal(rest.status, 200);
    const got = await getBlob(idOf(bytes));
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes));
  });

  it('refuses a chunk at the wrong offset with 409 and the current offset, and one beyond the length', async () => {
    const bytes = randomBytes(100 * KIB);
    const id = await start(bytes);
    assert.equal((await patch(id, 0, bytes.subarray(0, 40 * KIB))).status, 204);
    for (const wrong of [0, 20 * KIB, 60 * KIB]) {
      const r = await patch(id, wrong, bytes.subarray(wrong, wrong + 10 * KIB));
      assert.equal(r.status, 409);
      assert.equal(r.headers.get('x-parley-error'), 'SERVER_CONFLICT');
      assert.equal(r.headers.get('upload-offset'), String(40 * KIB));
    }
    const missing = await call('PATCH', `/v1/blobs/uploads/${id}`, alice, {}, bytes.subarray(40 * KIB));
    assert.equal(missing.status, 400, 'Upload-Offset is required');
    const tooLong = await patch(id, 40 * KIB, randomBytes(61 * KIB));
    assert.equal(tooLong.status, 400);
    assert.equal(await offsetOf(id), 40 * KIB, 'nothing of the refused chunk was written');
    assert.equal((await patch(id, 40 * KIB, bytes.subarray(40 * KIB))).status, 200);
  });

  it('refuses an upload whose bytes do not hash to the blob id and keeps nothing of it', async () => {
    const bytes = randomBytes(200 * KIB);
    const id = await start(bytes);
    assert.equal((await patch(id, 0, bytes.subarray(0, 100 * KIB))).status, 204);
    const other = randomBytes(100 * KIB);
    const r = await patch(id, 100 * KIB, other);
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('x-parley-error'), 'SERVER_BAD_REQUEST');
    assert.equal((await getBlob(idOf(bytes))).status, 404);
    assert.equal(existsSync(path.join(blobsDir(), idOf(bytes))), false);
    assert.deepEqual(readdirSync(uploadsDir()), []);
    assert.equal((await call('HEAD', `/v1/blobs/uploads/${id}`, alice)).status, 404, 'the upload was deleted');
  });

  it('needs no upload for a stored blob (a forwarded file), and hands back an unfinished upload of the same blob', async () => {
    const bytes = randomBytes(50 * KIB);
    assert.equal((await http(t.url, 'PUT', `/v1/blobs/${idOf(bytes)}`, { auth: alice, body: bytes })).status, 200);
    const again = await create(bytes, bob);
    assert.equal(again.status, 200, 'already stored');
    assert.equal(again.headers.get('upload-id'), null);
    assert.equal(again.headers.get('upload-offset'), String(bytes.length));
    assert.equal(fromBinary(PutBlobResponseSchema, new Uint8Array(await again.arrayBuffer())).blobId, idOf(bytes));
    assert.equal((await create(bytes, bob, bytes.length + 1)).status, 400, 'a stored blob has one length');

    const fresh = randomBytes(80 * KIB);
    const id = await start(fresh);
    assert.equal((await patch(id, 0, fresh.subarray(0, 30 * KIB))).status, 204);
    const resumed = await create(fresh);
    assert.equal(resumed.status, 201);
    assert.equal(resumed.headers.get('upload-id'), id, 'the same upload');
    assert.equal(resumed.headers.get('upload-offset'), String(30 * KIB));
    assert.equal((await call('DELETE', `/v1/blobs/uploads/${id}`, alice)).status, 204);
    assert.equal((await call('HEAD', `/v1/blobs/uploads/${id}`, alice)).status, 404);
  });

  it('serves byte ranges: first bytes, middle, suffix, open-ended, and 416 outside the blob', async () => {
    const bytes = randomBytes(10_000);
    const id = idOf(bytes);
    assert.equal((await http(t.url, 'PUT', `/v1/blobs/${id}`, { auth: alice, body: bytes })).status, 200);
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 9],
      ['bytes=4000-5999', 4000, 5999],
      ['bytes=-100', 9900, 9999],
      ['bytes=9990-', 9990, 9999],
      ['bytes=9000-20000', 9000, 9999],
      ['bytes=-20000', 0, 9999],
    ];
    for (const [range, start, end] of cases) {
      const r = await getBlob(id, range);
      assert.equal(r.status, 206, range);
      assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/10000`, range);
      assert.equal(r.headers.get('content-length'), String(end - start + 1), range);
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(bytes.subarray(start, end + 1)), range);
    }
    for (const range of ['bytes=10000-', 'bytes=20000-30000', 'bytes=-0']) {
      const r = await getBlob(id, range);
      assert.equal(r.status, 416, range);
      assert.equal(r.headers.get('x-parley-error'), 'SERVER_RANGE_NOT_SATISFIABLE');
      assert.equal(r.headers.get('content-range'), 'bytes */10000');
    }
    const whole = await getBlob(id, 'bytes=0-1,5-6');
    assert.equal(whole.status, 200, 'several ranges: the whole blob');
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.equal((await whole.arrayBuffer()).byteLength, 10_000);
    const head = await call('HEAD', `/v1/blobs/${id}`, alice);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '10000');
  });

  it('counts uploads in progress against the quota and refuses uploads above the limit', async () => {
    const carol = await register(t.url, '+15550100003', '333333');
    const big = randomBytes(4 * MIB + 1);
    const tooBig = await create(big, carol);
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.headers.get('x-parley-error'), 'SERVER_PAYLOAD_TOO_LARGE');
    const first = randomBytes(4 * MIB);
    const id = await start(first, carol);
    assert.equal((await patch(id, 0, first.subarray(0, 10 * KIB), carol)).status, 204);
    const second = randomBytes(3 * MIB);
    const over = await create(second, carol);
    assert.equal(over.status, 507, 'the 4 MiB reserved by the unfinished upload count');
    assert.equal(over.headers.get('x-parley-error'), 'SERVER_QUOTA_EXCEEDED');
    const onePut = randomBytes(2 * MIB + 1 - MIB);
    assert.equal((await http(t.url, 'PUT', `/v1/blobs/${idOf(onePut)}`, { auth: carol, body: onePut })).status, 200, 'within what is left');
    const secondPut = randomBytes(1 * MIB);
    assert.equal((await http(t.url, 'PUT', `/v1/blobs/${idOf(secondPut)}`, { auth: carol, body: secondPut })).status, 507, 'a single PUT counts uploads too');
    assert.equal((await call('DELETE', `/v1/blobs/uploads/${id}`, carol)).status, 204);
    assert.equal((await create(second, carol)).status, 201, 'the cancelled upload freed its reservation');
  });

  it('deletes uploads without a chunk for 24 hours', async () => {
    const dave = await register(t.url, '+15550100004', '444444');
    const bytes = randomBytes(64 * KIB);
    const id = await start(bytes, dave);
    assert.equal((await patch(id, 0, bytes.subarray(0, 32 * KIB), dave)).status, 204);
    t.clock.advance(23 * 60 * 60_000);
    await t.server.app.sweep();
    assert.equal(await offsetOf(id, dave), 32 * KIB, 'not expired yet');
    assert.equal((await patch(id, 32 * KIB, bytes.subarray(32 * KIB, 48 * KIB), dave)).status, 204, 'a chunk restarts the expiry');
    t.clock.advance(23 * 60 * 60_000);
    await t.server.app.sweep();
    assert.equal(await offsetOf(id, dave), 48 * KIB, 'not expired yet');
    t.clock.advance(60 * 60_000 + 1);
    assert.ok((await t.server.app.sweep()).blobUploads >= 1);
    assert.equal(existsSync(path.join(uploadsDir(), id)), false);
    assert.equal((await call('HEAD', `/v1/blobs/uploads/${id}`, dave)).status, 404);
    assert.equal((await patch(id, 48 * KIB, bytes.subarray(48 * KIB), dave)).status, 404);
  });

  it('refuses unauthenticated requests, other accounts, and the WebSocket', async () => {
    const bytes = randomBytes(10 * KIB);
    const id = await start(bytes);
    assert.equal((await call('POST', '/v1/blobs/uploads', undefined, { 'upload-blob-id': idOf(bytes), 'upload-length': String(bytes.length) })).status, 401);
    assert.equal((await call('HEAD', `/v1/blobs/uploads/${id}`, undefined)).status, 401);
    assert.equal((await call('PATCH', `/v1/blobs/uploads/${id}`, undefined, { 'upload-offset': '0' }, bytes)).status, 401);
    assert.equal((await call('DELETE', `/v1/blobs/uploads/${id}`, undefined)).status, 401);
    assert.equal((await call('GET', `/v1/blobs/${idOf(bytes)}`, undefined, { range: 'bytes=0-1' })).status, 401);
    assert.equal(await offsetOf(id), 0, 'nothing was written');
    assert.equal((await call('HEAD', `/v1/blobs/uploads/${id}`, bob)).status, 404, "another account's upload does not exist for bob");
    assert.equal((await patch(id, 0, bytes, bob)).status, 404);
    assert.equal((await call('HEAD', '/v1/blobs/uploads/not-an-upload-id', alice)).status, 404);
    const socket = await WsTestClient.connect(t.wsUrl, alice);
    try {
      assert.equal((await socket.request('GET', `/v1/blobs/uploads/${id}`)).status, 400, 'HTTP only');
      assert.equal((await socket.request('PATCH', `/v1/blobs/uploads/${id}`, bytes)).status, 400);
    } finally {
      await socket.close();
    }
    assert.equal((await patch(id, 0, bytes)).status, 200);
  });
});

describe('resumable uploads whose blob id comes with the last chunk', () => {
  let t: TestServer;
  let alice: TestAccount;
  let dataDir: string;

  before(async () => {
    t = await startTestServer({ limits: { maxUploadBytes: 4 * MIB, blobQuotaBytes: 8 * MIB } });
    dataDir = t.dataDir;
    alice = await register(t.url, '+15550100003', '333333');
  });
  after(() => t.close());

  const call = (method: string, p: string, headers: Record<string, string> = {}, body?: Uint8Array) =>
    fetch(`${t.url}${p}`, { method, headers: { authorization: basic(alice), ...headers }, body: body === undefined ? undefined : new Uint8Array(body) });

  /** Starts an upload of `length` bytes without naming the blob. */
  async function startWithoutId(length: number): Promise<string> {
    const r = await call('POST', '/v1/blobs/uploads', { 'upload-length': String(length) });
    assert.equal(r.status, 201, `create: ${r.status} ${r.headers.get('x-parley-error')}`);
    assert.equal(r.headers.get('upload-blob-id'), null, 'no blob id yet');
    assert.equal(r.headers.get('upload-offset'), '0');
    return r.headers.get('upload-id') ?? '';
  }

  const patch = (id: string, offset: number, chunk: Uint8Array, blobId?: string) =>
    call('PATCH', `/v1/blobs/uploads/${id}`, { 'upload-offset': String(offset), ...(blobId === undefined ? {} : { 'upload-blob-id': blobId }) }, chunk);

  async function head(id: string): Promise<Response> {
    const r = await call('HEAD', `/v1/blobs/uploads/${id}`);
    assert.equal(r.status, 200);
    return r;
  }

  const partialExists = (id: string) => existsSync(path.join(dataDir, 'blobs', 'uploads', id));

  it('takes chunks without an id and publishes the blob the last chunk names', async () => {
    const bytes = randomBytes(700 * KIB);
    const id = await startWithoutId(bytes.length);
    assert.equal((await patch(id, 0, bytes.subarray(0, 300 * KIB))).status, 204);
    const state = await head(id);
    assert.equal(state.headers.get('upload-blob-id'), null, 'HEAD names no blob id');
    assert.equal(state.headers.get('upload-offset'), String(300 * KIB));
    assert.equal((await patch(id, 300 * KIB, bytes.subarray(300 * KIB, 600 * KIB))).status, 204);
    const last = await patch(id, 600 * KIB, bytes.subarray(600 * KIB), idOf(bytes));
    assert.equal(last.status, 200);
    const response = fromBinary(PutBlobResponseSchema, new Uint8Array(await last.arrayBuffer()));
    assert.deepEqual([response.blobId, response.size], [idOf(bytes), BigInt(bytes.length)]);
    const got = await call('GET', `/v1/blobs/${idOf(bytes)}`);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes));
    assert.equal((await call('HEAD', `/v1/blobs/uploads/${id}`)).status, 404, 'the upload is done');
  });

  it('refuses a last chunk without an id (400, nothing published, bytes kept); an empty chunk with the id then finishes', async () => {
    const bytes = randomBytes(200 * KIB);
    const id = await startWithoutId(bytes.length);
    assert.equal((await patch(id, 0, bytes.subarray(0, 100 * KIB))).status, 204);
    const missing = await patch(id, 100 * KIB, bytes.subarray(100 * KIB));
    assert.deepEqual([missing.status, missing.headers.get('x-parley-error')], [400, 'SERVER_BAD_REQUEST']);
    assert.equal(missing.headers.get('upload-offset'), String(bytes.length));
    assert.equal((await call('GET', `/v1/blobs/${idOf(bytes)}`)).status, 404, 'nothing published');
    assert.equal((await head(id)).headers.get('upload-offset'), String(bytes.length), 'the bytes stay');
    assert.equal((await patch(id, bytes.length, new Uint8Array(0))).status, 400, 'still no id');
    const finish = await patch(id, bytes.length, new Uint8Array(0), idOf(bytes));
    assert.equal(finish.status, 200);
    const got = await call('GET', `/v1/blobs/${idOf(bytes)}`);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes));
  });

  it('deletes the upload when the bytes do not hash to the id the last chunk names', async () => {
    const bytes = randomBytes(64 * KIB);
    const id = await startWithoutId(bytes.length);
    assert.equal((await patch(id, 0, bytes.subarray(0, 32 * KIB))).status, 204);
    const wrong = randomBytes(32).toString('hex');
    const r = await patch(id, 32 * KIB, bytes.subarray(32 * KIB), wrong);
    assert.deepEqual([r.status, r.headers.get('x-parley-error')], [400, 'SERVER_BAD_REQUEST']);
    assert.equal((await call('HEAD', `/v1/blobs/uploads/${id}`)).status, 404, 'the upload is gone');
    assert.equal(partialExists(id), false);
    assert.equal((await call('GET', `/v1/blobs/${wrong}`)).status, 404);
    assert.equal((await call('GET', `/v1/blobs/${idOf(bytes)}`)).status, 404);
    assert.equal((await patch(await startWithoutId(10), 0, new Uint8Array(10), 'NOT-HEX')).status, 400, 'a malformed id is refused');
  });

  it('holds an upload started with an id to that id: a differing one is refused and changes nothing, none is needed', async () => {
    const bytes = randomBytes(48 * KIB);
    const created = await call('POST', '/v1/blobs/uploads', { 'upload-blob-id': idOf(bytes), 'upload-length': String(bytes.length) });
    assert.equal(created.status, 201);
    const id = created.headers.get('upload-id') ?? '';
    const differing = await patch(id, 0, bytes, randomBytes(32).toString('hex'));
    assert.deepEqual([differing.status, differing.headers.get('x-parley-error')], [400, 'SERVER_BAD_REQUEST']);
    assert.equal((await head(id)).headers.get('upload-offset'), '0', 'nothing was written');
    assert.equal((await head(id)).headers.get('upload-blob-id'), idOf(bytes));
    assert.equal((await patch(id, 0, bytes.subarray(0, 16 * KIB), idOf(bytes))).status, 204, 'the same id is fine');
    assert.equal((await patch(id, 16 * KIB, bytes.subarray(16 * KIB))).status, 200, 'the last chunk need not repeat it');
    assert.equal((await call('POST', '/v1/blobs/uploads', {})).status, 400, 'Upload-Length is still required');
    assert.equal((await call('POST', '/v1/blobs/uploads', { 'upload-blob-id': 'xyz', 'upload-length': '10' })).status, 400);
  });

  it('continues an upload without an id after a server restart (the hash is recomputed from the partial file)', async () => {
    const bytes = randomBytes(900 * KIB);
    const id = await startWithoutId(bytes.length);
    assert.equal((await patch(id, 0, bytes.subarray(0, 400 * KIB))).status, 204);
    await t.close({ keepData: true });
    t = await startTestServer({ dataDir, limits: { maxUploadBytes: 4 * MIB, blobQuotaBytes: 8 * MIB } });
    const state = await head(id);
    assert.equal(state.headers.get('upload-offset'), String(400 * KIB));
    assert.equal(state.headers.get('upload-blob-id'), null);
    assert.equal((await patch(id, 400 * KIB, bytes.subarray(400 * KIB, 800 * KIB))).status, 204);
    assert.equal((await patch(id, 800 * KIB, bytes.subarray(800 * KIB), idOf(bytes))).status, 200);
    const got = await call('GET', `/v1/blobs/${idOf(bytes)}`);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes));
  });
});
