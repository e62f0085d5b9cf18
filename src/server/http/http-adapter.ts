/**
 * Plain HTTP in front of the router: reads the body (bounded by `maxRequestBytes`), passes the Basic
 * credentials and the headers, and writes the RouterResponse: status, `X-Parley-Error` (the code),
 * `Retry-After` (seconds), the route's own headers and the body. Paths are matched without their query
 * string; HEAD is routed as GET and answered without a body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseBasicAuthorization } from '../auth/credentials.js';
import { drop } from '../drop.js';
import { ServerError, ServerErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { BodyStream } from './route.js';
import { errorResponse, type Router, type RouterResponse } from './router.js';
import { createStaticFiles, defaultWebRoot, isApiPath, type StaticFiles } from './static-files.js';

/** Reads a request body of at most `limit` bytes; rejects with SERVER_PAYLOAD_TOO_LARGE beyond it. */
export function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks, size))));
    req.on('error', reject);
    // A client that disconnects mid-body: settle (a no-op after 'end') so nothing waits forever.
    req.on('close', () => reject(new ServerError(ServerErrorCode.BadRequest, 'connection closed before the body was complete')));
  });
}

function tooLarge(limit: number): ServerError {
  return new ServerError(ServerErrorCode.PayloadTooLarge, `request body above ${limit} bytes`);
}

/** The request body as a {@link BodyStream}, read only as the handler consumes it. */
function streamOf(req: IncomingMessage): BodyStream {
  const declared = req.headers['content-length'];
  const length = declared === undefined ? undefined : Number(declared);
  return {
    declaredLength: length !== undefined && Number.isSafeInteger(length) && length >= 0 ? length : undefined,
    async *[Symbol.asyncIterator]() {
      try {
        for await (const chunk of req as AsyncIterable<Buffer>) yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      } catch (cause) {
        // The client went away mid-body: its request, not the server, failed.
        throw new ServerError(ServerErrorCode.BadRequest, 'connection closed before the body was complete', { cause });
      }
    },
  };
}

/** The request headers as single strings (repeated ones joined by `, `), names in lowercase. */
function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function write(res: ServerResponse, r: RouterResponse, close: boolean, logger: Logger, head = false): void {
  const length = r.stream?.length ?? r.body.length;
  const headers: Record<string, string | number> = { 'content-type': r.contentType, 'content-length': length, 'cache-control': 'no-store' };
  if (r.code !== '') headers['x-parley-error'] = r.code;
  if (r.retryAfterMs > 0) headers['retry-after'] = Math.ceil(r.retryAfterMs / 1000);
  if (close) headers.connection = 'close';
  if (r.headers !== undefined) for (const [name, value] of Object.entries(r.headers)) headers[name] = value;
  res.writeHead(r.status, headers);
  if (r.stream === undefined || head) {
    res.end(head ? undefined : r.body);
    return;
  }
  pipeline(r.stream.open(), res).catch((err: unknown) => {
    // The client went away, or the file could not be read: the response is cut short.
    logger.warn({ err: err instanceof Error ? err.message : 'unknown', route: r.route }, 'streamed response failed');
    res.destroy();
  });
}

/**
 * The `request` handler of the HTTP server. GETs and HEADs of paths outside the API go to `staticFiles` (the web
 * app, dist/web by default); everything else goes to the router.
 */
export function createHttpHandler(
  router: Router,
  maxRequestBytes: number,
  logger: Logger,
  staticFiles: StaticFiles = createStaticFiles(defaultWebRoot()),
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    drop(
      (async () => {
        const path = (req.url ?? '/').split('?', 1)[0] as string;
        if ((req.method === 'GET' || req.method === 'HEAD') && path.startsWith('/') && !isApiPath(path)) {
          await staticFiles.serve(req, res, path);
          return;
        }
        // HEAD is GET without the body (the headers, Content-Length included, are the same).
        const head = req.method === 'HEAD';
        const verb = head ? 'GET' : (req.method ?? 'GET');
        // Streaming routes (blob uploads) read the body themselves, after authentication, within their own limit.
        const streaming = router.streamsBody(verb, path);
        let body: Uint8Array = new Uint8Array(0);
        if (!streaming) {
          try {
            body = await readBody(req, maxRequestBytes);
          } catch (err) {
            write(res, errorResponse(ServerError.is(err) ? err : new ServerError(ServerErrorCode.BadRequest, 'unreadable body', { cause: err }), 'body', logger), true, logger);
            return;
          }
        }
        const response = await router.handle({
          verb,
          path,
          body,
          bodyStream: streaming ? streamOf(req) : undefined,
          remoteAddress: req.socket.remoteAddress ?? 'unknown',
          transport: 'http',
          headers: headersOf(req),
          auth: { credentials: parseBasicAuthorization(req.headers.authorization) },
        });
        // A streamed body the handler did not read to the end (refused early): close rather than drain it.
        write(res, response, streaming && !req.readableEnded, logger, head);
      })(),
      (err) => {
        logger.error({ err }, 'HTTP adapter failed');
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  };
}
