/**
 * Blobs: encrypted files (attachments, history bundles) that clients upload once and fetch by id. A blob's
 * id is the lowercase hex SHA-256 of its bytes, checked on upload, so equal bytes are stored once. Clients
 * encrypt before uploading: the server never holds a key to them.
 *
 * {@link BlobStore} is what the routes use; {@link FilesystemBlobStore} keeps the bytes as files in
 * `<data dir>/blobs/` and their metadata (uploader, size, time) in a {@link BlobIndex}. Blobs are written
 * either in one request ({@link BlobStore.put}) or by a resumable upload in chunks
 * ({@link BlobStore.createUpload}, {@link BlobStore.appendUpload}); they are read whole or by byte range.
 * `S3BlobStore` (`./s3-store.ts`) keeps the bytes in an S3-compatible bucket instead.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { badRequest, notFound, ServerError, ServerErrorCode } from '../errors.js';
import type { AccountId, DeviceRef } from '../ids.js';
import type { BlobIndex, BlobUploadRecord } from '../storage/stores.js';
import { KeyedLock, overQuota, tooLarge, uploadConflict } from './common.js';

/** A blob id: 64 lowercase hex digits. */
export const BLOB_ID = /^[0-9a-f]{64}$/;

/** One upload. */
export interface BlobUpload {
  /** The claimed id (lowercase hex SHA-256 of the body). */
  readonly id: string;
  readonly accountId: AccountId;
  readonly body: AsyncIterable<Uint8Array>;
  /** The length the client declared, if any (refused early when above the limit or the quota). */
  readonly declaredLength: number | undefined;
  readonly now: number;
}

/** An upload id: 32 lowercase hex digits. */
export const UPLOAD_ID = /^[0-9a-f]{32}$/;

/**
 * When blobs are deleted: `expiry` only by age (`ttlMs` after the last upload); `fetched` also once every
 * device a message naming the blob was queued for has reported it fetched (or was removed) and no message
 * named it for `fetchedGraceMs`.
 */
export type BlobRetention = 'expiry' | 'fetched';

/** The limits an upload is held to, and how long blobs are kept. */
export interface BlobLimits {
  /** Largest blob uploaded in one request ({@link BlobStore.put}). */
  readonly maxBlobBytes: number;
  /** Largest blob uploaded in chunks ({@link BlobStore.createUpload}). */
  readonly maxUploadBytes: number;
  /** Bytes of unexpired blobs plus declared lengths of uploads in progress one account may have. */
  readonly quotaBytes: number;
  /** Blobs created before this are expired (not served, not counted). */
  readonly ttlMs: number;
  /** An upload in progress without a chunk for this long is deleted. */
  readonly uploadTtlMs: number;
  readonly retention: BlobRetention;
  /** Retention `fetched`: how long after the last message naming a blob it is kept once fetched by all. */
  readonly fetchedGraceMs: number;
}

/** A byte range of a blob, both ends included. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** Where a resumable upload stands. */
export interface UploadState {
  readonly uploadId: string;
  /** Undefined when the upload was started without an id (the completing chunk names it). */
  readonly blobId: string | undefined;
  /** Bytes received so far (the next chunk starts here). */
  readonly offset: number;
  readonly length: number;
}

/** Result of {@link BlobStore.createUpload}. */
export type CreateUploadResult =
  /** The blob is stored already (its expiry restarts): nothing to upload. */
  | { readonly kind: 'stored'; readonly size: number }
  /** An upload to send chunks to: a new one, or the account's unfinished upload of the same blob. */
  | { readonly kind: 'upload'; readonly state: UploadState; readonly resumed: boolean };

/** One chunk of a resumable upload. */
export interface UploadChunk {
  readonly uploadId: string;
  readonly accountId: AccountId;
  /** Where the client says the chunk starts; must be the upload's current offset. */
  readonly offset: number;
  /**
   * The blob id the client names with this chunk (`Upload-Blob-Id`): required on the chunk that completes
   * an upload started without one; when the upload has one, it must be equal.
   */
  readonly blobId?: string | undefined;
  readonly body: AsyncIterable<Uint8Array>;
  readonly now: number;
}

