import { create } from '@bufbuild/protobuf';
import { PutBlobResponseSchema } from '../../protocol/gen/service_pb.js';
import { BLOB_ID, type BlobStore, type ByteRange, type UploadState } from '../blobs/blob-store.js';
import type { ServerConfig } from '../config.js';
import { badRequest, notFound, ServerError, ServerErrorCode } from '../errors.js';
import { reply, type RequestContext, type Route, type RouteResponse } from '../http/route.js';
import { RateLimiter } from '../rate-limiter.js';

const OCTETS = 'application/octet-stream';

function blobId(value: string | undefined): string {
  const id = (value ?? '').toLowerCase();
  if (!BLOB_ID.test(id)) throw badRequest('malformed blob id');
  return id;
}

/** A non-negative decimal integer header, or a 400. */
function integerHeader(ctx: RequestContext, name: string): number {
  const value = ctx.headers[name];
  if (value === undefined || !/^[0-9]{1,16}$/.test(value.trim())) throw badRequest(`missing or malformed ${name} header`);
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n)) throw badRequest(`malformed ${name} header`);
  return n;
}

/** The `Upload-Blob-Id` header: undefined when absent, 400 when malformed. */
function uploadBlobId(ctx: RequestContext): string | undefined {
  const value = ctx.headers['upload-blob-id'];
  return value === undefined ? undefined : blobId(value.trim());
}

function httpOnly(ctx: RequestContext): void {
  if (ctx.transport !== 'http') throw badRequest('resumable uploads are HTTP only');
}

/** The headers describing an upload; `Upload-Blob-Id` only when the upload was started with one. */
function stateHeaders(state: UploadState): Record<string, string> {
  return {
    location: `/v1/blobs/uploads/${state.uploadId}`,
    'upload-id': state.uploadId,
    ...(state.blobId === undefined ? {} : { 'upload-blob-id': state.blobId }),
    'upload-offset': String(state.offset),
    'upload-length': String(state.length),
  };
}

function stored(id: string, size: number, headers: Record<string, string>): RouteResponse {
  return { ...reply(PutBlobResponseSchema, create(PutBlobResponseSchema, { blobId: id, size: BigInt(size) })), headers };
}

