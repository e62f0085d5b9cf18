/**
 * {@link BlobStore} on an S3-compatible bucket, for servers that run as several stateless nodes: any node
 * can continue an upload another node started and serve a blob another node stored. The metadata (blob
 * records, uploads in progress, quotas, fetch marks) stays in the shared {@link BlobIndex}; the bucket holds
 * the bytes.
 *
 * Opening it: {@link createS3BlobStore}`(url, index, limits)`, then `await store.init()` (checks the bucket,
 * creating it if needed, and deletes what crashed uploads left), `store.close()` at shutdown. The URL:
 *
 *     s3://<bucket>[/<key prefix>]?endpoint=http://127.0.0.1:7480&region=us-east-1&forcePathStyle=true
 *
 * - `endpoint`: the S3 server (omit it for AWS itself); `region` (default: `AWS_REGION`, else `us-east-1`);
 *   `forcePathStyle=true` for servers without virtual-hosted buckets (Ceph, most self-hosted ones).
 * - Credentials: the AWS SDK's usual chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` in the
 *   environment, `~/.aws`, instance roles), or `accessKeyId=...&secretAccessKey=...` in the URL (tests;
 *   a URL with keys is a secret, so it is never logged).
 * - The key prefix lets several servers share a bucket.
 *
 * Layout of the bucket (under the prefix):
 * - `blobs/<blob id>`: a stored blob, one object; downloads are ranged GETs of it.
 * - `uploads/<upload id>/<offset, 16 digits>`: the pieces of a resumable upload, each written once
 *   (`If-None-Match: *`) at the offset it starts at. A chunk's body is cut into pieces of at most
 *   `pieceBytes` (8 MiB, the client's chunk size), so memory stays at two pieces per request whatever the
 *   chunk size. The upload's offset is where the chain of pieces from 0 ends: any node answers `HEAD` by
 *   listing them, and two nodes receiving the same chunk race for the same key, so one gets the 409.
 * - `tmp/<random>/<offset>`: a blob sent in one request ({@link BlobStore.put}) and larger than one piece,
 *   while it is received and checked (a smaller one stays in memory).
 * - `locks/<blob id>`: the lock a node holds while it publishes or deletes that blob (see below).
 *
 * Completing an upload: the SHA-256 of the whole upload must equal the blob id. The node that received
 * every chunk kept a running hash; otherwise (chunks came through several nodes, or it restarted) the
 * pieces are read back and hashed once, streaming. Only then is `blobs/<id>` written, on the S3 server:
 * pieces of 5 MiB or more are copied as the parts of a multipart upload, smaller ones are streamed through
 * as one part. Then the upload's record becomes the blob's record, and the pieces are deleted.
 *
 * Deleting and publishing one blob must not interleave (a sweep that has checked that no record exists
 * must not delete an object a new upload has just published): both run under a lock object in the
 * bucket, `locks/<blob id>`, created with `If-None-Match: *` and broken after `lockLeaseMs` if its holder
 * died. A blob's object is only ever written after its record exists, or replaced by the same bytes.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { badRequest, notFound, ServerError, ServerErrorCode } from '../errors.js';
import type { AccountId, DeviceRef } from '../ids.js';
import type { BlobIndex, BlobUploadRecord } from '../storage/stores.js';
import {
  BLOB_ID,
  UPLOAD_ID,
  type AppendResult,
  type BlobLimits,
  type BlobStore,
  type BlobUpload,
  type CreateUploadResult,
  type PutBlobResult,
  type StoredBlob,
  type UploadChunk,
  type UploadState,
} from './blob-store.js';
import { KeyedLock, overQuota, tooLarge, uploadConflict } from './common.js';
import { S3Bucket, type S3Piece } from './s3-bucket.js';

/** Where the bucket is and how to reach it (from the URL, see {@link parseS3Url}). */
export interface S3Location {
  readonly bucket: string;
  /** Prepended to every key: empty, or ending in `/`. */
  readonly prefix: string;
  readonly client: S3ClientConfig;
}

