// The S3 blob store against a real S3 server: Ceph's radosgw, in a network namespace of its own. Not a
// *.test.ts file: blob-store-s3.test.ts runs it through scripts/ceph-s3.sh, which starts Ceph and sets
// PARLEY_S3_URL. Runs the BlobStore contract, then what only S3 has: two nodes racing for one chunk, the
// cross-node blob lock, crashed uploads' leftovers, and radosgw going down in the middle of an upload.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { S3Bucket } from '../../../src/server/blobs/s3-bucket.ts';
import { createS3BlobStore, parseS3Url, type S3BlobStore } from '../../../src/server/blobs/s3-store.ts';
import { ServerError } from '../../../src/server/errors.ts';
import type { AccountId } from '../../../src/server/ids.ts';
import { openSqliteStorage, type SqliteStorage } from '../../../src/server/storage/sqlite/index.ts';
import { CEPH_SCRIPT, s3FromEnv, withBucket } from '../../support/s3.ts';
import { blobStoreContract, chunks, drain, idOf, LIMITS } from './blob-store-contract.ts';

const { url: baseUrl, cephDir } = s3FromEnv();
const bucketName = `parley-contract-${randomBytes(4).toString('hex')}`;
const url = withBucket(baseUrl, bucketName);

/** A client of its own for looking at the bucket, as an operator would. */
function bucketOf(storeUrl: string): { bucket: S3Bucket; client: S3Client } {
  const location = parseS3Url(storeUrl);
  const client = new S3Client(location.client);
  return { bucket: new S3Bucket(client, location.bucket, location.prefix), client };
}
const probe = bucketOf(url);
after(() => probe.client.destroy());

blobStoreContract('S3 on Ceph radosgw', {
  open: async (index, limits) => {
    const store = createS3BlobStore(url, index, limits);
    await store.init();
    return store;
  },
  close: async (store) => (store as S3BlobStore).close(),
  hasBlob: async (id) => (await probe.bucket.size(`blobs/${id}`)) !== undefined,
  hasUploadData: async (uploadId) => (await probe.bucket.list(`uploads/${uploadId}/`)).length > 0,
  // Nothing listens on port 1: S3 is down.
  openUnreachable: async (index, limits) => createS3BlobStore(withBucket(url, bucketName, 'http://127.0.0.1:1'), index, limits),
});

