/**
 * Blobs: encrypted files (attachments, history bundles) that clients upload once and fetch by id. A blob's
 * id is the lowercase hex SHA-256 of its bytes, checked on upload, so equal bytes are stored once. Clients
 * encrypt before uploading: the server never holds a key to them.
 *
 * {@link BlobStore} is what the routes use; {@link FilesystemBlobStore} keeps the bytes as files in
 * `<data dir>/blobs/` and their metadata (uploader, size, time) in a {@link BlobIndex}. Resumable chunked
 * uploads, range requests and an S3 backend are meant to be further implementations of this interface.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { badRequest, ServerError, ServerErrorCode } from '../errors.js';
import type { AccountId } from '../ids.js';
import type { BlobIndex } from '../storage/stores.js';

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

/** The limits an upload is held to. */
export interface BlobLimits {
  readonly maxBlobBytes: number;
  readonly quotaBytes: number;
  /** Blobs created before this are expired (not served, not counted). */
  readonly ttlMs: number;
}

/** A stored blob, ready to be read. */
export interface StoredBlob {
  readonly id: string;
  readonly size: number;
  /** A stream of the bytes. */
  open(): Readable;
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
  /** Deletes blobs uploaded more than the TTL before `now`; returns how many. */
  expire(now: number): Promise<number>;
}

/** Serializes work per blob id (an upload renaming a file and a sweep deleting it must not interleave). */
class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

function tooLarge(limit: number): ServerError {
  return new ServerError(ServerErrorCode.PayloadTooLarge, `blob above ${limit} bytes`);
}

function overQuota(): ServerError {
  return new ServerError(ServerErrorCode.QuotaExceeded, "the account's blob quota is used up", { retryAfterMs: 60 * 60 * 1000 });
}

/**
 * {@link BlobStore} on the local file system: `<dir>/<id>`, written to `<dir>/tmp/<random>`, fsync'd,
 * renamed into place and the directory fsync'd, then recorded in the index. Memory stays bounded: bodies
 * are hashed and written chunk by chunk.
 */
export class FilesystemBlobStore implements BlobStore {
  readonly #dir: string;
  readonly #tmp: string;
  readonly #index: BlobIndex;
  readonly #limits: BlobLimits;
  readonly #lock = new KeyedLock();
  #ready: Promise<void> | undefined;

  constructor(dir: string, index: BlobIndex, limits: BlobLimits) {
    this.#dir = dir;
    this.#tmp = path.join(dir, 'tmp');
    this.#index = index;
    this.#limits = limits;
  }

  /** Creates the folders and deletes temporary files a crash left behind. */
  #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.#tmp, { recursive: true });
      for (const name of await readdir(this.#tmp)) await rm(path.join(this.#tmp, name), { force: true });
    })();
    return this.#ready;
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
    const existing = await this.#index.get(upload.id, notBefore);
    if (existing === undefined && upload.declaredLength !== undefined) {
      if ((await this.#index.usage(upload.accountId, notBefore)) + upload.declaredLength > quotaBytes) throw overQuota();
    }
    await this.#prepare();
    // An existing blob is only hashed (the bytes must still match the id), not written again.
    const temp = existing === undefined ? path.join(this.#tmp, randomBytes(16).toString('hex')) : undefined;
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
      if (temp === undefined) return { size, created: false };
      const present = await stat(target).then(() => true, () => false);
      if (added.kind === 'exists' && present) {
        // Stored meanwhile by a concurrent upload of the same bytes.
        await rm(temp, { force: true });
        return { size, created: false };
      }
      await rename(temp, target);
      await syncDirectory(this.#dir);
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
      for await (const chunk of upload.body) {
        size += chunk.length;
        if (size > maxBlobBytes) throw tooLarge(maxBlobBytes);
        hash.update(chunk);
        if (file !== undefined) await file.write(chunk);
      }
      if (size === 0) throw badRequest('empty blob');
      if (hash.digest('hex') !== upload.id) throw badRequest('the blob does not hash to its id');
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
      open: () => createReadStream(file),
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
    const ids = await this.#index.expire(now - this.#limits.ttlMs);
    for (const id of ids) {
      await this.#lock.run(id, async () => {
        // Uploaded again after the index row went: that upload's file stays.
        if ((await this.#index.get(id, now - this.#limits.ttlMs)) !== undefined) return;
        await rm(this.#file(id), { force: true });
      });
    }
    return ids.length;
  }
}

/** fsync of a directory, so that a rename into it survives a crash. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