/** Result of {@link BlobStore.appendUpload}. */
export interface AppendResult {
  /** With `complete`: the published blob's id; otherwise the upload's id if it has one. */
  readonly blobId: string | undefined;
  /** The offset after the bytes that arrived (even when the body was cut off, which then rejects). */
  readonly offset: number;
  readonly length: number;
  /** The upload is complete: the blob is verified and published (the upload no longer exists). */
  readonly complete: boolean;
  /** With `complete`: false when the same blob was stored meanwhile. */
  readonly created: boolean;
}

/** A stored blob, ready to be read. */
export interface StoredBlob {
  readonly id: string;
  readonly size: number;
  /** A stream of the bytes, or of `range` of them. */
  open(range?: ByteRange): Readable;
  /** All the bytes at once (for the WebSocket; the caller bounds `size` first). */
  read(): Promise<Uint8Array>;
}

/** Result of {@link BlobStore.put}. */
export interface PutBlobResult {
  readonly size: number;
  /** False when the blob was already stored (its expiry restarts). */
  readonly created: boolean;
}

/** Where blobs live. */
export interface BlobStore {
  /**
   * Stores a blob, reading its body within the limits: 400 `SERVER_BAD_REQUEST` when the bytes do not hash
   * to the id, 413 `SERVER_PAYLOAD_TOO_LARGE` above `maxBlobBytes`, 507 `SERVER_QUOTA_EXCEEDED` past the
   * uploader's quota. Resolves once the bytes and the metadata are durable; a refused upload leaves
   * nothing behind.
   */
  put(upload: BlobUpload): Promise<PutBlobResult>;
  /** The unexpired blob, or undefined. */
  get(id: string, now: number): Promise<StoredBlob | undefined>;
  /**
   * Deletes blobs uploaded more than the TTL before `now` and, with retention `fetched`, blobs fetched by
   * every device they were registered for whose last registration is more than `fetchedGraceMs` before
   * `now`; returns how many.
   */
  expire(now: number): Promise<number>;
  /** The device reports the blob fetched: its pending fetch, if any, is done. Idempotent. */
  markFetched(blobId: string, device: DeviceRef): Promise<void>;
  /**
   * Starts a resumable upload of `length` bytes: 413 above `maxUploadBytes`, 507 when the account's
   * blobs, uploads in progress and this length exceed the quota. With a `blobId` (the bytes must hash to
   * it): when the blob is stored, nothing is to be uploaded; when the account has an unfinished upload of
   * it, that one is returned (with its offset). Without one, a new upload is always created; its last
   * chunk names the id.
   */
  createUpload(request: { blobId: string | undefined; accountId: AccountId; length: number; now: number }): Promise<CreateUploadResult>;
  /** The state of the account's upload (404 `SERVER_NOT_FOUND` when it does not exist, expired, or is another account's). */
  uploadState(uploadId: string, accountId: AccountId): Promise<UploadState>;
  /**
   * Appends a chunk, streamed to the partial file: 409 `SERVER_CONFLICT` (with header `upload-offset`)
   * when `offset` is not the current offset or another chunk is being received, 400 beyond the declared
   * length, 400 when `blobId` differs from the upload's (before anything is read). Bytes that arrived
   * before a body was cut off are kept. When the length is reached: without an id (neither the upload's
   * nor the chunk's) 400 and nothing is published, but the bytes stay (an empty chunk at the end with the
   * id finishes it); otherwise the whole file's SHA-256 is checked: a mismatch deletes the upload (400), a
   * match publishes the blob.
   */
  appendUpload(chunk: UploadChunk): Promise<AppendResult>;
  /** Deletes the account's upload (404 when there is none). */
  cancelUpload(uploadId: string, accountId: AccountId): Promise<void>;
  /** Deletes uploads without a chunk for `uploadTtlMs` before `now`; returns how many. */
  expireUploads(now: number): Promise<number>;
}

