/**
 * Uploading an attachment (docs/media.md "Upload"): one pass that encrypts the source as it is read and sends
 * the ciphertext in PATCH chunks of a resumable upload, the last chunk naming the blob (its SHA-256, known only
 * once everything was encrypted). Encryption is deterministic under the media key, so an interrupted upload
 * resumes by encrypting again from the start, skipping what the server already has:
 *
 * - a dropped connection, a timeout or a 5xx: `HEAD` gives the server's offset, and the chunk continues from
 *   there (bounded retries with backoff); a 409 re-syncs to the offset it reports;
 * - an offset behind the bytes still held: those are sent again; behind what was already let go: the pass
 *   starts over (same key, same ciphertext) and skips up to that offset;
 * - an upload that is gone (expired): a new one, same key;
 * - a crash: with a {@link MediaSource.resumeKey}, the job (media key, upload id) is in the store
 *   ({@link UploadJobRecord}); sending the same source again continues it.
 */
import { concatBytes, constantTimeEqual, fromHex, toHex, type CryptoProvider } from '../../protocol/index.js';
import { readAhead, sleep } from '../async.js';
import { ClientError, ClientErrorCode, abortError } from '../errors.js';
import type { ClientStore, UploadJobRecord } from '../store/types.js';
import { Backoff, type BackoffOptions } from '../transport/backoff.js';
import type { BlobHttp } from './blob-http.js';
import { encryptMedia, encryptedMediaSize, MEDIA_KEY_BYTES, type MediaType } from './crypto.js';
import { MAX_ATTACHMENT_BYTES } from './pointers.js';
import type { MediaHashing, MediaSource, TransferOptions } from './types.js';

/** Default size of an upload chunk: 8 MiB. */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024;
/** Upload jobs older than this are forgotten: the server deletes an upload without a chunk for 24 hours. */
export const UPLOAD_JOB_TTL_MS = 24 * 3600_000;

export interface UploadContext {
  readonly crypto: CryptoProvider;
  readonly store: ClientStore;
  readonly http: BlobHttp;
  readonly now: () => number;
  /** Bytes per PATCH (default {@link DEFAULT_UPLOAD_CHUNK_BYTES}). */
  readonly chunkBytes?: number | undefined;
  /** Failed requests in a row before giving up (default 6). */
  readonly maxAttempts?: number | undefined;
  readonly backoff?: BackoffOptions | undefined;
  /** Where the SHA-256s run (Node: `workerHashing`, on another core than the encryption); default inline. */
  readonly hashing?: MediaHashing | undefined;
}

/** What an upload gives the pointer. */
export interface UploadedMedia {
  readonly type: MediaType;
  readonly blobId: string;
  readonly mediaKey: Uint8Array;
  readonly plaintextSha256: Uint8Array;
  readonly encryptedSha256: Uint8Array;
  /** Plaintext bytes. */
  readonly size: number;
  readonly uploadedAt: number;
  /** Encrypted bytes this call sent (0 for a blob the server had). */
  readonly bytesSent: number;
}

export interface UploadOptions extends TransferOptions {
  /**
   * Re-upload of a file sent before (forwarding, when the blob is gone): its media key and blob id. The blob
   * is offered first (`Upload-Blob-Id`): when the server has it nothing is sent.
   */
  readonly known?: { readonly mediaKey: Uint8Array; readonly blobId: string; readonly plaintextSha256: Uint8Array } | undefined;
}

/** Buffers {@link packChunks} fills in turn: the chunk being sent, the next one ready and the one being made. */
const PACK_BUFFERS = 3;

/**
 * The encrypted stream (pieces of any size) regrouped into chunks of `size` bytes (the last one shorter),
 * copied into {@link PACK_BUFFERS} reused buffers instead of a new one per chunk (a fresh 8 MiB buffer costs
 * as many page faults as its copy). A chunk stays valid while the caller holds it and the next one is made:
 * the caller reads it at most one chunk ahead ({@link readAhead}) and copies what it keeps longer.
 */