describe('S3 blob store: what only S3 has', () => {
  let dir: string;
  let storage: SqliteStorage;
  const stores: S3BlobStore[] = [];
  const node = async (pieceBytes?: number): Promise<S3BlobStore> => {
    const store = createS3BlobStore(url, storage.blobs, LIMITS, pieceBytes === undefined ? {} : { pieceBytes });
    await store.init();
    stores.push(store);
    return store;
  };
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'parley-blob-s3-'));
    storage = openSqliteStorage(dir);
  });
  after(async () => {
    for (const s of stores) s.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets exactly one of two nodes take a chunk both receive at the same offset', async () => {
    const [a, b] = [await node(64 * 1024), await node(64 * 1024)];
    const alice = 's3-race' as AccountId;
    const bytes = randomBytes(1024 * 1024);
    const id = idOf(bytes);
    const created = await a.createUpload({ blobId: id, accountId: alice, length: bytes.length, now: 0 });
    if (created.kind !== 'upload') throw new Error('expected an upload');
    const { uploadId } = created.state;
    const half = bytes.subarray(0, 512 * 1024);
    const results = await Promise.allSettled([
      a.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(half), now: 1 }),
      b.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(half), now: 1 }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    assert.equal(won.length, 1, 'one node takes the chunk');
    assert.equal(lost.length, 1);
    assert.ok(ServerError.is(lost[0]?.reason, 'SERVER_CONFLICT'), String(lost[0]?.reason));
    // Whatever was written is one chain: the upload continues from the offset either node reports.
    const offset = (await b.uploadState(uploadId, alice)).offset;
    assert.equal(offset, (await a.uploadState(uploadId, alice)).offset);
    const done = await b.appendUpload({ uploadId, accountId: alice, offset, body: chunks(bytes.subarray(offset)), now: 2 });
    assert.equal(done.complete, true);
    assert.ok(Buffer.from((await (await a.get(id, 3))?.read()) ?? []).equals(bytes));
  });

  it('serializes a blob lock across nodes and breaks one whose holder died', async () => {
    const one = bucketOf(url);
    const two = bucketOf(url);
    try {
      const log: string[] = [];
      const section = (who: string) => async () => {
        log.push(`${who} in`);
        await new Promise((resolve) => setTimeout(resolve, 150));
        log.push(`${who} out`);
      };
      await Promise.all([one.bucket.withLock('lock-test', 10_000, section('one')), two.bucket.withLock('lock-test', 10_000, section('two'))]);
      assert.ok(
        JSON.stringify(log) === JSON.stringify(['one in', 'one out', 'two in', 'two out']) || JSON.stringify(log) === JSON.stringify(['two in', 'two out', 'one in', 'one out']),
        log.join(', '),
      );
      // A holder that died: its lock object stays, with a lease that has run out.
      assert.ok(await one.bucket.create('locks/dead', new TextEncoder().encode(JSON.stringify({ token: 'x', expiresAt: Date.now() - 1 }))));
      const started = Date.now();
      assert.equal(await two.bucket.withLock('dead', 10_000, async () => 'taken'), 'taken');
      assert.ok(Date.now() - started < 5000);
      assert.equal(await one.bucket.size('locks/dead'), undefined, 'released');
      // A live lock is waited for, up to the lease and a little more, then a 503.
      assert.ok(await one.bucket.create('locks/held', new TextEncoder().encode(JSON.stringify({ token: 'y', expiresAt: Date.now() + 60_000 }))));
      await assert.rejects(two.bucket.withLock('held', 100, async () => 'never'), (err) => ServerError.is(err, 'SERVER_UNAVAILABLE'));
    } finally {
      one.client.destroy();
      two.client.destroy();
    }
  });

  it('init() deletes the pieces of uploads that have no record (a crash between the record and the pieces)', async () => {
    const orphan = 'e'.repeat(32);
    await probe.bucket.put(`uploads/${orphan}/0000000000000000`, new Uint8Array(100));
    const s = await node();
    const alice = 's3-orphans' as AccountId;
    const created = await s.createUpload({ blobId: undefined, accountId: alice, length: 1000, now: 0 });
    if (created.kind !== 'upload') throw new Error('expected an upload');
    await s.appendUpload({ uploadId: created.state.uploadId, accountId: alice, offset: 0, body: chunks(new Uint8Array(10)), now: 0 });
    await node();
    assert.deepEqual(await probe.bucket.list(`uploads/${orphan}/`), []);
    assert.equal((await probe.bucket.list(`uploads/${created.state.uploadId}/`)).length, 1, 'a live upload keeps its pieces');
  });

  it('never answers with bytes that are not there: an object deleted after get() fails read() and the stream; init() on a dead endpoint is a 503', async () => {
    const s = await node();
    const bytes = randomBytes(5000);
    const id = idOf(bytes);
    await s.put({ id, accountId: 's3-gone' as AccountId, body: chunks(bytes), declaredLength: bytes.length, now: 0 });
    const blob = await s.get(id, 0);
    assert.ok(blob !== undefined);
    await probe.bucket.delete(`blobs/${id}`);
    await assert.rejects(blob.read(), (err) => ServerError.is(err, 'SERVER_NOT_FOUND'));
    await assert.rejects(drain(blob.open()), (err) => ServerError.is(err, 'SERVER_UNAVAILABLE'));
    assert.equal(await s.get(id, 0), undefined, 'a record without its object is not served');
    const dead = createS3BlobStore(withBucket(url, bucketName, 'http://127.0.0.1:1'), storage.blobs, LIMITS);
    try {
      await assert.rejects(dead.init(), (err) => ServerError.is(err, 'SERVER_UNAVAILABLE'));
    } finally {
      dead.close();
    }
  });

  it('loses nothing acknowledged when radosgw stops in the middle of an upload, and resumes once it is back', async () => {
    const s = await node(256 * 1024);
    const alice = 's3-outage' as AccountId;
    const bytes = randomBytes(3 * 1024 * 1024);
    const id = idOf(bytes);
    const created = await s.createUpload({ blobId: undefined, accountId: alice, length: bytes.length, now: 0 });
    if (created.kind !== 'upload') throw new Error('expected an upload');
    const { uploadId } = created.state;
    await s.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(bytes.subarray(0, 1024 * 1024)), now: 1 });
    const other = randomBytes(4096);
    await s.put({ id: idOf(other), accountId: alice, body: chunks(other), declaredLength: other.length, now: 1 });

    const pid = Number(readFileSync(path.join(cephDir, 'run', 'client.rgw.gw.pid'), 'utf8'));
    process.kill(pid, 'SIGTERM');
    try {
      // Until it has gone the calls may still succeed; once it has, each is a typed 503.
      const gone = Date.now() + 15_000;
      while (Date.now() < gone && (await s.get(idOf(other), 2).then(() => true, () => false))) await new Promise((resolve) => setTimeout(resolve, 100));
      const unavailable = (err: unknown) => ServerError.is(err, 'SERVER_UNAVAILABLE');
      await assert.rejects(s.get(idOf(other), 2), unavailable);
      await assert.rejects(s.uploadState(uploadId, alice), unavailable);
      await assert.rejects(s.appendUpload({ uploadId, accountId: alice, offset: 1024 * 1024, body: chunks(bytes.subarray(1024 * 1024, 2 * 1024 * 1024)), now: 2 }), unavailable);
    } finally {
      execFileSync(CEPH_SCRIPT, ['start-radosgw'], { env: process.env, stdio: 'inherit' });
    }
    assert.ok(Buffer.from((await (await s.get(idOf(other), 3))?.read()) ?? []).equals(other), 'the blob stored before the outage');
    const offset = (await s.uploadState(uploadId, alice)).offset;
    assert.ok(offset >= 1024 * 1024 && offset % (256 * 1024) === 0, `resumes at a piece boundary at or after what was acknowledged (${offset})`);
    const done = await s.appendUpload({ uploadId, accountId: alice, offset, blobId: id, body: chunks(bytes.subarray(offset)), now: 4 });
    assert.equal(done.complete, true);
    assert.ok(Buffer.from((await (await s.get(id, 4))?.read()) ?? []).equals(bytes));
  });
});