/** Tuning of an {@link S3BlobStore} (the defaults suit production; tests shrink them). */
export interface S3BlobStoreOptions {
  /** Largest piece an upload chunk is cut into (and the memory a chunk in flight takes, twice). Default 8 MiB. */
  readonly pieceBytes?: number;
  /** A blob lock whose holder has not released it after this long is broken. Default 30 s. */
  readonly lockLeaseMs?: number;
  /** Pieces under `tmp/` and multipart assemblies older than this are left over by a crash: deleted. Default 1 h. */
  readonly tmpMaxAgeMs?: number;
}

const DEFAULT_PIECE_BYTES = 8 * 1024 * 1024;

/**
 * Reads an `s3://bucket[/prefix]?endpoint=...&region=...&forcePathStyle=true[&accessKeyId=...&secretAccessKey=...]`
 * URL. Throws a plain Error naming what is wrong (never the keys).
 */
export function parseS3Url(url: string): S3Location {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('the S3 URL does not parse: expected s3://<bucket>?endpoint=...');
  }
  if (parsed.protocol !== 's3:') throw new Error('the S3 URL must start with s3://');
  const bucket = decodeURIComponent(parsed.hostname);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error('the S3 URL names no valid bucket (3 to 63 of a-z 0-9 . -)');
  const path = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
  const prefix = path === '' ? '' : `${path}/`;
  const known = new Set(['endpoint', 'region', 'forcePathStyle', 'accessKeyId', 'secretAccessKey', 'sessionToken']);
  for (const name of parsed.searchParams.keys()) if (!known.has(name)) throw new Error(`the S3 URL has an unknown parameter ${name}`);
  const q = (name: string): string | undefined => parsed.searchParams.get(name) ?? undefined;
  const endpoint = q('endpoint');
  if (endpoint !== undefined && !/^https?:\/\/./.test(endpoint)) throw new Error('the S3 URL endpoint must be an http:// or https:// URL');
  const forcePathStyle = q('forcePathStyle');
  if (forcePathStyle !== undefined && forcePathStyle !== 'true' && forcePathStyle !== 'false') throw new Error('forcePathStyle must be true or false');
  const accessKeyId = q('accessKeyId');
  const secretAccessKey = q('secretAccessKey');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) throw new Error('the S3 URL must give both accessKeyId and secretAccessKey, or neither');
  const sessionToken = q('sessionToken');
  const client: S3ClientConfig = {
    region: q('region') ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(endpoint === undefined ? {} : { endpoint }),
    forcePathStyle: forcePathStyle === 'true',
    ...(accessKeyId === undefined || secretAccessKey === undefined ? {} : { credentials: { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) } }),
    // Plain requests any S3-compatible server takes: no checksum trailers (aws-chunked), no CRC checks of downloads.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 5000, requestTimeout: 120_000 },
  };
  return { bucket, prefix, client };
}

/**
 * The S3 blob store for `url` (see the file header for its form). Call `init()` before use and `close()`
 * at shutdown.
 */
export function createS3BlobStore(url: string, index: BlobIndex, limits: BlobLimits, options: S3BlobStoreOptions = {}): S3BlobStore {
  return new S3BlobStore(parseS3Url(url), index, limits, options);
}

/** One piece of an upload: `size` bytes at `offset`. */
interface Piece extends S3Piece {
  readonly offset: number;
}

/** The SHA-256 of the first `offset` bytes of an upload, kept between chunks this node received. */
interface RunningHash {
  offset: number;
  readonly hash: Hash;
}

/** Uploads whose pieces this node remembers (so that a chunk lists only the pieces after them). */
const MAX_REMEMBERED_UPLOADS = 10_000;

function pieceKey(uploadId: string, offset: number): string {
  return `uploads/${uploadId}/${String(offset).padStart(16, '0')}`;
}

