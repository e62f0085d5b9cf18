/**
 * The blob routes a media transfer needs, over HTTP (`fetch`, injectable; the WebSocket carries frames of 1 MiB
 * at most, and resumable uploads are HTTP only): resumable uploads (`POST`/`HEAD`/`PATCH`/`DELETE
 * /v1/blobs/uploads`), ranged downloads streamed from the response body, and the `fetched` report of
 * retention mode `fetched` (docs/api.md "Blobs", docs/media.md).
 *
 * Errors are typed: 401 `CLIENT_UNAUTHORIZED`; a blob or upload that is not there `CLIENT_BAD_BLOB` (not
 * retryable); 413 and 507 (quota) `CLIENT_SERVER_REJECTED`, not retryable; 5xx, 429, timeouts and dropped
 * connections retryable (`CLIENT_SERVER_REJECTED` / `CLIENT_TIMEOUT` / `CLIENT_CONNECTION_CLOSED`). A 409 of a
 * PATCH is not an error: it reports the server's offset.
 */
import { ClientError, ClientErrorCode, abortError } from '../errors.js';
import type { FetchLike } from '../transport/http.js';
import { basicAuthorization, type DeviceCredentials } from '../transport/types.js';

export interface BlobHttpOptions {
  /** The server's base URL. */
  readonly url: string;
  readonly credentials: DeviceCredentials;
  /** Default `globalThis.fetch`. */
  readonly fetch?: FetchLike | undefined;
  /** How long a request may wait for its response (headers), ms (default 60,000; a PATCH of a chunk counts its upload). */
  readonly timeoutMs?: number | undefined;
  /** How long a download may go without a byte, ms (default 30,000). */
  readonly idleTimeoutMs?: number | undefined;
}

/** The outcome of creating an upload: the blob is stored already, or an upload to continue at `offset`. */
export type CreatedUpload =
  | { readonly kind: 'stored'; readonly size: number }
  | { readonly kind: 'created'; readonly uploadId: string; readonly offset: number; readonly length: number };

/** The outcome of a PATCH: the new offset, the server's offset after a 409, or the published blob. */
export type PatchOutcome =
  | { readonly kind: 'progress'; readonly offset: number }
  | { readonly kind: 'conflict'; readonly offset: number }
  | { readonly kind: 'complete'; readonly size: number };

/** A download in progress: the blob's whole size and the bytes from the requested offset. */
export interface BlobDownload {
  readonly size: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}

interface Call {
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly what: string;
  readonly timeoutMs?: number | undefined;
}

type FetchResponse = Awaited<ReturnType<FetchLike>>;

/**
 * A response whose body can also be had as an async iterable of chunks: a Node `FetchLike` over `node:http`
 * can hand out the response itself, which costs far less CPU per byte than the web `ReadableStream` around it
 * (measured: about a second per GiB on loopback). Preferred by downloads when present.
 */
export interface ChunkedBodyResponse {
  chunks?(): AsyncIterable<Uint8Array>;
}

const UPLOAD_ID = /^[0-9a-f]{32}$/;
const BLOB_ID = /^[0-9a-f]{64}$/;

function checkUploadId(id: string): void {
  if (!UPLOAD_ID.test(id)) throw new ClientError(ClientErrorCode.InvalidArgument, 'malformed upload id');
}

function checkBlobId(id: string): void {
  if (!BLOB_ID.test(id)) throw new ClientError(ClientErrorCode.InvalidArgument, 'malformed blob id');
}