/** The SHA-256 of the first `offset` bytes of a partial upload, kept between chunks. */
interface RunningHash {
  offset: number;
  readonly hash: Hash;
}

/**
 * {@link BlobStore} on the local file system: `<dir>/<id>`, written to `<dir>/tmp/<random>`, fsync'd,
 * renamed into place and the directory fsync'd, then recorded in the index. Memory stays bounded: bodies
 * are hashed and written chunk by chunk.
 *
 * Resumable uploads are `<dir>/uploads/<upload id>`, appended to chunk by chunk (flushed to disk in the
 * background, and completely before the blob is published); the file's size is the upload's offset. The SHA-256 of the bytes so far is kept in memory between chunks; when it is missing
 * (after a restart, or a failed write) the complete file is hashed again, streaming, before it is renamed
 * to its blob id.
 */
export class FilesystemBlobStore implements BlobStore {
  readonly #dir: string;
  readonly #tmp: string;
  readonly #uploads: string;
  readonly #index: BlobIndex;
  readonly #limits: BlobLimits;
  readonly #lock = new KeyedLock();
  /** Running hashes of uploads in progress, by upload id. */
  readonly #hashes = new Map<string, RunningHash>();
  /** Uploads receiving a chunk (or being deleted) right now. */
  readonly #busy = new Set<string>();
  /** The background flush to disk of each upload in progress (one at a time per upload). */
  readonly #flushes = new Map<string, Promise<void>>();
  #ready: Promise<void> | undefined;

  constructor(dir: string, index: BlobIndex, limits: BlobLimits) {
    this.#dir = dir;
    this.#tmp = path.join(dir, 'tmp');
    this.#uploads = path.join(dir, 'uploads');
    this.#index = index;
    this.#limits = limits;
  }