async function* packChunks(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array, void, undefined> {
  const buffers: Uint8Array[] = [];
  let turn = 0;
  let chunk: Uint8Array | undefined;
  let filled = 0;
  for await (const piece of source) {
    for (let at = 0; at < piece.length; ) {
      if (chunk === undefined) {
        const i = turn++ % PACK_BUFFERS;
        chunk = buffers[i] ??= new Uint8Array(size);
        filled = 0;
      }
      const n = Math.min(piece.length - at, size - filled);
      chunk.set(piece.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === size) {
        const full = chunk;
        chunk = undefined;
        yield full;
      }
    }
  }
  if (chunk !== undefined && filled > 0) yield chunk.subarray(0, filled);
}

/** Thrown inside a pass when the server needs bytes the pass already let go: encrypt again from the start. */
class Restart extends Error {}

/** Uploads `source` (encrypted under a fresh key, or the job's / `known` key) and resolves with the pointer fields. */
export async function uploadAttachment(ctx: UploadContext, source: MediaSource, type: MediaType, options: UploadOptions = {}): Promise<UploadedMedia> {
  if (!Number.isSafeInteger(source.size) || source.size < 0 || source.size > MAX_ATTACHMENT_BYTES) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'an attachment is 0 bytes to 2 GiB');
  }
  const chunkBytes = ctx.chunkBytes ?? DEFAULT_UPLOAD_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new ClientError(ClientErrorCode.InvalidArgument, 'the upload chunk size is a positive integer');
  const known = options.known;
  if (known && (known.mediaKey.length !== MEDIA_KEY_BYTES || !/^[0-9a-f]{64}$/.test(known.blobId))) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'a known blob needs a 32-byte media key and a blob id');
  }
  const resumeKey = source.resumeKey;
  const now = ctx.now();
  let job = await ctx.store.transaction(async (tx) => {
    await tx.uploads.prune(now - UPLOAD_JOB_TTL_MS);
    if (resumeKey === undefined) return undefined;
    const j = await tx.uploads.get(resumeKey);
    // Another file under the same key (its size or type changed), or a forward under another key: start over.
    const usable = j && j.size === source.size && j.type === type && (!known || constantTimeEqual(j.mediaKey, known.mediaKey));
    if (j && !usable) await tx.uploads.remove(resumeKey);
    return usable ? j : undefined;
  });
  const mediaKey = job?.mediaKey ?? known?.mediaKey ?? ctx.crypto.randomBytes(MEDIA_KEY_BYTES);
  const saveJob = async (next: UploadJobRecord): Promise<void> => {
    job = next;
    if (resumeKey !== undefined) await ctx.store.transaction((tx) => tx.uploads.put(next));
  };
  if (!job) await saveJob({ resumeKey: resumeKey ?? '', type, mediaKey, size: source.size, uploadId: undefined, completed: undefined, createdAt: now });
  const done = job?.completed;
  const knownBlob = done ? { blobId: done.blobId, plaintextSha256: done.plaintextSha256 } : known;
  const run = new UploadRun(ctx, source, type, mediaKey, encryptedMediaSize(source.size), chunkBytes, options, knownBlob);
  const result = await run.start(job?.uploadId, (uploadId) => saveJob({ ...(job as UploadJobRecord), uploadId }));
  if (resumeKey !== undefined) {
    await saveJob({
      ...(job as UploadJobRecord),
      completed: { blobId: result.blobId, plaintextSha256: result.plaintextSha256, encryptedSha256: result.encryptedSha256, uploadedAt: result.uploadedAt },
    });
  }
  return result;
}

/** Forgets the job of `resumeKey` (once its message is sent). */
export async function forgetUploadJob(store: ClientStore, resumeKey: string | undefined): Promise<void> {
  if (resumeKey === undefined) return;
  await store.transaction((tx) => tx.uploads.remove(resumeKey));
}

class UploadRun {
  readonly #backoff: Backoff;
  readonly #maxAttempts: number;
  #uploadId: string | undefined;
  /** The server's offset, as far as we know. */
  #offset = 0;
  #sent = 0;
  #failures = 0;
  /** Set once the server published the blob. */
  #complete = false;
  /** Hashes of a pass that covered the whole file (known before the last chunk is sent). */
  #hashes: { plaintextSha256: Uint8Array; encryptedSha256: Uint8Array } | undefined;
  #onUploadId: (id: string) => Promise<void> = async () => undefined;

  constructor(
    readonly ctx: UploadContext,
    readonly source: MediaSource,
    readonly type: MediaType,
    readonly mediaKey: Uint8Array,
    readonly total: number,
    readonly chunkBytes: number,
    readonly options: TransferOptions,
    /** The blob when known before the pass (a forward, or a job that completed before). */
    readonly known: { readonly blobId: string; readonly plaintextSha256: Uint8Array } | undefined,
  ) {
    this.#backoff = new Backoff(ctx.backoff ?? { baseMs: 250, maxMs: 8_000 });
    this.#maxAttempts = ctx.maxAttempts ?? 6;
  }

