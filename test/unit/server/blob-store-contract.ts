// The BlobStore contract: one set of cases every backend must pass (run by blob-store.test.ts on the
// filesystem store and by blob-store-s3.test.ts on the S3 store against Ceph). The index is real (SQLite in
// a temporary folder); "another node" is a second store instance on the same index and the same bytes.
// Each case checks the backend's own storage too (files or objects gone after expiry, cancel and
// completion), through the probes the backend hands in.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { BlobLimits, BlobStore } from '../../../src/server/blobs/blob-store.ts';
import { ServerError } from '../../../src/server/errors.ts';
import type { AccountId, DeviceId, PhoneNumber } from '../../../src/server/ids.ts';
import { openSqliteStorage, type SqliteStorage } from '../../../src/server/storage/sqlite/index.ts';
import type { BlobIndex } from '../../../src/server/storage/stores.ts';

const MIB = 1024 * 1024;

/** What a backend hands the contract. */
export interface BlobBackend {
  /** A store on `index` (each call is another node sharing the same bytes). */
  open(index: BlobIndex, limits: BlobLimits): Promise<BlobStore>;
  /** Releases a store from {@link open}. */
  close(store: BlobStore): Promise<void>;
  /** Whether the bytes of blob `id` are in the backend's storage (a file, an object). */
  hasBlob(id: string): Promise<boolean>;
  /** Whether anything of upload `uploadId` is left in the backend's storage. */
  hasUploadData(uploadId: string): Promise<boolean>;
  /** A store whose storage cannot be reached (S3 down); absent when the backend has no such state. */
  openUnreachable?(index: BlobIndex, limits: BlobLimits): Promise<BlobStore>;
}

export const LIMITS: BlobLimits = {
  maxBlobBytes: 32 * MIB,
  maxUploadBytes: 512 * MIB,
  quotaBytes: 1024 * MIB,
  ttlMs: 1000,
  uploadTtlMs: 100,
  retention: 'expiry',
  fetchedGraceMs: 100,
};

export const idOf = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export async function* chunks(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}

/** A body that yields `parts`, then fails as a dropped connection does. */
async function* cutOff(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
  throw new Error('connection reset');
}

export async function drain(stream: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const part of stream as AsyncIterable<Buffer>) out.push(part);
  return Buffer.concat(out);
}

let accounts = 0;
/** A fresh account for each case, so that quotas do not meet. */
const account = (): AccountId => `acct${++accounts}` as AccountId;

/** Expects an upload to be created (not found stored). */
async function newUpload(store: BlobStore, blobId: string | undefined, accountId: AccountId, length: number, now = 0): Promise<string> {
  const created = await store.createUpload({ blobId, accountId, length, now });
  if (created.kind !== 'upload') throw new Error(`expected an upload, got ${created.kind}`);
  return created.state.uploadId;
}

const is = (code: string) => (err: unknown) => ServerError.is(err) && err.code === code;

/**
 * Deterministic bytes, produced 1 MiB at a time (the 100 MB case never holds the blob): MiB `i` is the
 * AES-128-CTR keystream of a key from `seed` at counter block `i`. Returns a body of any range of them and
 * the SHA-256 of all `length` bytes.
 */
function generated(seed: number, length: number, sliceBytes = 64 * 1024): { slices: (from: number, to: number) => AsyncIterable<Uint8Array>; idOfAll: () => string } {
  const key = createHash('sha256').update(`seed ${seed}`).digest().subarray(0, 16);
  const zeros = Buffer.alloc(MIB);
  const block = (i: number): Buffer => {
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(i, 12);
    return createCipheriv('aes-128-ctr', key, iv).update(zeros);
  };
  async function* slices(from: number, to: number): AsyncIterable<Uint8Array> {
    for (let at = from; at < to; ) {
      const i = Math.floor(at / MIB);
      const b = block(i);
      const start = at - i * MIB;
      const stop = Math.min(MIB, to - i * MIB);
      for (let o = start; o < stop; o += sliceBytes) yield b.subarray(o, Math.min(stop, o + sliceBytes));
      at = i * MIB + stop;
    }
  }
  const idOfAll = (): string => {
    const hash = createHash('sha256');
    for (let i = 0; i * MIB < length; i++) hash.update(block(i).subarray(0, Math.min(MIB, length - i * MIB)));
    return hash.digest('hex');
  };
  return { slices, idOfAll };
}

