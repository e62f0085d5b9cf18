/**
 * The S3 operations the S3 blob store needs, over `@aws-sdk/client-s3`, with S3's failures mapped to the
 * server's typed errors: a missing object is `undefined`, a lost conditional write is `false`, anything
 * else (S3 down, refusing our credentials, answering 5xx) is a 503 `SERVER_UNAVAILABLE` that says to retry.
 * Nothing here buffers an object: bodies in and out are streams, or pieces the caller sized.
 *
 * Only plain S3 is used (SigV4, path-style or virtual-hosted, no checksum trailers), so any S3-compatible
 * server works: Ceph's radosgw is what the tests run against. Conditional creation (`If-None-Match: *`)
 * is required: it makes upload pieces write-once and the cross-node lock below possible.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { ServerError, ServerErrorCode } from '../errors.js';

/** An object of a listing. */
export interface S3Entry {
  readonly key: string;
  readonly size: number;
  /** Milliseconds since the epoch, by the S3 server's clock. */
  readonly lastModified: number;
}

/** Parts of a multipart upload must be this large, except the last (S3's rule). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** The largest object CopyObject copies in one request, and the largest part. */
const MAX_COPY_BYTES = 5 * 1024 * 1024 * 1024;
/** The most parts of a multipart upload. */
const MAX_PARTS = 10_000;
/** Parts sent at once while assembling an object. */
const PART_CONCURRENCY = 4;

/** Retry after this long when S3 fails (503 `Retry-After`). */
const RETRY_AFTER_MS = 1000;

/** The HTTP status S3 answered with, if it answered. */
export function s3Status(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const metadata = (err as { $metadata?: { httpStatusCode?: number } }).$metadata;
  return metadata?.httpStatusCode;
}

/** The typed error for a failed S3 request (a ServerError passes through). */
export function storageUnavailable(err: unknown): ServerError {
  if (ServerError.is(err)) return err;
  return new ServerError(ServerErrorCode.Unavailable, 'the blob storage is unavailable', { retryAfterMs: RETRY_AFTER_MS, cause: err });
}

/** Runs an S3 request; every failure becomes a 503 (see {@link storageUnavailable}). */
async function call<T>(request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (err) {
    throw storageUnavailable(err);
  }
}

/** Runs an S3 request that may find no object: undefined on 404, a 503 for any other failure. */
async function optional<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (err) {
    if (s3Status(err) === 404) return undefined;
    throw storageUnavailable(err);
  }
}

/** A source of bytes for {@link S3Bucket.assemble}: an object, read whole. */
export interface S3Piece {
  readonly key: string;
  readonly size: number;
}

/** The objects of one bucket under a key prefix. */
export class S3Bucket {
  readonly #s3: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  /** `prefix` is prepended to every key (empty, or ending in `/`). */
  constructor(s3: S3Client, bucket: string, prefix: string) {
    this.#s3 = s3;
    this.#bucket = bucket;
    this.#prefix = prefix;
  }

  get name(): string {
    return this.#bucket;
  }

