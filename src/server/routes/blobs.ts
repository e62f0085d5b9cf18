import { create } from '@bufbuild/protobuf';
import { PutBlobResponseSchema } from '../../protocol/gen/service_pb.js';
import { BLOB_ID, type BlobStore } from '../blobs/blob-store.js';
import type { ServerConfig } from '../config.js';
import { badRequest, notFound, ServerError, ServerErrorCode } from '../errors.js';
import { reply, type Route } from '../http/route.js';
import { RateLimiter } from '../rate-limiter.js';

const OCTETS = 'application/octet-stream';

function blobId(value: string | undefined): string {
  const id = (value ?? '').toLowerCase();
  if (!BLOB_ID.test(id)) throw badRequest('malformed blob id');
  return id;
}

/**
 * `PUT /v1/blobs/{blob_id}` (the body streamed to disk, at most `maxBlobBytes`) and `GET /v1/blobs/{blob_id}`
 * (streamed back over HTTP; over the WebSocket the bytes are the response body, so at most what fits in a
 * frame).
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
        if (ctx.transport === 'http') return { body: new Uint8Array(0), contentType: OCTETS, stream: { length: blob.size, open: () => blob.open() } };
        // A Response frame carries the bytes: leave room for the frame's other fields.
        const max = config.limits.maxRequestBytes - 1024;
        if (blob.size > max) throw new ServerError(ServerErrorCode.PayloadTooLarge, `blobs above ${max} bytes are fetched over HTTP`);
        return { body: await blob.read(), contentType: OCTETS };
      },
    },
  ];
}
