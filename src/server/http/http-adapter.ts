/**
 * Plain HTTP in front of the router: reads the body (bounded by `maxRequestBytes`), passes the Basic
 * credentials, and writes the RouterResponse: status, `X-Parley-Error` (the code), `Retry-After`
 * (seconds) and the body. Paths are matched without their query string.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseBasicAuthorization } from '../auth/credentials.js';
import { drop } from '../drop.js';
import { ServerError, ServerErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { errorResponse, type Router, type RouterResponse } from './router.js';

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

function write(res: ServerResponse, r: RouterResponse, close: boolean): void {
  const headers: Record<string, string | number> = { 'content-type': r.contentType, 'content-length': r.body.length, 'cache-control': 'no-store' };
  if (r.code !== '') headers['x-parley-error'] = r.code;
  if (r.retryAfterMs > 0) headers['retry-after'] = Math.ceil(r.retryAfterMs / 1000);
  if (close) headers.connection = 'close';
  res.writeHead(r.status, headers);
  res.end(r.body);
}

/** The `request` handler of the HTTP server. */
export function createHttpHandler(router: Router, maxRequestBytes: number, logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    drop(
      (async () => {
        const path = (req.url ?? '/').split('?', 1)[0] as string;
        let body: Uint8Array;
        try {
          body = await readBody(req, maxRequestBytes);
        } catch (err) {
          write(res, errorResponse(ServerError.is(err) ? err : new ServerError(ServerErrorCode.BadRequest, 'unreadable body', { cause: err }), 'body', logger), true);
          return;
        }
        const response = await router.handle({
          verb: req.method ?? 'GET',
          path,
          body,
          remoteAddress: req.socket.remoteAddress ?? 'unknown',
          transport: 'http',
          auth: { credentials: parseBasicAuthorization(req.headers.authorization) },
        });
        write(res, response, false);
      })(),
      (err) => {
        logger.error({ err }, 'HTTP adapter failed');
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  };
}