  #key(key: string): string {
    return this.#prefix + key;
  }

  /** Creates the bucket unless it exists (and is ours). */
  async ensure(): Promise<void> {
    const found = await optional(this.#s3.send(new HeadBucketCommand({ Bucket: this.#bucket })));
    if (found !== undefined) return;
    try {
      await this.#s3.send(new CreateBucketCommand({ Bucket: this.#bucket }));
    } catch (err) {
      // Another node created it meanwhile.
      if (s3Status(err) === 409 && (err as { name?: string }).name === 'BucketAlreadyOwnedByYou') return;
      throw storageUnavailable(err);
    }
  }

  /** The object's size, or undefined when there is none. */
  async size(key: string): Promise<number | undefined> {
    const head = await optional(this.#s3.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) })));
    return head === undefined ? undefined : (head.ContentLength ?? 0);
  }

  /** Writes an object (replacing any). */
  async put(key: string, body: Uint8Array): Promise<void> {
    await call(this.#s3.send(new PutObjectCommand({ Bucket: this.#bucket, Key: this.#key(key), Body: body, ContentLength: body.length })));
  }

  /** Writes an object only if there is none by that key (`If-None-Match: *`); false when there is one. */
  async create(key: string, body: Uint8Array): Promise<boolean> {
    try {
      await this.#s3.send(new PutObjectCommand({ Bucket: this.#bucket, Key: this.#key(key), Body: body, ContentLength: body.length, IfNoneMatch: '*' }));
      return true;
    } catch (err) {
      // 409 is what some servers answer when two conditional writes of one key race.
      const status = s3Status(err);
      if (status === 412 || status === 409) return false;
      throw storageUnavailable(err);
    }
  }

  /** The object's bytes, all at once (the caller bounds the size), or undefined. */
  async read(key: string): Promise<Uint8Array | undefined> {
    const got = await optional(this.#s3.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) })));
    if (got?.Body === undefined) return got === undefined ? undefined : new Uint8Array(0);
    return call(got.Body.transformToByteArray());
  }

  /**
   * A stream of the object's bytes (or of `start..end`, both included), opened on the first read; an S3
   * failure, also a missing object, destroys it with a 503. Destroying the stream aborts the request.
   */
  stream(key: string, range?: { start: number; end: number }): Readable {
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    const abort = new AbortController();
    let opened = false;
    out.once('close', () => {
      if (!opened) abort.abort();
    });
    const request = new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(key), ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }) });
    this.#s3.send(request, { abortSignal: abort.signal }).then(
      (got) => {
        opened = true;
        const body = got.Body as Readable | undefined;
        if (body === undefined) {
          out.end();
          return;
        }
        if (out.destroyed) {
          body.destroy();
          return;
        }
        // pipeline destroys both on either side's failure (a closed response aborts the download).
        pipeline(body, out).catch((err: unknown) => out.destroy(storageUnavailable(err)));
      },
      (err: unknown) => {
        opened = true;
        out.destroy(storageUnavailable(err));
      },
    );
    return out;
  }

  /** The bytes of `pieces` one after the other, as one stream (one GET at a time). */
  concat(pieces: readonly S3Piece[]): Readable {
    const open = (key: string): AsyncIterable<Buffer> => this.stream(key);
    return Readable.from(
      (async function* () {
        for (const piece of pieces) if (piece.size > 0) yield* open(piece.key);
      })(),
      { objectMode: false, highWaterMark: 1024 * 1024 },
    );
  }

  /** Objects whose keys start with `prefix`, in key order, after `startAfter` if given. */
  async list(prefix: string, startAfter?: string): Promise<S3Entry[]> {
    const out: S3Entry[] = [];
    let token: string | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      const listed = await call(
        this.#s3.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#key(prefix),
            ...(token === undefined ? {} : { ContinuationToken: token }),
            ...(startAfter === undefined || token !== undefined ? {} : { StartAfter: this.#key(startAfter) }),
          }),
        ),
      );
      for (const entry of listed.Contents ?? []) {
        if (entry.Key === undefined) continue;
        out.push({ key: entry.Key.slice(this.#prefix.length), size: entry.Size ?? 0, lastModified: entry.LastModified?.getTime() ?? 0 });
      }
      token = listed.IsTruncated === true ? listed.NextContinuationToken : undefined;
      if (token === undefined) break;
    }
    return out;
  }

  /** The "folders" right under `prefix` (keys up to the next `/`), without the prefix. */
  async folders(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      const listed = await call(
        this.#s3.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#key(prefix), Delimiter: '/', ...(token === undefined ? {} : { ContinuationToken: token }) })),
      );
      for (const common of listed.CommonPrefixes ?? []) {
        if (common.Prefix !== undefined) out.push(common.Prefix.slice(this.#key(prefix).length).replace(/\/$/, ''));
      }
      token = listed.IsTruncated === true ? listed.NextContinuationToken : undefined;
      if (token === undefined) break;
    }
    return out;
  }

  /**
   * Aborts multipart uploads under `prefix` started before `before` (by the S3 server's clock): assemblies a
   * crash interrupted, whose parts would otherwise take space for ever. Returns how many.
   */
  async abortStaleMultipart(prefix: string, before: number): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const listed = await call(
        this.#s3.send(
          new ListMultipartUploadsCommand({
            Bucket: this.#bucket,
            Prefix: this.#key(prefix),
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(idMarker === undefined ? {} : { UploadIdMarker: idMarker }),
          }),
        ),
      );
      for (const upload of listed.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined || (upload.Initiated?.getTime() ?? 0) >= before) continue;
        await call(this.#s3.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: upload.Key, UploadId: upload.UploadId })));
        aborted++;
      }
      if (listed.IsTruncated !== true) break;
      keyMarker = listed.NextKeyMarker;
      idMarker = listed.NextUploadIdMarker;
    }
    return aborted;
  }

  /** Deletes an object (none is fine). */
  async delete(key: string): Promise<void> {
    await call(this.#s3.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) })));
  }

  /** Deletes objects, a thousand per request. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((key) => ({ Key: this.#key(key) }));
      const result = await call(this.#s3.send(new DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: batch, Quiet: true } })));
      const failed = (result.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) throw storageUnavailable(new Error(`S3 did not delete ${failed.length} objects: ${failed[0]?.Code ?? 'unknown'}`));
    }
  }

  /** Deletes every object under `prefix`. */
  async deleteAll(prefix: string): Promise<void> {
    await this.deleteMany((await this.list(prefix)).map((e) => e.key));
  }

  /**
   * Writes `target` as the concatenation of `pieces`, on the S3 server where it can: one piece is copied
   * (CopyObject); several become the parts of a multipart upload, each piece of at least 5 MiB copied
   * (UploadPartCopy) and runs of smaller ones streamed through this process as one part (S3 allows a part
   * under 5 MiB only at the end). The target appears whole or not at all; a failure aborts the multipart
   * upload. `target` is replaced if it exists.
   */
  async assemble(pieces: readonly S3Piece[], target: string): Promise<void> {
    const total = pieces.reduce((sum, p) => sum + p.size, 0);
    const only = pieces.length === 1 ? pieces[0] : undefined;
    if (only !== undefined && only.size <= MAX_COPY_BYTES) {
      await call(this.#s3.send(new CopyObjectCommand({ Bucket: this.#bucket, Key: this.#key(target), CopySource: this.#source(only.key) })));
      return;
    }
    const parts = planParts(pieces, Math.max(MIN_PART_BYTES, Math.ceil(total / (MAX_PARTS - 1))));
    const created = await call(this.#s3.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#key(target) })));
    const uploadId = created.UploadId;
    if (uploadId === undefined) throw storageUnavailable(new Error('S3 returned no multipart upload id'));
    try {
      const done: CompletedPart[] = new Array<CompletedPart>(parts.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < parts.length; i = next++) {
          const group = parts[i] ?? [];
          const partNumber = i + 1;
          const first = group[0];
          if (group.length === 1 && first !== undefined && first.size >= MIN_PART_BYTES && first.size <= MAX_COPY_BYTES) {
            const copied = await call(
              this.#s3.send(new UploadPartCopyCommand({ Bucket: this.#bucket, Key: this.#key(target), UploadId: uploadId, PartNumber: partNumber, CopySource: this.#source(first.key) })),
            );
            done[i] = { PartNumber: partNumber, ETag: copied.CopyPartResult?.ETag };
          } else {
            const length = group.reduce((sum, p) => sum + p.size, 0);
            const body = this.concat(group);
            try {
              const sent = await call(
                this.#s3.send(new UploadPartCommand({ Bucket: this.#bucket, Key: this.#key(target), UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: length })),
              );
              done[i] = { PartNumber: partNumber, ETag: sent.ETag };
            } finally {
              body.destroy();
            }
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, parts.length) }, worker));
      await call(this.#s3.send(new CompleteMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#key(target), UploadId: uploadId, MultipartUpload: { Parts: done } })));
    } catch (err) {
      await this.#s3.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#key(target), UploadId: uploadId })).catch(() => undefined);
      throw storageUnavailable(err);
    }
  }

  /** `CopySource`: the bucket and the key, URL-encoded. */
  #source(key: string): string {
    return `${encodeURIComponent(this.#bucket)}/${this.#key(key).split('/').map(encodeURIComponent).join('/')}`;
  }

  /**
   * Runs `fn` while holding the bucket-wide lock `name` (an object created with `If-None-Match: *`), so
   * that nodes sharing the bucket serialize it. A lock older than `leaseMs` (its holder died) is broken.
   * Waits at most `leaseMs` plus a little, then fails with a 503.
   */
  async withLock<T>(name: string, leaseMs: number, fn: () => Promise<T>): Promise<T> {
    const key = `locks/${name}`;
    const token = randomBytes(16).toString('hex');
    const deadline = Date.now() + leaseMs + 5000;
    let pause = 5;
    for (;;) {
      const body = new TextEncoder().encode(JSON.stringify({ token, expiresAt: Date.now() + leaseMs }));
      if (await this.create(key, body)) break;
      const held = await this.read(key);
      if (held !== undefined && lockExpired(held)) {
        // Broken only if it is still that stale lock (a second node breaking it may have taken it since).
        const again = await this.read(key);
        if (again !== undefined && Buffer.from(again).equals(Buffer.from(held))) await this.delete(key);
        continue;
      }
      if (Date.now() > deadline) throw new ServerError(ServerErrorCode.Unavailable, 'the blob is locked by another server', { retryAfterMs: RETRY_AFTER_MS });
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 200);
    }
    const acquired = Date.now();
    try {
      return await fn();
    } finally {
      // Ours unless the lease ran out and another node broke it: then delete it only if it is still ours.
      // A lock left behind (S3 failing here) is broken when its lease ends.
      if (Date.now() - acquired < leaseMs / 2) await this.delete(key).catch(() => undefined);
      else {
        const held = await this.read(key).catch(() => undefined);
        if (held !== undefined && lockToken(held) === token) await this.delete(key).catch(() => undefined);
      }
    }
  }
}

function lockToken(bytes: Uint8Array): string | undefined {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { token?: unknown };
    return typeof parsed.token === 'string' ? parsed.token : undefined;
  } catch {
    return undefined;
  }
}

function lockExpired(bytes: Uint8Array): boolean {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { expiresAt?: unknown };
    return typeof parsed.expiresAt !== 'number' || parsed.expiresAt < Date.now();
  } catch {
    return true;
  }
}

/**
 * Groups pieces into the parts of a multipart upload: a piece of `minPart` bytes or more on its own (to be
 * copied on the server), smaller ones gathered until the group reaches `minPart` (to be streamed); only the
 * last group may stay smaller.
 */
export function planParts(pieces: readonly S3Piece[], minPart: number): S3Piece[][] {
  const groups: S3Piece[][] = [];
  let current: S3Piece[] = [];
  let bytes = 0;
  for (const piece of pieces) {
    if (current.length === 0 && piece.size >= minPart) {
      groups.push([piece]);
      continue;
    }
    current.push(piece);
    bytes += piece.size;
    if (bytes >= minPart) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