/** See the file header. */
export class S3BlobStore implements BlobStore {
  readonly #s3: S3Client;
  readonly #bucket: S3Bucket;
  readonly #index: BlobIndex;
  readonly #limits: BlobLimits;
  readonly #pieceBytes: number;
  readonly #leaseMs: number;
  readonly #tmpMaxAgeMs: number;
  readonly #lock = new KeyedLock();
  /** Running hashes of uploads in progress, by upload id. */
  readonly #hashes = new Map<string, RunningHash>();
  /** Pieces of uploads in progress known to this node (a prefix of the chain), by upload id. */
  readonly #pieces = new Map<string, Piece[]>();
  /** Uploads receiving a chunk (or being deleted) on this node right now. */
  readonly #busy = new Set<string>();

  constructor(location: S3Location, index: BlobIndex, limits: BlobLimits, options: S3BlobStoreOptions = {}) {
    this.#s3 = new S3Client(location.client);
    this.#bucket = new S3Bucket(this.#s3, location.bucket, location.prefix);
    this.#index = index;
    this.#limits = limits;
    this.#pieceBytes = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
    this.#leaseMs = options.lockLeaseMs ?? 30_000;
    this.#tmpMaxAgeMs = options.tmpMaxAgeMs ?? 60 * 60 * 1000;
    if (!Number.isSafeInteger(this.#pieceBytes) || this.#pieceBytes < 1) throw new Error('pieceBytes must be a positive integer');
  }

  /**
   * Checks that the bucket answers (creating it if it does not exist) and honours conditional writes, and
   * deletes what crashes left (pieces of uploads without a record, old `tmp/` pieces and assemblies).
   * Rejects with a 503 `ServerError` when S3 cannot be reached, with an Error when it lacks conditional writes.
   */
  async init(): Promise<void> {
    await this.#bucket.ensure();
    await this.#checkConditionalWrites();
    await this.#deleteOrphans();
  }

  /**
   * Refuses an S3 server that ignores `If-None-Match: *` on PUT: pieces would not be write-once and the
   * blob lock would not exclude, so two nodes could interleave unnoticed.
   */
  async #checkConditionalWrites(): Promise<void> {
    const probe = `locks/probe-${randomBytes(8).toString('hex')}`;
    const body = new Uint8Array(1);
    try {
      if (!(await this.#bucket.create(probe, body))) throw new Error('the S3 server refused to create a new object conditionally');
      if (await this.#bucket.create(probe, body)) throw new Error('the S3 server ignores If-None-Match: * on PUT (conditional writes are required)');
    } finally {
      await this.#bucket.delete(probe).catch(() => undefined);
    }
  }

  /** Closes the S3 client's connections. */
  close(): void {
    this.#s3.destroy();
  }

  #blobKey(id: string): string {
    if (!BLOB_ID.test(id)) throw badRequest('malformed blob id');
    return `blobs/${id}`;
  }

  /** Runs `fn` holding blob `id`'s lock: in this process first, then across nodes. */
  async #withBlobLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#lock.run(id, () => this.#bucket.withLock(id, this.#leaseMs, fn));
  }

  async put(upload: BlobUpload): Promise<PutBlobResult> {
    const key = this.#blobKey(upload.id);
    const { maxBlobBytes, quotaBytes, ttlMs } = this.#limits;
    if (upload.declaredLength !== undefined && upload.declaredLength > maxBlobBytes) throw tooLarge(maxBlobBytes);
    const notBefore = upload.now - ttlMs;
    // Stored already only when its record and its object are both there (a record whose object a sweep
    // deleted meanwhile gets the object again).
    const record = await this.#index.get(upload.id, notBefore);
    const existing = record !== undefined && (await this.#bucket.size(key)) === record.size;
    if (!existing && upload.declaredLength !== undefined) {
      if ((await this.#index.usage(upload.accountId, notBefore)) + upload.declaredLength > quotaBytes) throw overQuota();
    }
    // An existing blob is only hashed (the bytes must still match the id), not written again.
    const staging = existing ? undefined : `tmp/${randomBytes(16).toString('hex')}`;
    const writer = staging === undefined ? undefined : new PieceWriter(this.#bucket, (offset) => `${staging}/${String(offset).padStart(16, '0')}`, 0, this.#pieceBytes, true);
    const hash = createHash('sha256');
    let size = 0;
    const discard = async (): Promise<void> => {
      if (staging !== undefined) await this.#bucket.deleteAll(`${staging}/`).catch(() => undefined);
    };
    try {
      try {
        for await (const chunk of upload.body) {
          size += chunk.length;
          if (size > maxBlobBytes) throw tooLarge(maxBlobBytes);
          hash.update(chunk);
          await writer?.write(chunk);
        }
      } finally {
        await writer?.settle();
      }
      if (size === 0) throw badRequest('empty blob');
      if (hash.digest('hex') !== upload.id) throw badRequest('the blob does not hash to its id');
    } catch (err) {
      await discard();
      throw err;
    }
    try {
      const outcome = await this.#withBlobLock(upload.id, async () => {
        const added = await this.#index.add({ id: upload.id, accountId: upload.accountId, size, createdAt: upload.now }, quotaBytes);
        if (added.kind === 'quota') throw overQuota();
        const present = (await this.#bucket.size(key)) === size;
        if (writer === undefined && !present) {
          // Deleted (expired, or fetched by all) between the check above and now: the bytes were only hashed.
          throw new ServerError(ServerErrorCode.Unavailable, 'the blob was deleted while it was being uploaded again: send it again', { retryAfterMs: 1000 });
        }
        return { created: added.kind === 'added', present };
      });
      // Written after the record exists (a sweep, holding the lock, sees the record and keeps the object);
      // until then the record is not served, as its object is missing.
      if (writer !== undefined && !outcome.present) {
        const whole = writer.unwritten();
        if (whole !== undefined) await this.#bucket.put(key, whole);
        else await this.#bucket.assemble(writer.pieces, key);
      }
      return { size, created: outcome.created };
    } finally {
      await discard();
    }
  }

  async get(id: string, now: number): Promise<StoredBlob | undefined> {
    const key = this.#blobKey(id);
    const record = await this.#index.get(id, now - this.#limits.ttlMs);
    if (record === undefined) return undefined;
    // Only a record with its object is served: a 200 must never start for bytes that are not there.
    if ((await this.#bucket.size(key)) !== record.size) return undefined;
    return {
      id,
      size: record.size,
      open: (range) => this.#bucket.stream(key, range),
      read: async () => {
        const bytes = await this.#bucket.read(key);
        // Deleted since the check above (expired meanwhile): never an empty 200.
        if (bytes === undefined) throw notFound('blob');
        return bytes;
      },
    };
  }

  async expire(now: number): Promise<number> {
    const { ttlMs, retention, fetchedGraceMs } = this.#limits;
    const ids = await this.#index.expire(now - ttlMs);
    if (retention === 'fetched') ids.push(...(await this.#index.expireFetched(now - fetchedGraceMs)));
    for (const id of ids) {
      await this.#withBlobLock(id, async () => {
        // Uploaded again after the index row went: that upload's object stays.
        if ((await this.#index.get(id, now - ttlMs)) !== undefined) return;
        await this.#bucket.delete(this.#blobKey(id));
      });
    }
    return ids.length;
  }

  async markFetched(blobId: string, device: DeviceRef): Promise<void> {
    if (!BLOB_ID.test(blobId)) throw badRequest('malformed blob id');
    await this.#index.markFetched(blobId, device);
  }

  async createUpload(request: { blobId: string | undefined; accountId: AccountId; length: number; now: number }): Promise<CreateUploadResult> {
    const { blobId, accountId, length, now } = request;
    const { maxUploadBytes, quotaBytes, ttlMs } = this.#limits;
    if (blobId !== undefined) this.#blobKey(blobId);
    if (!Number.isSafeInteger(length) || length <= 0) throw badRequest('malformed upload length');
    if (length > maxUploadBytes) throw tooLarge(maxUploadBytes);
    const notBefore = now - ttlMs;
    if (blobId === undefined) return this.#newUpload(undefined, accountId, length, now);
    const key = this.#blobKey(blobId);
    // The lock only when a record exists: restarting its expiry must not race a sweep deleting the object.
    const stored =
      (await this.#index.get(blobId, notBefore)) === undefined
        ? undefined
        : await this.#withBlobLock(blobId, async () => {
            const existing = await this.#index.get(blobId, notBefore);
            if (existing === undefined || (await this.#bucket.size(key)) !== existing.size) return undefined;
            if (existing.size !== length) throw badRequest('the blob is stored with another length');
            // Restarts its expiry (the row exists: no quota is taken).
            await this.#index.add({ id: blobId, accountId, size: existing.size, createdAt: now }, quotaBytes);
            return existing.size;
          });
    if (stored !== undefined) return { kind: 'stored', size: stored };
    const previous = await this.#index.findUpload(accountId, blobId);
    if (previous?.length === length) {
      await this.#index.touchUpload(previous.id, now);
      return { kind: 'upload', state: { uploadId: previous.id, blobId, offset: end(await this.#listPieces(previous.id)), length }, resumed: true };
    }
    return this.#newUpload(blobId, accountId, length, now);
  }

  /** Records a new upload (507 past the quota). */
  async #newUpload(blobId: string | undefined, accountId: AccountId, length: number, now: number): Promise<CreateUploadResult> {
    const uploadId = randomBytes(16).toString('hex');
    const { quotaBytes, ttlMs } = this.#limits;
    if (!(await this.#index.createUpload({ id: uploadId, blobId, accountId, length, updatedAt: now }, quotaBytes, now - ttlMs))) throw overQuota();
    return { kind: 'upload', state: { uploadId, blobId, offset: 0, length }, resumed: false };
  }

  /** The account's upload record, or 404. */
  async #owned(uploadId: string, accountId: AccountId): Promise<BlobUploadRecord> {
    if (!UPLOAD_ID.test(uploadId)) throw notFound('upload');
    const record = await this.#index.getUpload(uploadId);
    if (record?.accountId !== accountId) throw notFound('upload');
    return record;
  }

  /**
   * The chain of the upload's pieces from offset 0: those this node knows, then those listed after them
   * (written by any node). Pieces are written once and only deleted with their upload.
   */
  async #listPieces(uploadId: string): Promise<Piece[]> {
    const known = this.#pieces.get(uploadId) ?? [];
    const last = known.at(-1);
    const listed = await this.#bucket.list(`uploads/${uploadId}/`, last?.key);
    const chain = [...known];
    let offset = end(known);
    for (const entry of listed) {
      const start = Number(entry.key.slice(entry.key.lastIndexOf('/') + 1));
      // Keys are written only at the chain's end, so none is out of place; stop at anything that is.
      if (start !== offset) break;
      chain.push({ key: entry.key, offset: start, size: entry.size });
      offset += entry.size;
    }
    this.#remember(uploadId, chain);
    return chain;
  }

  #remember(uploadId: string, pieces: Piece[]): void {
    this.#pieces.delete(uploadId);
    if (this.#pieces.size >= MAX_REMEMBERED_UPLOADS) {
      const oldest = this.#pieces.keys().next().value;
      if (oldest !== undefined) this.#pieces.delete(oldest);
    }
    this.#pieces.set(uploadId, pieces);
  }

  #forget(uploadId: string): void {
    this.#pieces.delete(uploadId);
    this.#hashes.delete(uploadId);
  }

  async uploadState(uploadId: string, accountId: AccountId): Promise<UploadState> {
    const record = await this.#owned(uploadId, accountId);
    return { uploadId, blobId: record.blobId, offset: end(await this.#listPieces(uploadId)), length: record.length };
  }

  async appendUpload(chunk: UploadChunk): Promise<AppendResult> {
    const { uploadId, accountId } = chunk;
    if (chunk.blobId !== undefined) this.#blobKey(chunk.blobId);
    const claimed = await this.#owned(uploadId, accountId);
    if (chunk.blobId !== undefined && claimed.blobId !== undefined && chunk.blobId !== claimed.blobId) throw badRequest("Upload-Blob-Id differs from the upload's blob id");
    if (this.#busy.has(uploadId)) throw uploadConflict('a chunk of this upload is being received', end(await this.#listPieces(uploadId)));
    this.#busy.add(uploadId);
    try {
      // Read again once claimed: a sweep may have deleted it meanwhile.
      const record = await this.#owned(uploadId, accountId);
      let pieces = await this.#listPieces(uploadId);
      let offset = end(pieces);
      if (chunk.offset !== offset) throw uploadConflict('the chunk does not start at the upload offset', offset);
      let running = this.#hashes.get(uploadId);
      if (running !== undefined && running.offset !== offset) {
        this.#hashes.delete(uploadId);
        running = undefined;
      }
      if (running === undefined && offset === 0) {
        running = { offset: 0, hash: createHash('sha256') };
        this.#hashes.set(uploadId, running);
      }
      // A chunk arriving restarts the upload's expiry before it is written (a sweep on another node
      // deletes only uploads idle for uploadTtlMs).
      await this.#index.touchUpload(uploadId, chunk.now);
      const hashing = running;
      const writer = new PieceWriter(this.#bucket, (at) => pieceKey(uploadId, at), offset, this.#pieceBytes, false, (piece, bytes) => {
        pieces = [...pieces, piece];
        this.#remember(uploadId, pieces);
        if (hashing !== undefined) {
          hashing.hash.update(bytes);
          hashing.offset = piece.offset + piece.size;
        }
      });
      let failure: { error: unknown } | undefined;
      try {
        for await (const bytes of chunk.body) {
          if (writer.end + bytes.length > record.length) throw badRequest('the chunk goes beyond the upload length');
          await writer.write(bytes);
        }
      } catch (error) {
        failure = { error };
      }
      // Also when the body was cut off or too long: what arrived is kept, the client resumes from the offset.
      try {
        await writer.settle();
      } catch (error) {
        // Another node wrote a piece at one of this chunk's offsets: the client learns where the upload stands.
        failure = { error: writer.lost ? uploadConflict('another chunk of this upload was received at the same offset', end(await this.#listPieces(uploadId))) : error };
      }
      offset = end(pieces);
      await this.#index.touchUpload(uploadId, chunk.now);
      if (failure !== undefined) throw failure.error;
      if ((await this.#index.getUpload(uploadId)) === undefined) {
        // Cancelled or expired by another node while this chunk was written: its pieces go too.
        await this.#bucket.deleteAll(`uploads/${uploadId}/`);
        this.#forget(uploadId);
        throw notFound('upload');
      }
      if (offset < record.length) return { blobId: record.blobId, offset, length: record.length, complete: false, created: false };
      // The running hash stays until the id is known: an empty chunk at the end with the id finishes.
      const blobId = record.blobId ?? chunk.blobId;
      if (blobId === undefined) throw new ServerError(ServerErrorCode.BadRequest, 'the chunk that completes an upload started without a blob id must carry Upload-Blob-Id', { headers: { 'upload-offset': String(offset) } });
      const digest = running?.offset === offset ? running.hash.digest('hex') : await this.#hashPieces(pieces);
      this.#hashes.delete(uploadId);
      if (digest !== blobId) {
        await this.#index.deleteUpload(uploadId);
        await this.#bucket.deleteAll(`uploads/${uploadId}/`);
        this.#forget(uploadId);
        throw badRequest('the upload does not hash to its blob id; it was deleted');
      }
      const created = await this.#publish(uploadId, blobId, accountId, offset, pieces, chunk.now);
      return { blobId, offset, length: record.length, complete: true, created };
    } finally {
      this.#busy.delete(uploadId);
    }
  }

  /** The SHA-256 (hex) of the pieces, read back from S3 as one stream. */
  async #hashPieces(pieces: readonly Piece[]): Promise<string> {
    const hash = createHash('sha256');
    for await (const bytes of this.#bucket.concat(pieces) as AsyncIterable<Buffer>) hash.update(bytes);
    return hash.digest('hex');
  }

  /**
   * Publishes a verified upload: writes `blobs/<id>` from the pieces (unless that blob is stored), then, under
   * the blob's lock, turns the upload record into the blob record; writes the object again if a sweep
   * deleted it meanwhile (the record now keeps it); deletes the pieces.
   */
  async #publish(uploadId: string, blobId: string, accountId: AccountId, size: number, pieces: readonly Piece[], now: number): Promise<boolean> {
    const key = this.#blobKey(blobId);
    const stored = (await this.#index.get(blobId, now - this.#limits.ttlMs)) !== undefined && (await this.#bucket.size(key)) === size;
    if (!stored) await this.#bucket.assemble(pieces, key);
    const { added, present } = await this.#withBlobLock(blobId, async () => {
      const result = await this.#index.completeUpload(uploadId, { id: blobId, accountId, size, createdAt: now });
      return { added: result, present: (await this.#bucket.size(key)) === size };
    });
    if (!present) await this.#bucket.assemble(pieces, key);
    this.#forget(uploadId);
    // The upload is complete: leftover pieces (S3 failing here) are deleted by the orphan sweep.
    await this.#bucket.deleteAll(`uploads/${uploadId}/`).catch(() => undefined);
    return added.kind === 'added';
  }

  async cancelUpload(uploadId: string, accountId: AccountId): Promise<void> {
    await this.#owned(uploadId, accountId);
    if (!(await this.#remove(uploadId))) throw uploadConflict('a chunk of this upload is being received', end(await this.#listPieces(uploadId)));
  }

  async expireUploads(now: number): Promise<number> {
    let removed = 0;
    for (const id of await this.#index.staleUploads(now - this.#limits.uploadTtlMs)) if (await this.#remove(id)) removed++;
    await this.#deleteOrphans();
    return removed;
  }

  /** Deletes an upload's record and pieces unless this node is receiving a chunk of it; false then. */
  async #remove(uploadId: string): Promise<boolean> {
    if (this.#busy.has(uploadId)) return false;
    this.#busy.add(uploadId);
    try {
      await this.#index.deleteUpload(uploadId);
      this.#forget(uploadId);
      await this.#bucket.deleteAll(`uploads/${uploadId}/`);
      return true;
    } finally {
      this.#busy.delete(uploadId);
    }
  }

  /**
   * Deletes the pieces of uploads without a record (the record is created before any piece, so pieces
   * listed before the records are read and not among them belong to a deleted upload), `tmp/` pieces
   * and multipart assemblies of `blobs/` older than `tmpMaxAgeMs` (a crash interrupted them).
   */
  async #deleteOrphans(): Promise<void> {
    const folders = await this.#bucket.folders('uploads/');
    const known = new Set(await this.#index.uploadIds());
    for (const id of folders) if (!known.has(id)) await this.#bucket.deleteAll(`uploads/${id}/`);
    const tmp = await this.#bucket.list('tmp/');
    const newest = tmp.reduce((max, e) => Math.max(max, e.lastModified), 0);
    // The newest piece's time stands for "now" on the S3 server's clock when no clock is shared.
    const cutoff = Math.max(Date.now(), newest) - this.#tmpMaxAgeMs;
    await this.#bucket.deleteMany(tmp.filter((e) => e.lastModified < cutoff).map((e) => e.key));
    await this.#bucket.abortStaleMultipart('blobs/', cutoff);
  }
}

/** Where a chain of pieces ends. */
function end(pieces: readonly Piece[]): number {
  const last = pieces.at(-1);
  return last === undefined ? 0 : last.offset + last.size;
}

/**
 * Cuts a stream of bytes into pieces of `pieceBytes` and writes each as an object at `keyOf(its offset)`,
 * with `If-None-Match: *`; one write runs while the next piece fills, so memory stays at two pieces.
 * `lazy`: the first piece is held back until more bytes come, so a body of one piece or less is never
 * written ({@link unwritten} hands it over instead).
 */
class PieceWriter {
  readonly #bucket: S3Bucket;
  readonly #keyOf: (offset: number) => string;
  readonly #pieceBytes: number;
  readonly #lazy: boolean;
  readonly #written: ((piece: Piece, bytes: Uint8Array) => void) | undefined;
  /** Bytes waiting to be written, starting at `#start`. */
  #buffer: Buffer;
  #filled = 0;
  #start: number;
  #inFlight: Promise<void> | undefined;
  #failure: { error: unknown } | undefined;
  /** True when another writer had written a piece at one of our offsets (S3 answered 412). */
  lost = false;
  readonly pieces: Piece[] = [];

  constructor(bucket: S3Bucket, keyOf: (offset: number) => string, start: number, pieceBytes: number, lazy: boolean, written?: (piece: Piece, bytes: Uint8Array) => void) {
    this.#bucket = bucket;
    this.#keyOf = keyOf;
    this.#pieceBytes = pieceBytes;
    this.#lazy = lazy;
    this.#written = written;
    this.#start = start;
    this.#buffer = Buffer.allocUnsafe(0);
  }

  /** The offset after every byte given so far (written or not). */
  get end(): number {
    return this.#start + this.#filled;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let rest = bytes;
    while (rest.length > 0) {
      if (this.#failure !== undefined) throw this.#failure.error;
      if (this.#filled === this.#pieceBytes) await this.#ship();
      if (this.#buffer.length === 0) this.#buffer = Buffer.allocUnsafe(this.#pieceBytes);
      const n = Math.min(rest.length, this.#pieceBytes - this.#filled);
      this.#buffer.set(rest.subarray(0, n), this.#filled);
      this.#filled += n;
      rest = rest.subarray(n);
      if (this.#filled === this.#pieceBytes && !this.#lazy) await this.#ship();
    }
  }

  /** Starts writing the full buffer (after the previous write finished). */
  async #ship(): Promise<void> {
    await this.#inFlight;
    if (this.#failure !== undefined) throw this.#failure.error;
    const bytes = this.#buffer.subarray(0, this.#filled);
    const piece: Piece = { key: this.#keyOf(this.#start), offset: this.#start, size: bytes.length };
    this.#buffer = Buffer.allocUnsafe(0);
    this.#start += bytes.length;
    this.#filled = 0;
    this.#inFlight = this.#bucket.create(piece.key, bytes).then(
      (created) => {
        if (!created) {
          this.lost = true;
          this.#failure = { error: uploadConflict('another chunk of this upload was received at the same offset', piece.offset) };
          return;
        }
        this.pieces.push(piece);
        this.#written?.(piece, bytes);
      },
      (error: unknown) => {
        this.#failure = { error };
      },
    );
  }

  /**
   * Writes what is buffered (unless lazy and nothing was written yet) and waits for every write. Rejects
   * with the first failure (a 409 when another node took an offset, a 503 when S3 failed).
   */
  async settle(): Promise<void> {
    if (this.#failure === undefined && this.#filled > 0 && !(this.#lazy && this.pieces.length === 0 && this.#inFlight === undefined)) await this.#ship();
    await this.#inFlight;
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  /** The whole body when nothing was written (lazy, at most one piece); undefined otherwise. */
  unwritten(): Uint8Array | undefined {
    if (this.pieces.length > 0 || this.#inFlight !== undefined) return undefined;
    return this.#buffer.subarray(0, this.#filled);
  }
}
