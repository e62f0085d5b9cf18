// The blob store's resumable uploads on a real SQLite index and folder, without HTTP: the running hash
// survives chunks and is recomputed after a restart, a restart deletes partial files without a record,
// and parseRange's answers for each Range form. The BlobStore contract (blob-store-contract.ts) runs on
// the filesystem store here; blob-store-s3.test.ts runs it on the S3 store.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FilesystemBlobStore, type BlobLimits } from '../../../src/server/blobs/blob-store.ts';
import { ServerError } from '../../../src/server/errors.ts';
import type { AccountId } from '../../../src/server/ids.ts';
import { parseRange } from '../../../src/server/routes/blobs.ts';
import { openSqliteStorage } from '../../../src/server/storage/sqlite/index.ts';
import { blobStoreContract } from './blob-store-contract.ts';

const LIMITS: BlobLimits = { maxBlobBytes: 1 << 20, maxUploadBytes: 1 << 22, quotaBytes: 1 << 23, ttlMs: 1000, uploadTtlMs: 100, retention: 'expiry', fetchedGraceMs: 100 };
const alice = 'a1' as AccountId;
const idOf = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function* chunks(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}

describe('FilesystemBlobStore resumable uploads', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-blob-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('takes an upload without a blob id: the completing chunk names it, a missing id keeps the bytes and the running hash', async () => {
    const bytes = randomBytes(200_000);
    const storage = openSqliteStorage(dir);
    try {
      const store = new FilesystemBlobStore(path.join(dir, 'blobs'), storage.blobs, LIMITS);
      const created = await store.createUpload({ blobId: undefined, accountId: alice, length: bytes.length, now: 0 });
      assert.equal(created.kind, 'upload');
      if (created.kind !== 'upload') return;
      const { uploadId } = created.state;
      assert.equal(created.state.blobId, undefined);
      await store.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(bytes.subarray(0, 50_000)), now: 1 });
      await assert.rejects(
        store.appendUpload({ uploadId, accountId: alice, offset: 50_000, body: chunks(bytes.subarray(50_000)), now: 2 }),
        (err) => ServerError.is(err, 'SERVER_BAD_REQUEST') && err.headers?.['upload-offset'] === String(bytes.length),
      );
      assert.equal(await store.get(idOf(bytes), 2), undefined, 'nothing published');
      assert.deepEqual(await store.uploadState(uploadId, alice), { uploadId, blobId: undefined, offset: bytes.length, length: bytes.length });
      const done = await store.appendUpload({ uploadId, accountId: alice, offset: bytes.length, blobId: idOf(bytes), body: chunks(), now: 3 });
      assert.deepEqual([done.blobId, done.complete, done.created], [idOf(bytes), true, true]);
      assert.equal((await store.get(idOf(bytes), 3))?.size, bytes.length);

      // A named upload refuses another id before reading anything.
      const other = randomBytes(1000);
      const named = await store.createUpload({ blobId: idOf(other), accountId: alice, length: other.length, now: 4 });
      if (named.kind !== 'upload') throw new Error('expected an upload');
      await assert.rejects(store.appendUpload({ uploadId: named.state.uploadId, accountId: alice, offset: 0, blobId: idOf(bytes), body: chunks(other), now: 5 }), (err) => ServerError.is(err, 'SERVER_BAD_REQUEST'));
      assert.equal((await store.uploadState(named.state.uploadId, alice)).offset, 0);
      await store.cancelUpload(named.state.uploadId, alice);
    } finally {
      await storage.close();
    }
  });

  it('stores the bytes again when a blob\'s record outlived its file (deleted by the sweeper while it was uploaded again)', async () => {
    const bytes = randomBytes(5000);
    const storage = openSqliteStorage(dir);
    try {
      const store = new FilesystemBlobStore(path.join(dir, 'blobs'), storage.blobs, LIMITS);
      const id = idOf(bytes);
      assert.equal((await store.put({ id, accountId: alice, body: chunks(bytes), declaredLength: bytes.length, now: 0 })).created, true);
      rmSync(path.join(dir, 'blobs', id));
      assert.equal(await store.get(id, 1), undefined, 'a record without its file is not served');
      await store.put({ id, accountId: alice, body: chunks(bytes), declaredLength: bytes.length, now: 1 });
      assert.deepEqual(await (await store.get(id, 2))?.read(), new Uint8Array(bytes), 'the upload acknowledged is there');
    } finally {
      await storage.close();
    }
  });

  it('completes an upload begun before a restart (the hash is recomputed from the file)', async () => {
    const bytes = randomBytes(300_000);
    let storage = openSqliteStorage(dir);
    let store = new FilesystemBlobStore(path.join(dir, 'blobs'), storage.blobs, LIMITS);
    const created = await store.createUpload({ blobId: idOf(bytes), accountId: alice, length: bytes.length, now: 0 });
    assert.equal(created.kind, 'upload');
    if (created.kind !== 'upload') return;
    const { uploadId } = created.state;
    const first = await store.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(bytes.subarray(0, 1000), bytes.subarray(1000, 100_000)), now: 1 });
    assert.deepEqual([first.offset, first.complete], [100_000, false]);
    // A crash left a partial file without a record behind.
    writeFileSync(path.join(dir, 'blobs', 'uploads', 'f'.repeat(32)), 'orphan');
    await storage.close();

    storage = openSqliteStorage(dir);
    store = new FilesystemBlobStore(path.join(dir, 'blobs'), storage.blobs, LIMITS);
    assert.equal((await store.uploadState(uploadId, alice)).offset, 100_000);
    assert.deepEqual(readdirSync(path.join(dir, 'blobs', 'uploads')), [uploadId], 'the orphan is gone');
    await assert.rejects(store.uploadState(uploadId, 'b2' as AccountId), (err) => ServerError.is(err, 'SERVER_NOT_FOUND'));
    await assert.rejects(
      store.appendUpload({ uploadId, accountId: alice, offset: 99_999, body: chunks(bytes.subarray(99_999)), now: 2 }),
      (err) => ServerError.is(err, 'SERVER_CONFLICT') && err.headers?.['upload-offset'] === '100000',
    );
    const done = await store.appendUpload({ uploadId, accountId: alice, offset: 100_000, body: chunks(bytes.subarray(100_000)), now: 3 });
    assert.deepEqual([done.offset, done.complete, done.created], [bytes.length, true, true]);
    const blob = await store.get(idOf(bytes), 3);
    assert.equal(blob?.size, bytes.length);
    const middle: Buffer[] = [];
    for await (const part of blob?.open({ start: 10, end: 19 }) ?? []) middle.push(part as Buffer);
    assert.ok(Buffer.concat(middle).equals(bytes.subarray(10, 20)));
    assert.deepEqual(await store.createUpload({ blobId: idOf(bytes), accountId: alice, length: bytes.length, now: 4 }), { kind: 'stored', size: bytes.length });
    await storage.close();
  });

  it('expires an abandoned upload and frees its quota reservation', async () => {
    const storage = openSqliteStorage(dir);
    const store = new FilesystemBlobStore(path.join(dir, 'blobs'), storage.blobs, { ...LIMITS, quotaBytes: 1000 });
    const bytes = randomBytes(800);
    const created = await store.createUpload({ blobId: idOf(bytes), accountId: 'c3' as AccountId, length: 800, now: 0 });
    assert.equal(created.kind, 'upload');
    const other = randomBytes(300);
    await assert.rejects(store.createUpload({ blobId: idOf(other), accountId: 'c3' as AccountId, length: 300, now: 0 }), (err) => ServerError.is(err, 'SERVER_QUOTA_EXCEEDED'));
    assert.equal(await store.expireUploads(100), 0);
    assert.equal(await store.expireUploads(101), 1);
    if (created.kind === 'upload') assert.equal(existsSync(path.join(dir, 'blobs', 'uploads', created.state.uploadId)), false);
    assert.equal((await store.createUpload({ blobId: idOf(other), accountId: 'c3' as AccountId, length: 300, now: 101 })).kind, 'upload');
    await storage.close();
  });
});