/** The garbage collector, exposed at run time (a baseline without the garbage of the cases before). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Runs `fn` while sampling RSS every 10 ms, after a full collection; returns its result and the largest
 * growth over the start. Buffers of a MiB and more are mapped and unmapped whole, so RSS follows them.
 */
async function peakRssGrowth<T>(fn: () => Promise<T>): Promise<{ result: T; growth: number }> {
  collector()();
  const start = process.memoryUsage.rss();
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, growth: peak - start };
  } finally {
    clearInterval(timer);
  }
}

/** Defines the contract's cases for `backend` under `describe(name)`. */
export function blobStoreContract(name: string, backend: BlobBackend): void {
  describe(`BlobStore contract: ${name}`, () => {
    let dir: string;
    let storage: SqliteStorage;
    const open: BlobStore[] = [];
    const store = async (limits: BlobLimits = LIMITS): Promise<BlobStore> => {
      const s = await backend.open(storage.blobs, limits);
      open.push(s);
      return s;
    };
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'parley-blob-contract-'));
      storage = openSqliteStorage(dir);
    });
    after(async () => {
      for (const s of open) await backend.close(s);
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('stores a blob in one request and reads it back whole; a second put of the same bytes is idempotent', async () => {
      const s = await store();
      const alice = account();
      const bytes = randomBytes(300_000);
      const id = idOf(bytes);
      assert.deepEqual(await s.put({ id, accountId: alice, body: chunks(bytes.subarray(0, 1000), bytes.subarray(1000)), declaredLength: bytes.length, now: 0 }), { size: bytes.length, created: true });
      const blob = await s.get(id, 1);
      assert.equal(blob?.size, bytes.length);
      assert.ok(Buffer.from((await blob?.read()) ?? []).equals(bytes), 'read()');
      assert.ok((await drain(blob?.open())).equals(bytes), 'open()');
      assert.ok(await backend.hasBlob(id));
      assert.deepEqual(await s.put({ id, accountId: account(), body: chunks(bytes), declaredLength: undefined, now: 2 }), { size: bytes.length, created: false });
      assert.equal(await s.get(idOf(randomBytes(10)), 2), undefined, 'an unknown id');
      await assert.rejects(s.get('not-an-id', 2), is('SERVER_BAD_REQUEST'));
    });

    it('serves byte ranges, including the first and last bytes and ranges across chunk boundaries', async () => {
      const s = await store();
      const bytes = randomBytes(3 * MIB + 123);
      const id = idOf(bytes);
      await s.put({ id, accountId: account(), body: chunks(bytes), declaredLength: bytes.length, now: 0 });
      const blob = await s.get(id, 0);
      assert.ok(blob !== undefined);
      for (const [start, end] of [
        [0, 0],
        [0, 9],
        [MIB - 5, MIB + 5],
        [2 * MIB, 3 * MIB + 122],
        [bytes.length - 1, bytes.length - 1],
      ] as const) {
        assert.ok((await drain(blob.open({ start, end }))).equals(bytes.subarray(start, end + 1)), `bytes ${start}-${end}`);
      }
    });

    it('refuses bytes that do not hash to the id, a body above the limit and an empty one, and keeps nothing', async () => {
      const s = await store({ ...LIMITS, maxBlobBytes: 100_000 });
      const alice = account();
      const bytes = randomBytes(50_000);
      const wrong = idOf(randomBytes(50_000));
      await assert.rejects(s.put({ id: wrong, accountId: alice, body: chunks(bytes), declaredLength: undefined, now: 0 }), is('SERVER_BAD_REQUEST'));
      assert.equal(await s.get(wrong, 0), undefined);
      assert.equal(await backend.hasBlob(wrong), false);
      const big = randomBytes(100_001);
      await assert.rejects(s.put({ id: idOf(big), accountId: alice, body: chunks(big), declaredLength: big.length, now: 0 }), is('SERVER_PAYLOAD_TOO_LARGE'));
      await assert.rejects(s.put({ id: idOf(big), accountId: alice, body: chunks(big.subarray(0, 60_000), big.subarray(60_000)), declaredLength: undefined, now: 0 }), is('SERVER_PAYLOAD_TOO_LARGE'));
      await assert.rejects(s.put({ id: idOf(new Uint8Array(0)), accountId: alice, body: chunks(), declaredLength: 0, now: 0 }), is('SERVER_BAD_REQUEST'));
      assert.equal(await backend.hasBlob(idOf(big)), false);
    });

    it('continues an upload through another node: HEAD there gives the offset, the chunks alternate, either serves the blob', async () => {
      const nodeA = await store();
      const nodeB = await store();
      const alice = account();
      const bytes = randomBytes(2 * MIB + 4321);
      const id = idOf(bytes);
      const uploadId = await newUpload(nodeA, undefined, alice, bytes.length);
      const first = await nodeA.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(bytes.subarray(0, 700_000)), now: 1 });
      assert.deepEqual([first.offset, first.complete], [700_000, false]);
      assert.deepEqual(await nodeB.uploadState(uploadId, alice), { uploadId, blobId: undefined, offset: 700_000, length: bytes.length });
      await assert.rejects(nodeB.uploadState(uploadId, account()), is('SERVER_NOT_FOUND'), "another account's upload");
      await assert.rejects(
        nodeB.appendUpload({ uploadId, accountId: alice, offset: 600_000, body: chunks(bytes.subarray(600_000)), now: 2 }),
        (err) => ServerError.is(err, 'SERVER_CONFLICT') && err.headers?.['upload-offset'] === '700000',
      );
      await nodeB.appendUpload({ uploadId, accountId: alice, offset: 700_000, body: chunks(bytes.subarray(700_000, 1_500_000)), now: 3 });
      assert.equal((await nodeA.uploadState(uploadId, alice)).offset, 1_500_000);
      const done = await nodeA.appendUpload({ uploadId, accountId: alice, offset: 1_500_000, blobId: id, body: chunks(bytes.subarray(1_500_000)), now: 4 });
      assert.deepEqual([done.blobId, done.offset, done.complete, done.created], [id, bytes.length, true, true]);
      assert.ok(Buffer.from((await (await nodeB.get(id, 5))?.read()) ?? []).equals(bytes), 'served by the other node');
      await assert.rejects(nodeB.uploadState(uploadId, alice), is('SERVER_NOT_FOUND'), 'the upload is gone once complete');
      assert.equal(await backend.hasUploadData(uploadId), false);
      assert.deepEqual(await nodeB.createUpload({ blobId: id, accountId: account(), length: bytes.length, now: 6 }), { kind: 'stored', size: bytes.length });
    });

    it('takes chunks of uneven sizes (tiny, large, an empty one) and publishes the exact bytes', async () => {
      const s = await store();
      const alice = account();
      const bytes = randomBytes(17 * MIB + 5);
      const id = idOf(bytes);
      const uploadId = await newUpload(s, id, alice, bytes.length);
      const cuts = [0, 1, 8 * MIB + 1, 9 * MIB + 1, 9 * MIB + 1, 15 * MIB, bytes.length];
      let result;
      for (let i = 1; i < cuts.length; i++) {
        const from = cuts[i - 1] ?? 0;
        const to = cuts[i] ?? 0;
        result = await s.appendUpload({ uploadId, accountId: alice, offset: from, body: chunks(bytes.subarray(from, to)), now: i });
      }
      assert.deepEqual([result?.complete, result?.created], [true, true]);
      const blob = await s.get(id, 10);
      assert.ok((await drain(blob?.open() as Readable)).equals(bytes));
    });

    it('keeps what arrived before a body was cut off, and resumes there', async () => {
      const s = await store();
      const alice = account();
      const bytes = randomBytes(400_000);
      const id = idOf(bytes);
      const uploadId = await newUpload(s, id, alice, bytes.length);
      await assert.rejects(s.appendUpload({ uploadId, accountId: alice, offset: 0, body: cutOff(bytes.subarray(0, 150_000)), now: 1 }), /connection reset/);
      const offset = (await s.uploadState(uploadId, alice)).offset;
      assert.equal(offset, 150_000);
      await assert.rejects(s.appendUpload({ uploadId, accountId: alice, offset, body: chunks(bytes.subarray(offset), new Uint8Array(1)), now: 2 }), is('SERVER_BAD_REQUEST'), 'beyond the length');
      assert.equal((await s.uploadState(uploadId, alice)).offset, bytes.length, 'the bytes within the length are kept');
      const done = await s.appendUpload({ uploadId, accountId: alice, offset: bytes.length, body: chunks(), now: 3 });
      assert.equal(done.complete, true);
      assert.ok(Buffer.from((await (await s.get(id, 3))?.read()) ?? []).equals(bytes));
    });

    it('takes an upload without a blob id: a completing chunk without one keeps the bytes, an empty chunk with the id finishes', async () => {
      const s = await store();
      const alice = account();
      const bytes = randomBytes(200_000);
      const uploadId = await newUpload(s, undefined, alice, bytes.length);
      await s.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(bytes.subarray(0, 50_000)), now: 1 });
      await assert.rejects(
        s.appendUpload({ uploadId, accountId: alice, offset: 50_000, body: chunks(bytes.subarray(50_000)), now: 2 }),
        (err) => ServerError.is(err, 'SERVER_BAD_REQUEST') && err.headers?.['upload-offset'] === String(bytes.length),
      );
      assert.equal(await s.get(idOf(bytes), 2), undefined, 'nothing published');
      const other = await store();
      const done = await other.appendUpload({ uploadId, accountId: alice, offset: bytes.length, blobId: idOf(bytes), body: chunks(), now: 3 });
      assert.deepEqual([done.blobId, done.complete, done.created], [idOf(bytes), true, true]);
      assert.equal((await s.get(idOf(bytes), 3))?.size, bytes.length);
    });

    it('deletes an upload whose bytes do not hash to its id, and refuses another id before reading', async () => {
      const s = await store();
      const alice = account();
      const bytes = randomBytes(300_000);
      const claimed = idOf(randomBytes(300_000));
      const uploadId = await newUpload(s, claimed, alice, bytes.length);
      await assert.rejects(s.appendUpload({ uploadId, accountId: alice, offset: 0, blobId: idOf(bytes), body: chunks(bytes), now: 1 }), is('SERVER_BAD_REQUEST'));
      assert.equal((await s.uploadState(uploadId, alice)).offset, 0, 'nothing read');
      await s.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(bytes.subarray(0, 100_000)), now: 2 });
      await assert.rejects(s.appendUpload({ uploadId, accountId: alice, offset: 100_000, body: chunks(bytes.subarray(100_000)), now: 3 }), is('SERVER_BAD_REQUEST'));
      await assert.rejects(s.uploadState(uploadId, alice), is('SERVER_NOT_FOUND'));
      assert.equal(await s.get(claimed, 3), undefined);
      assert.equal(await backend.hasBlob(claimed), false);
      assert.equal(await backend.hasUploadData(uploadId), false);
    });

    it('holds each account to its quota: stored blobs and uploads in progress count, expired ones do not', async () => {
      const s = await store({ ...LIMITS, quotaBytes: 100_000 });
      const alice = account();
      const a = randomBytes(60_000);
      await s.put({ id: idOf(a), accountId: alice, body: chunks(a), declaredLength: a.length, now: 0 });
      const b = randomBytes(50_000);
      await assert.rejects(s.put({ id: idOf(b), accountId: alice, body: chunks(b), declaredLength: b.length, now: 0 }), is('SERVER_QUOTA_EXCEEDED'));
      await assert.rejects(s.put({ id: idOf(b), accountId: alice, body: chunks(b), declaredLength: undefined, now: 0 }), is('SERVER_QUOTA_EXCEEDED'), 'an undeclared length is checked at the end');
      assert.equal(await backend.hasBlob(idOf(b)), false);
      await assert.rejects(s.createUpload({ blobId: undefined, accountId: alice, length: 50_000, now: 0 }), is('SERVER_QUOTA_EXCEEDED'));
      const uploadId = await newUpload(s, undefined, alice, 40_000);
      await assert.rejects(s.createUpload({ blobId: undefined, accountId: alice, length: 1, now: 0 }), is('SERVER_QUOTA_EXCEEDED'), 'the upload reserves its length');
      await s.cancelUpload(uploadId, alice);
      assert.equal(await backend.hasUploadData(uploadId), false);
      await assert.rejects(s.cancelUpload(uploadId, alice), is('SERVER_NOT_FOUND'));
      // Once the first blob has expired it no longer counts.
      await s.expire(LIMITS.ttlMs + 1);
      assert.equal((await s.put({ id: idOf(b), accountId: alice, body: chunks(b), declaredLength: b.length, now: LIMITS.ttlMs + 1 })).created, true);
    });

    it('expiry deletes the bytes of old blobs and of abandoned uploads; a later upload of the same bytes works', async () => {
      const s = await store();
      const alice = account();
      const bytes = randomBytes(70_000);
      const id = idOf(bytes);
      await s.put({ id, accountId: alice, body: chunks(bytes), declaredLength: bytes.length, now: 10_000 });
      const partial = randomBytes(90_000);
      const uploadId = await newUpload(s, idOf(partial), alice, partial.length, 10_000);
      await s.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(partial.subarray(0, 30_000)), now: 10_000 });
      assert.ok(await backend.hasUploadData(uploadId));
      assert.equal(await s.expireUploads(10_000 + LIMITS.uploadTtlMs), 0, 'not yet stale');
      assert.equal(await s.expireUploads(10_001 + LIMITS.uploadTtlMs), 1);
      assert.equal(await backend.hasUploadData(uploadId), false);
      await assert.rejects(s.uploadState(uploadId, alice), is('SERVER_NOT_FOUND'));
      // (Blobs of the cases before, stored earlier, expire with it.)
      await s.expire(10_000 + LIMITS.ttlMs);
      assert.ok(await backend.hasBlob(id), 'not yet expired');
      assert.ok((await s.expire(10_001 + LIMITS.ttlMs)) >= 1);
      assert.equal(await s.get(id, 10_001 + LIMITS.ttlMs), undefined);
      assert.equal(await backend.hasBlob(id), false);
      assert.equal((await s.put({ id, accountId: alice, body: chunks(bytes), declaredLength: bytes.length, now: 20_000 })).created, true);
      assert.ok(await backend.hasBlob(id));
    });

    it('retention fetched: a blob goes once every device it was sent to fetched it and the grace has passed', async () => {
      const limits: BlobLimits = { ...LIMITS, ttlMs: 1_000_000, retention: 'fetched', fetchedGraceMs: 100 };
      const s = await store(limits);
      const alice = account();
      const bytes = randomBytes(10_000);
      const id = idOf(bytes);
      await s.put({ id, accountId: alice, body: chunks(bytes), declaredLength: bytes.length, now: 0 });
      const registered = await storage.accounts.register({
        newAccountId: `00000000-0000-4000-8000-${String(accounts).padStart(12, '0')}` as AccountId,
        number: `+1555010${String(accounts).padStart(4, '0')}` as PhoneNumber,
        identityKey: new Uint8Array(33),
        registrationId: 1,
        passwordHash: new Uint8Array(32),
        deviceName: new Uint8Array(),
        signedPreKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) },
        kyberLastResortKey: { id: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) },
        now: 1,
      });
      const device = registered.device.ref;
      const queued = await storage.messages.insert(
        [
          {
            ref: device,
            guid: randomBytes(16),
            type: 1,
            sourceAccountId: alice,
            sourceDeviceId: 1 as DeviceId,
            destinationDeviceId: 1 as DeviceId,
            timestamp: 10,
            serverTimestamp: 10,
            content: new Uint8Array(8),
          },
        ],
        { maxQueueDepth: 100, now: 10, blobFetches: { blobIds: [id], notBefore: 0 } },
      );
      assert.equal(queued.kind, 'stored');
      assert.equal(await s.expire(1000), 0, 'not fetched yet');
      await s.markFetched(id, device);
      await s.markFetched(id, device);
      assert.equal(await s.expire(100), 0, 'within the grace');
      assert.ok(await backend.hasBlob(id));
      assert.equal(await s.expire(1000), 1);
      assert.equal(await backend.hasBlob(id), false);
      assert.equal(await s.get(id, 1000), undefined);
    });

    it('streams a blob of more than 100 MB in and out with bounded memory', async () => {
      const s = await store();
      const alice = account();
      const length = 112 * MIB + 17;
      const body = generated(7, length);
      const id = body.idOfAll();
      const chunk = 8 * MIB;
      const up = await peakRssGrowth(async () => {
        const started = performance.now();
        const uploadId = await newUpload(s, undefined, alice, length);
        let result;
        for (let offset = 0; offset < length; offset += chunk) {
          const to = Math.min(length, offset + chunk);
          result = await s.appendUpload({ uploadId, accountId: alice, offset, ...(to === length ? { blobId: id } : {}), body: body.slices(offset, to), now: 1 });
        }
        assert.equal(result?.complete, true);
        return performance.now() - started;
      });
      const down = await peakRssGrowth(async () => {
        const started = performance.now();
        const blob = await s.get(id, 2);
        assert.equal(blob?.size, length);
        const hash = createHash('sha256');
        let n = 0;
        for await (const part of blob?.open() as AsyncIterable<Buffer>) {
          hash.update(part);
          n += part.length;
        }
        assert.equal(n, length);
        assert.equal(hash.digest('hex'), id);
        return performance.now() - started;
      });
      const mbps = (ms: number) => ((length / MIB / ms) * 1000).toFixed(0);
      console.log(`  ${name}: 112 MiB up ${mbps(up.result)} MiB/s (RSS +${(up.growth / MIB).toFixed(1)} MiB), down ${mbps(down.result)} MiB/s (RSS +${(down.growth / MIB).toFixed(1)} MiB)`);
      // The blob is 112 MiB: a store that held it (or a chunk list of it) would grow by at least that much.
      assert.ok(up.growth < 64 * MIB, `upload grew RSS by ${up.growth} bytes`);
      assert.ok(down.growth < 64 * MIB, `download grew RSS by ${down.growth} bytes`);
    });

    it('answers a typed 503 when its storage cannot be reached, and stores nothing', async (t) => {
      if (backend.openUnreachable === undefined) {
        t.skip('this backend has no unreachable state');
        return;
      }
      const good = await store();
      const alice = account();
      const bytes = randomBytes(20_000);
      const id = idOf(bytes);
      await good.put({ id, accountId: alice, body: chunks(bytes), declaredLength: bytes.length, now: 0 });
      const uploadId = await newUpload(good, undefined, alice, bytes.length);
      await good.appendUpload({ uploadId, accountId: alice, offset: 0, body: chunks(bytes.subarray(0, 5000)), now: 0 });
      const down = await backend.openUnreachable(storage.blobs, LIMITS);
      open.push(down);
      const unavailable = (err: unknown) => ServerError.is(err, 'SERVER_UNAVAILABLE') && err.retryAfterMs > 0;
      await assert.rejects(down.get(id, 1), unavailable, 'get');
      const other = randomBytes(1000);
      await assert.rejects(down.put({ id: idOf(other), accountId: alice, body: chunks(other), declaredLength: other.length, now: 1 }), unavailable, 'put');
      await assert.rejects(down.uploadState(uploadId, alice), unavailable, 'uploadState');
      await assert.rejects(down.appendUpload({ uploadId, accountId: alice, offset: 5000, body: chunks(bytes.subarray(5000)), now: 1 }), unavailable, 'appendUpload');
      // Nothing was lost or half-written: the reachable node continues where the upload stood.
      assert.equal(await good.get(idOf(other), 1), undefined);
      assert.equal((await good.uploadState(uploadId, alice)).offset, 5000);
      const done = await good.appendUpload({ uploadId, accountId: alice, offset: 5000, blobId: id, body: chunks(bytes.subarray(5000)), now: 2 });
      assert.deepEqual([done.complete, done.created], [true, false]);
      assert.ok(Buffer.from((await (await good.get(id, 2))?.read()) ?? []).equals(bytes));
    });
  });
}