/**
 * The range a `Range` header asks for within `size` bytes: undefined to send the whole blob (no header, a
 * unit other than bytes, several ranges, or a malformed one, which RFC 9110 lets a server ignore); a
 * {@link ServerErrorCode.RangeNotSatisfiable} error when it does not overlap the blob.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=\s*([0-9]*)-([0-9]*)\s*$/.exec(header.trim());
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  const unsatisfiable = () => new ServerError(ServerErrorCode.RangeNotSatisfiable, 'the range is outside the blob', { headers: { 'content-range': `bytes */${size}` } });
  if (first === '') {
    if (last === '') return undefined;
    const suffix = Number(last);
    if (suffix === 0) throw unsatisfiable();
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) throw unsatisfiable();
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/**
 * `PUT /v1/blobs/{blob_id}` (the body streamed to disk, at most `maxBlobBytes`), `GET /v1/blobs/{blob_id}`
 * (streamed back over HTTP; over the WebSocket the bytes are the response body, so at most what fits in a
 * frame), `POST /v1/blobs/{blob_id}/fetched` (retention `fetched`), and the resumable uploads under
 * `/v1/blobs/uploads` (HTTP only).
 */
export function blobRoutes(blobs: BlobStore, config: ServerConfig): Route[] {
  const limiter = new RateLimiter(config.rateLimits.blobsPerAccount, config.clock);
  return [
    {
      verb: 'PUT',
      path: '/v1/blobs/:blobId',
      auth: true,
      streamBody: true,
      async handle(ctx) {
        const id = blobId(ctx.params.blobId);
        limiter.check(ctx.device.accountId, 'blob requests');
        const body = ctx.bodyStream;
        if (body === undefined) throw badRequest('missing body');
        const result = await blobs.put({ id, accountId: ctx.device.accountId, body, declaredLength: body.declaredLength, now: config.clock.now() });
        return reply(PutBlobResponseSchema, create(PutBlobResponseSchema, { blobId: id, size: BigInt(result.size) }));
      },
    },
    {
      verb: 'GET',
      path: '/v1/blobs/:blobId',
      auth: true,
      async handle(ctx) {
        const id = blobId(ctx.params.blobId);
        limiter.check(ctx.device.accountId, 'blob requests');
        const blob = await blobs.get(id, config.clock.now());
        if (blob === undefined) throw notFound('blob');
        if (ctx.transport === 'http') {
          const headers: Record<string, string> = { 'accept-ranges': 'bytes' };
          const range = parseRange(ctx.headers.range, blob.size);
          if (range === undefined) return { body: new Uint8Array(0), contentType: OCTETS, stream: { length: blob.size, open: () => blob.open() }, headers };
          return {
            status: 206,
            body: new Uint8Array(0),
            contentType: OCTETS,
            stream: { length: range.end - range.start + 1, open: () => blob.open(range) },
            headers: { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${blob.size}` },
          };
        }
        // A Response frame carries the bytes: leave room for the frame's other fields.
        const max = config.limits.maxRequestBytes - 1024;
        if (blob.size > max) throw new ServerError(ServerErrorCode.PayloadTooLarge, `blobs above ${max} bytes are fetched over HTTP`);
        return { body: await blob.read(), contentType: OCTETS };
      },
    },
    {
      // Retention `fetched`: this device has the blob (idempotent; 204 whether or not a fetch was pending).
      verb: 'POST',
      path: '/v1/blobs/:blobId/fetched',
      auth: true,
      async handle(ctx) {
        const id = blobId(ctx.params.blobId);
        limiter.check(ctx.device.accountId, 'blob requests');
        await blobs.markFetched(id, ctx.device.ref);
        return { status: 204, body: new Uint8Array(0) };
      },
    },
    {
      verb: 'POST',
      path: '/v1/blobs/uploads',
      auth: true,
      async handle(ctx) {
        httpOnly(ctx);
        const id = uploadBlobId(ctx);
        const length = integerHeader(ctx, 'upload-length');
        limiter.check(ctx.device.accountId, 'blob requests');
        const result = await blobs.createUpload({ blobId: id, accountId: ctx.device.accountId, length, now: config.clock.now() });
        if (result.kind === 'stored') return stored(id ?? '', result.size, { 'upload-offset': String(result.size), 'upload-length': String(result.size) });
        return { status: 201, body: new Uint8Array(0), headers: stateHeaders(result.state) };
      },
    },
    {
      // HEAD is served by this route too (the HTTP adapter routes HEAD as GET and sends no body).
      verb: 'GET',
      path: '/v1/blobs/uploads/:uploadId',
      auth: true,
      async handle(ctx) {
        httpOnly(ctx);
        limiter.check(ctx.device.accountId, 'blob requests');
        const state = await blobs.uploadState(ctx.params.uploadId ?? '', ctx.device.accountId);
        return { body: new Uint8Array(0), headers: stateHeaders(state) };
      },
    },
    {
      verb: 'PATCH',
      path: '/v1/blobs/uploads/:uploadId',
      auth: true,
      streamBody: true,
      async handle(ctx) {
        httpOnly(ctx);
        const offset = integerHeader(ctx, 'upload-offset');
        const id = uploadBlobId(ctx);
        limiter.check(ctx.device.accountId, 'blob requests');
        const body = ctx.bodyStream;
        if (body === undefined) throw badRequest('missing body');
        const uploadId = ctx.params.uploadId ?? '';
        const result = await blobs.appendUpload({ uploadId, accountId: ctx.device.accountId, offset, blobId: id, body, now: config.clock.now() });
        const headers = { 'upload-offset': String(result.offset), 'upload-length': String(result.length) };
        if (!result.complete) return { status: 204, body: new Uint8Array(0), headers };
        return stored(result.blobId ?? '', result.length, headers);
      },
    },
    {
      verb: 'DELETE',
      path: '/v1/blobs/uploads/:uploadId',
      auth: true,
      async handle(ctx) {
        httpOnly(ctx);
        limiter.check(ctx.device.accountId, 'blob requests');
        await blobs.cancelUpload(ctx.params.uploadId ?? '', ctx.device.accountId);
        return { status: 204, body: new Uint8Array(0) };
      },
    },
  ];
}