  /** Creates the folders and deletes temporary files and partial uploads without a record a crash left behind. */
  #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.#tmp, { recursive: true });
      await mkdir(this.#uploads, { recursive: true });
      for (const name of await readdir(this.#tmp)) await rm(path.join(this.#tmp, name), { force: true });
      const known = new Set(await this.#index.uploadIds());
      for (const name of await readdir(this.#uploads)) if (!known.has(name)) await rm(path.join(this.#uploads, name), { force: true });
    })();
    return this.#ready;
  }

  #partial(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw notFound('upload');
    return path.join(this.#uploads, uploadId);
  }

  /** Bytes of the upload received so far. */
  async #offsetOf(uploadId: string): Promise<number> {
    return stat(this.#partial(uploadId)).then((s) => s.size, () => 0);
  }

  /** The account's upload record, or 404. */
  async #owned(uploadId: string, accountId: AccountId): Promise<BlobUploadRecord> {
    this.#partial(uploadId);
    await this.#prepare();
    const record = await this.#index.getUpload(uploadId);
    if (record?.accountId !== accountId) throw notFound('upload');
    return record;
  }

  #file(id: string): string {
    if (!BLOB_ID.test(id)) throw badRequest('malformed blob id');
    return path.join(this.#dir, id);
  }

  async put(upload: BlobUpload): Promise<PutBlobResult> {
    const target = this.#file(upload.id);
    const { maxBlobBytes, quotaBytes, ttlMs } = this.#limits;
    if (upload.declaredLength !== undefined && upload.declaredLength > maxBlobBytes) throw tooLarge(maxBlobBytes);
    const notBefore = upload.now - ttlMs;
    // Stored already only when its record and its file are both there (a record whose file the sweeper
    // deleted meanwhile gets the file again).
    const existing = (await this.#index.get(upload.id, notBefore)) !== undefined && (await exists(target));
    if (!existing && upload.declaredLength !== undefined) {
      if ((await this.#index.usage(upload.accountId, notBefore)) + upload.declaredLength > quotaBytes) throw overQuota();
    }
    await this.#prepare();
    // An existing blob is only hashed (the bytes must still match the id), not written again.
    const temp = existing ? undefined : path.join(this.#tmp, randomBytes(16).toString('hex'));
    let size: number;
    try {
      size = await this.#receive(upload, temp);
    } catch (err) {
      if (temp !== undefined) await rm(temp, { force: true });
      throw err;
    }
    return this.#lock.run(upload.id, async () => {
      const added = await this.#index.add({ id: upload.id, accountId: upload.accountId, size, createdAt: upload.now }, quotaBytes).catch(async (err: unknown) => {
        if (temp !== undefined) await rm(temp, { force: true });
        throw err;
      });
      if (added.kind === 'quota') {
        if (temp !== undefined) await rm(temp, { force: true });
        throw overQuota();
      }
      const present = await exists(target);
      if (temp === undefined) {
        if (present) return { size, created: false };
        // Deleted (expired, or fetched by all) between the check above and now: the bytes were only hashed.
        throw new ServerError(ServerErrorCode.Unavailable, 'the blob was deleted while it was being uploaded again: send it again', { retryAfterMs: 1000 });
      }
      if (added.kind === 'exists' && present) {
        // Stored meanwhile by a concurrent upload of the same bytes.
        await rm(temp, { force: true });
        return { size, created: false };
      }
      await rename(temp, target);
      await syncPath(this.#dir);
      return { size, created: added.kind === 'added' };
    });
  }

  /** Reads the body, hashing it (and writing it to `temp` when given); returns its size. */
  async #receive(upload: BlobUpload, temp: string | undefined): Promise<number> {
    const hash = createHash('sha256');
    const { maxBlobBytes } = this.#limits;
    let size = 0;
    let file: FileHandle | undefined;
    try {
      if (temp !== undefined) file = await open(temp, 'wx', 0o600);
      const writer = file === undefined ? undefined : new BatchedWriter(file);
      for await (const chunk of upload.body) {
        size += chunk.length;
        if (size > maxBlobBytes) throw tooLarge(maxBlobBytes);
        hash.update(chunk);
        await writer?.write(chunk);
      }
      if (size === 0) throw badRequest('empty blob');
      if (hash.digest('hex') !== upload.id) throw badRequest('the blob does not hash to its id');
      await writer?.flush();
      if (file !== undefined) await file.sync();
    } finally {
      await file?.close();
    }
    return size;
  }

  async get(id: string, now: number): Promise<StoredBlob | undefined> {
    const file = this.#file(id);
    const record = await this.#index.get(id, now - this.#limits.ttlMs);
    if (record === undefined) return undefined;
    const present = await stat(file).then((s) => s.size === record.size, () => false);
    if (!present) return undefined;
    return {
      id,
      size: record.size,
      // A MiB per read: a third of the time 64 KiB reads (the default) take for a large blob.
      open: (range) => createReadStream(file, { highWaterMark: 1024 * 1024, ...(range === undefined ? {} : { start: range.start, end: range.end }) }),
      read: async () => {
        const handle = await open(file, 'r');
        try {
          const out = new Uint8Array(record.size);
          let offset = 0;
          while (offset < out.length) {
            const { bytesRead } = await handle.read(out, offset, out.length - offset, offset);
            if (bytesRead === 0) break;
            offset += bytesRead;
          }
          return out.subarray(0, offset);
        } finally {
          await handle.close();
        }
      },
    };
  }

  async expire(now: number): Promise<number> {
    const { ttlMs, retention, fetchedGraceMs } = this.#limits;
    const ids = await this.#index.expire(now - ttlMs);
    if (retention === 'fetched') ids.push(...(await this.#index.expireFetched(now - fetchedGraceMs)));
    for (const id of ids) {
      await this.#lock.run(id, async () => {
        // Uploaded again after the index row went: that upload's file stays.
        if ((await this.#index.get(id, now - ttlMs)) !== undefined) return;
        await rm(this.#file(id), { force: true });
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
    if (blobId !== undefined) this.#file(blobId);
    if (!Number.isSafeInteger(length) || length <= 0) throw badRequest('malformed upload length');
    if (length > maxUploadBytes) throw tooLarge(maxUploadBytes);
    await this.#prepare();
    const notBefore = now - ttlMs;
    if (blobId === undefined) return this.#newUpload(undefined, accountId, length, now);
    const target = this.#file(blobId);
    const stored = await this.#lock.run(blobId, async () => {
      const existing = await this.#index.get(blobId, notBefore);
      if (existing === undefined || !(await stat(target).then((s) => s.size === existing.size, () => false))) return undefined;
      if (existing.size !== length) throw badRequest('the blob is stored with another length');
      // Restarts its expiry (the row exists: no quota is taken).
      await this.#index.add({ id: blobId, accountId, size: existing.size, createdAt: now }, quotaBytes);
      return existing.size;
    });
    if (stored !== undefined) return { kind: 'stored', size: stored };
    const previous = await this.#index.findUpload(accountId, blobId);
    if (previous?.length === length) {
      await this.#index.touchUpload(previous.id, now);
      return { kind: 'upload', state: { uploadId: previous.id, blobId, offset: await this.#offsetOf(previous.id), length }, resumed: true };
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

  async uploadState(uploadId: string, accountId: AccountId): Promise<UploadState> {
    const record = await this.#owned(uploadId, accountId);
    return { uploadId, blobId: record.blobId, offset: await this.#offsetOf(uploadId), length: record.length };
  }

  async appendUpload(chunk: UploadChunk): Promise<AppendResult> {
    const { uploadId, accountId } = chunk;
    if (chunk.blobId !== undefined) this.#file(chunk.blobId);
    const claimed = await this.#owned(uploadId, accountId);
    if (chunk.blobId !== undefined && claimed.blobId !== undefined && chunk.blobId !== claimed.blobId) throw badRequest('Upload-Blob-Id differs from the upload\'s blob id');
    if (this.#busy.has(uploadId)) throw uploadConflict('a chunk of this upload is being received', await this.#offsetOf(uploadId));
    this.#busy.add(uploadId);
    try {
      // Read again once claimed: the sweeper may have deleted it meanwhile.
      const record = await this.#owned(uploadId, accountId);
      const file = this.#partial(uploadId);
      let offset = await this.#offsetOf(uploadId);
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
      const handle = await open(file, 'a', 0o600);
      const writer = new BatchedWriter(handle);
      try {
        for await (const bytes of chunk.body) {
          if (offset + bytes.length > record.length) throw badRequest('the chunk goes beyond the upload length');
          await writer.write(bytes);
          offset += bytes.length;
          if (running !== undefined) {
            running.hash.update(bytes);
            running.offset = offset;
          }
        }
      } finally {
        // Also when the body was cut off or too long: what arrived is kept, the client resumes from the offset.
        await writer.flush().finally(() => handle.close());
        this.#flushInBackground(uploadId, file);
        await this.#index.touchUpload(uploadId, chunk.now);
      }
      if (offset < record.length) return { blobId: record.blobId, offset, length: record.length, complete: false, created: false };
      // The running hash stays until the id is known: an empty chunk at the end with the id finishes.
      const blobId = record.blobId ?? chunk.blobId;
      if (blobId === undefined) throw new ServerError(ServerErrorCode.BadRequest, 'the chunk that completes an upload started without a blob id must carry Upload-Blob-Id', { headers: { 'upload-offset': String(offset) } });
      const digest = running?.offset === offset ? running.hash.digest('hex') : await hashFile(file);
      this.#hashes.delete(uploadId);
      if (digest !== blobId) {
        await this.#index.deleteUpload(uploadId);
        await rm(file, { force: true });
        throw badRequest('the upload does not hash to its blob id; it was deleted');
      }
      // Durable before it is published (and acknowledged): the flushes so far, then the rest.
      await this.#flushes.get(uploadId);
      this.#flushes.delete(uploadId);
      await syncPath(file);
      const created = await this.#lock.run(blobId, async () => {
        const target = this.#file(blobId);
        const added = await this.#index.completeUpload(uploadId, { id: blobId, accountId, size: offset, createdAt: chunk.now });
        if (added.kind === 'exists' && (await exists(target))) {
          await rm(file, { force: true });
          return false;
        }
        await rename(file, target);
        await syncPath(this.#dir);
        return added.kind === 'added';
      });
      return { blobId, offset, length: record.length, complete: true, created };
    } finally {
      this.#busy.delete(uploadId);
    }
  }

  async cancelUpload(uploadId: string, accountId: AccountId): Promise<void> {
    await this.#owned(uploadId, accountId);
    if (!(await this.#remove(uploadId))) throw uploadConflict('a chunk of this upload is being received', await this.#offsetOf(uploadId));
  }

  async expireUploads(now: number): Promise<number> {
    await this.#prepare();
    let removed = 0;
    for (const id of await this.#index.staleUploads(now - this.#limits.uploadTtlMs)) if (await this.#remove(id)) removed++;
    return removed;
  }

  /**
   * Starts writing an upload's received bytes to disk without waiting for it, unless a flush of it is under
   * way: a chunk is answered once it is in the file (the operating system's cache), so the disk works while
   * the next chunk comes, and the upload is synced completely before its blob is published. After a power
   * failure the upload's offset is what reached the disk (HEAD reports it; the client sends the rest again).
   */
  #flushInBackground(uploadId: string, file: string): void {
    if (this.#flushes.has(uploadId)) return;
    const flush = syncPath(file)
      .catch(() => undefined) // the sync before publishing reports a failing disk
      .finally(() => {
        if (this.#flushes.get(uploadId) === flush) this.#flushes.delete(uploadId);
      });
    this.#flushes.set(uploadId, flush);
  }

  /** Deletes an upload's record and file unless a chunk is being received; false then. */
  async #remove(uploadId: string): Promise<boolean> {
    if (this.#busy.has(uploadId)) return false;
    this.#busy.add(uploadId);
    try {
      await this.#index.deleteUpload(uploadId);
      await rm(this.#partial(uploadId), { force: true });
      this.#hashes.delete(uploadId);
      return true;
    } finally {
      this.#busy.delete(uploadId);
    }
  }
}

/** The SHA-256 (hex) of a file, read as a stream. */
/**
 * Gathers the small pieces a request body arrives in (tens of KiB) and writes them with one `writev` per MiB:
 * a write is a round trip to libuv's thread pool, so a piece each would cost more than the bytes.
 */
class BatchedWriter {
  static readonly BATCH_BYTES = 1024 * 1024;
  /** Below IOV_MAX (1,024), however small the pieces. */
  static readonly BATCH_PIECES = 512;
  #pending: Uint8Array[] = [];
  #bytes = 0;

  constructor(readonly handle: FileHandle) {}

  async write(bytes: Uint8Array): Promise<void> {
    this.#pending.push(bytes);
    this.#bytes += bytes.length;
    if (this.#bytes >= BatchedWriter.BATCH_BYTES || this.#pending.length >= BatchedWriter.BATCH_PIECES) await this.flush();
  }

  /** Writes what is pending (all of it: `writev` may write less than asked, the rest is written after). */
  async flush(): Promise<void> {
    let buffers = this.#pending;
    this.#pending = [];
    this.#bytes = 0;
    while (buffers.length > 0) {
      const { bytesWritten } = await this.handle.writev(buffers);
      buffers = rest(buffers, bytesWritten);
    }
  }
}

/** The buffers after the first `n` bytes of them. */
function rest(buffers: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** fsync of a file (its data and size) or of a folder (its entries). */
async function syncPath(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

/** fsync of a directory, so that a rename into it survives a crash. */