/** A non-negative integer header, or undefined. */
function intHeader(res: FetchResponse, name: string): number | undefined {
  const v = res.headers.get(name);
  if (v === null || !/^\d{1,16}$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

function requireInt(res: FetchResponse, name: string, what: string): number {
  const v = intHeader(res, name);
  if (v === undefined) throw new ClientError(ClientErrorCode.BadResponse, `${what}: no ${name} in the response`);
  return v;
}

/** The error of a response that is not what was hoped for. */
export function blobError(res: FetchResponse, what: string): ClientError {
  const retryAfter = Number(res.headers.get('retry-after') ?? '0');
  const options = {
    status: res.status,
    serverCode: res.headers.get('x-parley-error') ?? undefined,
    retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
  };
  if (res.status === 401) return new ClientError(ClientErrorCode.Unauthorized, `${what}: credentials refused`, options);
  if (res.status === 404) return new ClientError(ClientErrorCode.BadBlob, `${what}: not on the server (expired, completed or never uploaded)`, { ...options, retryable: false });
  const retryable = res.status === 429 || res.status >= 500;
  return new ClientError(ClientErrorCode.ServerRejected, `${what}: server answered ${res.status} ${options.serverCode ?? ''}`.trim(), { ...options, retryable });
}

export class BlobHttp {
  readonly #o: BlobHttpOptions;
  readonly #fetch: FetchLike;
  readonly #auth: string;

  constructor(options: BlobHttpOptions) {
    this.#o = options;
    const f = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new ClientError(ClientErrorCode.InvalidArgument, 'no fetch implementation: pass one');
    this.#fetch = f;
    const c = options.credentials;
    this.#auth = basicAuthorization(c);
  }

  /**
   * `POST /v1/blobs/uploads`: with `blobId` (a forwarded file) the blob may be stored already; without, always a
   * new upload (its blob id goes with the last chunk).
   */
  async createUpload(length: number, blobId: string | undefined, signal?: AbortSignal): Promise<CreatedUpload> {
    if (!Number.isSafeInteger(length) || length <= 0) throw new ClientError(ClientErrorCode.InvalidArgument, 'an upload length is a positive integer');
    if (blobId !== undefined) checkBlobId(blobId);
    const headers: Record<string, string> = { 'upload-length': String(length) };
    if (blobId !== undefined) headers['upload-blob-id'] = blobId;
    const what = 'blob upload';
    const res = await this.#call({ method: 'POST', path: '/v1/blobs/uploads', headers, signal, what });
    await drain(res);
    if (res.status === 200) return { kind: 'stored', size: requireInt(res, 'upload-length', what) };
    if (res.status !== 201) throw blobError(res, what);
    const uploadId = res.headers.get('upload-id') ?? '';
    if (!UPLOAD_ID.test(uploadId)) throw new ClientError(ClientErrorCode.BadResponse, `${what}: no upload id in the response`);
    return { kind: 'created', uploadId, offset: requireInt(res, 'upload-offset', what), length: requireInt(res, 'upload-length', what) };
  }

  /** `HEAD /v1/blobs/uploads/{id}`: the bytes the server has; undefined when the upload is gone (completed, expired, cancelled). */
  async uploadOffset(uploadId: string, signal?: AbortSignal): Promise<number | undefined> {
    checkUploadId(uploadId);
    const what = 'upload offset';
    const res = await this.#call({ method: 'HEAD', path: `/v1/blobs/uploads/${uploadId}`, signal, what });
    await drain(res);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw blobError(res, what);
    return requireInt(res, 'upload-offset', what);
  }

  /** `PATCH /v1/blobs/uploads/{id}`: appends `body` at `offset`; the last chunk names the blob. */
  async patch(uploadId: string, offset: number, body: Uint8Array, options: { blobId?: string | undefined; signal?: AbortSignal | undefined } = {}): Promise<PatchOutcome> {
    checkUploadId(uploadId);
    if (options.blobId !== undefined) checkBlobId(options.blobId);
    const headers: Record<string, string> = { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' };
    if (options.blobId !== undefined) headers['upload-blob-id'] = options.blobId;
    const what = 'blob upload chunk';
    // A chunk's upload counts into its time: a minute, plus a second per MiB.
    const timeoutMs = (this.#o.timeoutMs ?? 60_000) + Math.ceil(body.length / (1 << 20)) * 1_000;
    const res = await this.#call({ method: 'PATCH', path: `/v1/blobs/uploads/${uploadId}`, headers, body, signal: options.signal, what, timeoutMs });
    await drain(res);
    if (res.status === 409) return { kind: 'conflict', offset: requireInt(res, 'upload-offset', what) };
    if (res.status === 200) return { kind: 'complete', size: requireInt(res, 'upload-length', what) };
    if (res.status === 204) return { kind: 'progress', offset: requireInt(res, 'upload-offset', what) };
    if (res.status === 404) throw new ClientError(ClientErrorCode.BadBlob, `${what}: the upload is gone`, { status: 404, retryable: false });
    throw blobError(res, what);
  }

  /** `DELETE /v1/blobs/uploads/{id}` (frees its quota); a missing upload is no error. */
  async cancelUpload(uploadId: string, signal?: AbortSignal): Promise<void> {
    checkUploadId(uploadId);
    const res = await this.#call({ method: 'DELETE', path: `/v1/blobs/uploads/${uploadId}`, signal, what: 'cancel upload' });
    await drain(res);
    if (res.status !== 204 && res.status !== 404) throw blobError(res, 'cancel upload');
  }

  /**
   * `GET /v1/blobs/{id}` from byte `from` (a `Range` when > 0). The chunks stream from the response body;
   * iterating them can throw `CLIENT_CONNECTION_CLOSED` (dropped) or `CLIENT_TIMEOUT` (stalled), both
   * retryable from what arrived. `from` equal to the size gives no bytes.
   */
  async download(blobId: string, from: number, signal?: AbortSignal): Promise<BlobDownload> {
    checkBlobId(blobId);
    const what = 'blob download';
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    if (signal?.aborted) throw abortError(signal);
    signal?.addEventListener('abort', onAbort, { once: true });
    const detach = (): void => signal?.removeEventListener('abort', onAbort);
    let res: FetchResponse;
    try {
      res = await this.#call({ method: 'GET', path: `/v1/blobs/${blobId}`, headers: from > 0 ? { range: `bytes=${from}-` } : {}, signal: controller.signal, what });
    } catch (err) {
      detach();
      if (signal?.aborted) throw abortError(signal);
      throw err;
    }
    try {
      if (res.status === 416) {
        await drain(res);
        const m = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
        if (!m) throw blobError(res, what);
        const size = Number(m[1]);
        detach();
        return { size, chunks: empty() };
      }
      if (res.status === 200 && from > 0) {
        // The server ignored the range: the whole blob comes; a resumed download must not append it.
        await cancelBody(res);
        throw new ClientError(ClientErrorCode.BadResponse, `${what}: the range was not honoured`, { retryable: false });
      }
      if (res.status !== 200 && res.status !== 206) {
        await drain(res);
        throw blobError(res, what);
      }
      let size: number;
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== from) {
          await cancelBody(res);
          throw new ClientError(ClientErrorCode.BadResponse, `${what}: unexpected Content-Range`);
        }
        size = Number(m[3]);
      } else {
        size = requireInt(res, 'content-length', what);
      }
      return { size, chunks: this.#stream(res, controller, detach, signal) };
    } catch (err) {
      detach();
      throw err;
    }
  }

  /** `POST /v1/blobs/{id}/fetched`: this device has the blob (retention `fetched`). */
  async markFetched(blobId: string, signal?: AbortSignal): Promise<void> {
    checkBlobId(blobId);
    const res = await this.#call({ method: 'POST', path: `/v1/blobs/${blobId}/fetched`, signal, what: 'fetched report' });
    await drain(res);
    if (res.status !== 204 && res.status !== 200) throw blobError(res, 'fetched report');
  }

  async *#stream(res: FetchResponse, controller: AbortController, detach: () => void, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array, void, undefined> {
    let stalled = false;
    try {
      const chunked = (res as FetchResponse & ChunkedBodyResponse).chunks?.();
      if (chunked === undefined && !res.body) {
        // No stream (a minimal fetch): the whole body at once.
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.length > 0) yield bytes;
        return;
      }
      // One watchdog for the whole download (a timer per read would cost more than the reads): it aborts
      // when no bytes came for `idleMs`.
      const idleMs = this.#o.idleTimeoutMs ?? 30_000;
      let lastByteAt = Date.now();
      const watchdog = setInterval(() => {
        if (Date.now() - lastByteAt < idleMs) return;
        stalled = true;
        controller.abort();
      }, Math.max(10, Math.min(1_000, Math.floor(idleMs / 4))));
      try {
        if (chunked !== undefined) {
          for await (const chunk of chunked) {
            lastByteAt = Date.now();
            if (chunk.length > 0) yield chunk;
          }
          return;
        }
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        try {
          for (;;) {
            const step = await reader.read();
            if (step.done) return;
            lastByteAt = Date.now();
            if (step.value.length > 0) yield step.value;
          }
        } finally {
          reader.releaseLock();
        }
      } finally {
        clearInterval(watchdog);
      }
    } catch (cause) {
      if (signal?.aborted) throw abortError(signal);
      if (ClientError.is(cause)) throw cause;
      if (stalled) throw new ClientError(ClientErrorCode.Timeout, 'the download stalled', { cause });
      throw new ClientError(ClientErrorCode.ConnectionClosed, 'the download was cut off', { cause });
    } finally {
      controller.abort();
      detach();
    }
  }

  async #call(c: Call): Promise<FetchResponse> {
    if (c.signal?.aborted) throw abortError(c.signal);
    const timeoutMs = c.timeoutMs ?? this.#o.timeoutMs ?? 60_000;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = (): void => controller.abort(c.signal?.reason);
    c.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.#fetch(new URL(c.path, this.#o.url).toString(), {
        method: c.method,
        headers: { authorization: this.#auth, ...c.headers },
        body: c.body,
        signal: controller.signal,
      });
    } catch (cause) {
      if (c.signal?.aborted) throw abortError(c.signal);
      if (timedOut) throw new ClientError(ClientErrorCode.Timeout, `${c.what}: no response in ${timeoutMs} ms`, { cause });
      throw new ClientError(ClientErrorCode.ConnectionClosed, `${c.what}: the connection failed`, { cause });
    } finally {
      clearTimeout(timer);
      c.signal?.removeEventListener('abort', onAbort);
    }
  }
}

// eslint-disable-next-line require-yield
async function* empty(): AsyncGenerator<Uint8Array, void, undefined> {
  return;
}

/** Reads a (small) response body to its end, so the connection can be reused. */
async function drain(res: FetchResponse): Promise<void> {
  try {
    await res.arrayBuffer();
  } catch {
    // the status and headers are what matter
  }
}

async function cancelBody(res: FetchResponse): Promise<void> {
  try {
    if (res.body) await res.body.cancel();
    else await res.arrayBuffer();
  } catch {
    // nothing to keep
  }
}