const contractDir = mkdtempSync(path.join(tmpdir(), 'parley-blob-fs-contract-'));
after(() => rmSync(contractDir, { recursive: true, force: true }));
blobStoreContract('filesystem', {
  open: async (index, limits) => new FilesystemBlobStore(path.join(contractDir, 'blobs'), index, limits),
  close: async () => undefined,
  hasBlob: async (id) => existsSync(path.join(contractDir, 'blobs', id)),
  hasUploadData: async (uploadId) => existsSync(path.join(contractDir, 'blobs', 'uploads', uploadId)),
});

describe('parseRange', () => {
  const unsatisfiable = (err: unknown) => ServerError.is(err, 'SERVER_RANGE_NOT_SATISFIABLE') && err.headers?.['content-range'] === 'bytes */100';
  it('reads each form of a single byte range', () => {
    assert.equal(parseRange(undefined, 100), undefined);
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-1000', 100), { start: 0, end: 99 });
    assert.deepEqual(parseRange('bytes=50-1000', 100), { start: 50, end: 99 });
  });
  it('ignores what it does not serve and refuses ranges outside the blob', () => {
    for (const header of ['items=0-1', 'bytes=0-1,3-4', 'bytes=5-1', 'bytes=-', 'bytes=a-b']) assert.equal(parseRange(header, 100), undefined, header);
    for (const header of ['bytes=100-', 'bytes=200-300', 'bytes=-0']) assert.throws(() => parseRange(header, 100), unsatisfiable, header);
  });
});