  get #signal(): AbortSignal | undefined {
    return this.options.signal;
  }

  async start(uploadId: string | undefined, onUploadId: (id: string) => Promise<void>): Promise<UploadedMedia> {
    this.#onUploadId = onUploadId;
    if (uploadId !== undefined) {
      const offset = await this.#retrying(() => this.ctx.http.uploadOffset(uploadId, this.#signal));
      if (offset !== undefined) {
        this.#uploadId = uploadId;
        this.#offset = offset;
      }
    }
    if (this.#uploadId === undefined) await this.#create(this.known?.blobId);
    for (let restarts = 0; !this.#complete; restarts++) {
      if (restarts > this.#maxAttempts) throw new ClientError(ClientErrorCode.ServerRejected, 'the upload kept losing its place on the server', { retryable: true });
      try {
        await this.#pass();
      } catch (err) {
        if (!(err instanceof Restart)) throw err;
      }
    }
    // The server had the blob before any pass (offered by id): the known hashes stand.
    this.#hashes ??= this.known && { plaintextSha256: this.known.plaintextSha256, encryptedSha256: fromHex(this.known.blobId) };
    if (!this.#hashes) throw new ClientError(ClientErrorCode.BadResponse, 'the upload completed without a pass');
    const blobId = toHex(this.#hashes.encryptedSha256);
    return { type: this.type, blobId, mediaKey: this.mediaKey, ...this.#hashes, size: this.source.size, uploadedAt: this.ctx.now(), bytesSent: this.#sent };
  }

  /** Creates an upload (offering the blob when its id is known); a stored blob completes the run. */
  async #create(blobId: string | undefined): Promise<void> {
    const created = await this.#retrying(() => this.ctx.http.createUpload(this.total, blobId, this.#signal));
    if (created.kind === 'stored') {
      if (created.size !== this.total) throw new ClientError(ClientErrorCode.BadResponse, 'the stored blob has another size');
      this.#complete = true;
      this.#offset = this.total;
      this.#progress();
      return;
    }
    if (created.length !== this.total) throw new ClientError(ClientErrorCode.BadResponse, 'the upload has another length');
    this.#uploadId = created.uploadId;
    this.#offset = created.offset;
    await this.#onUploadId(created.uploadId);
    this.#progress();
  }

  /** One encryption pass from the start: sends what the server lacks, chunk by chunk, then the last chunk with the blob id. */
  async #pass(): Promise<void> {
    const encryption = encryptMedia(this.ctx.crypto, this.type, this.source.open(), { mediaKey: this.mediaKey, hashing: this.ctx.hashing });
    /** Held bytes (not yet confirmed by the server), from stream position `heldAt`. */
    let held: Uint8Array[] = [];
    let heldAt = this.#offset;
    let heldBytes = 0;
    let position = 0;
    /** Sends the held bytes (the last range, with the blob id), or with `chunk` only the first `chunk` of them. */
    const send = async (final: string | undefined, chunk?: number): Promise<void> => {
      const bytes = held.length === 1 ? (held[0] as Uint8Array) : concatBytes(...held);
      const part = chunk === undefined ? bytes : bytes.subarray(0, chunk);
      await this.#sendRange(part, heldAt, final);
      // The rest starts after the part; the server may be further on already (it had those bytes).
      const restAt = heldAt + part.length;
      const rest = bytes.subarray(Math.min(bytes.length, part.length + Math.max(0, this.#offset - restAt)));
      // A copy: the chunk's buffer is reused for a later chunk.
      held = rest.length > 0 ? [rest.slice()] : [];
      heldBytes = rest.length;
      heldAt = Math.max(restAt, this.#offset);
    };
    // Encrypting the next chunk overlaps the upload of the one before (a chunk's worth is made ahead).
    for await (const chunk of readAhead(packChunks(encryption.chunks, this.chunkBytes), this.chunkBytes)) {
      this.#checkAborted();
      if (this.#complete) return;
      const end = position + chunk.length;
      if (end > this.total) throw new ClientError(ClientErrorCode.InvalidArgument, 'the source is longer than its size');
      if (end > this.#offset) {
        if (heldBytes === 0) heldAt = Math.max(position, this.#offset);
        const from = Math.max(position, heldAt + heldBytes) - position;
        const part = chunk.subarray(from);
        held.push(part);
        heldBytes += part.length;
      }
      position = end;
      // Whole chunks go as soon as they are complete, except the last bytes of the file (they carry the blob id).
      while (heldBytes >= this.chunkBytes && heldAt + this.chunkBytes < this.total && !this.#complete) await send(undefined, this.chunkBytes);
    }
    const info = await encryption.result;
    if (info.size !== this.source.size || info.encryptedSize !== this.total) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'the source gave another number of bytes than its size');
    }
    this.#hashes = { plaintextSha256: info.plaintextSha256, encryptedSha256: info.encryptedSha256 };
    const blobId = toHex(info.encryptedSha256);
    if (this.known !== undefined && blobId !== this.known.blobId) {
      throw new ClientError(ClientErrorCode.InvalidArgument, 'the file is not the one its pointer names (it changed since it was sent)');
    }
    if (this.#complete) return;
    await send(blobId);
    if (!this.#complete) throw new Restart('the last chunk did not complete the upload');
  }

  /**
   * Sends `bytes` (stream positions `start`..) until the server holds all of them (and, with `blobId`, has
   * published the blob). Re-syncs on 409s and failures; throws {@link Restart} when the server needs bytes
   * before `start`.
   */
  async #sendRange(bytes: Uint8Array, start: number, blobId: string | undefined): Promise<void> {
    const end = start + bytes.length;
    for (;;) {
      this.#checkAborted();
      if (this.#complete) return;
      if (this.#offset < start) throw new Restart('the server is behind the bytes held');
      // Done with this range once the server holds it (the last range: once the blob is published).
      if (this.#offset >= end && blobId === undefined) return;
      const uploadId = this.#uploadId;
      if (uploadId === undefined) {
        await this.#create(blobId);
        continue;
      }
      const body = bytes.subarray(this.#offset - start);
      let outcome;
      try {
        outcome = await this.ctx.http.patch(uploadId, this.#offset, body, { blobId, signal: this.#signal });
      } catch (err) {
        await this.#recover(err, blobId);
        continue;
      }
      if (outcome.kind === 'complete') {
        this.#sent += body.length;
        this.#complete = true;
        this.#offset = this.total;
        this.#failures = 0;
        this.#progress();
        return;
      }
      if (outcome.kind === 'progress') {
        this.#sent += Math.max(0, outcome.offset - this.#offset);
        this.#failures = 0;
        this.#backoff.reset();
      }
      if (outcome.kind === 'conflict' && outcome.offset === this.#offset) {
        // Another request of this upload is still being received: wait for it to end.
        await this.#pause(new ClientError(ClientErrorCode.ServerRejected, 'the upload is busy', { status: 409, retryable: true }));
      }
      this.#offset = outcome.offset;
      this.#progress();
    }
  }

  /** After a failed PATCH: waits, asks the server where it is (or whether the upload is gone) and carries on. */
  async #recover(err: unknown, blobId: string | undefined): Promise<void> {
    if (ClientError.is(err, ClientErrorCode.BadBlob)) {
      await this.#uploadGone(blobId);
      return;
    }
    if (!ClientError.is(err) || !err.retryable || this.#signal?.aborted) throw err;
    await this.#pause(err);
    const uploadId = this.#uploadId as string;
    const offset = await this.#retrying(() => this.ctx.http.uploadOffset(uploadId, this.#signal));
    if (offset === undefined) await this.#uploadGone(blobId);
    else this.#offset = offset;
  }

  /**
   * The upload is not on the server any more: completed (the answer to the last chunk was lost; offering the
   * blob by id says so), or expired (a new upload, same key: the pass starts over).
   */
  async #uploadGone(blobId: string | undefined): Promise<void> {
    this.#uploadId = undefined;
    this.#offset = 0;
    await this.#create(blobId);
    if (!this.#complete) throw new Restart('the upload was replaced');
  }

  async #pause(err: ClientError): Promise<void> {
    if (++this.#failures >= this.#maxAttempts) throw err;
    await sleep(Math.max(err.retryAfterMs ?? 0, this.#backoff.next()), this.#signal);
  }

  /** `fn`, tried again on retryable failures (bounded). */
  async #retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (!ClientError.is(err) || !err.retryable || this.#signal?.aborted) throw err;
        await this.#pause(err);
      }
    }
  }

  #checkAborted(): void {
    const signal = this.#signal;
    if (signal?.aborted) throw abortError(signal);
  }

  #progress(): void {
    this.options.onProgress?.({ direction: 'upload', transferred: this.#offset, total: this.total });
  }
}
