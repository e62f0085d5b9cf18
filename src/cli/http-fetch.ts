/**
 * The SDK's `FetchLike` over `node:http` / `node:https` with keep-alive connections, for Node clients (the
 * terminal client passes it as `ClientOptions.fetch`). Node's global `fetch` copies every request body and
 * runs each request through web streams; for media uploads in 8 MiB chunks that costs the client more CPU
 * than the network (measured: 155 MB/s of PATCHes through `fetch` against 209 MB/s through this, on
 * loopback), CPU the encryption of the next chunk needs. Bodies are served as a web `ReadableStream` over
 * the response, as `fetch` does, and to media downloads also as the response itself (`chunks()`), which saves
 * the web stream's CPU.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import type { ChunkedBodyResponse } from '../client/media/blob-http.js';
import type { FetchLike } from '../client/transport/http.js';

const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

type FetchResult = Awaited<ReturnType<FetchLike>>;

function responseOf(res: IncomingMessage): FetchResult & Required<ChunkedBodyResponse> {
  let body: ReadableStream<Uint8Array> | undefined;
  return {
    status: res.statusCode ?? 0,
    headers: {
      get(name) {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    },
    async arrayBuffer() {
      const parts: Buffer[] = [];
      for await (const chunk of res as AsyncIterable<Buffer>) parts.push(chunk);
      const all = Buffer.concat(parts);
      return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
    },
    get body() {
      body ??= Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
      return body;
    },
    // Media downloads read the response itself: no web stream around it (see ChunkedBodyResponse).
    chunks: () => res as AsyncIterable<Uint8Array>,
  };
}

/**
 * One request; resolves with the response once its headers arrived (the body is read through the result).
 * Rejects on a network failure or when `signal` aborts (also while the body is being read: the stream
 * errors then).
 */
export const nodeFetch: FetchLike = (input, init) =>
  new Promise((resolve, reject) => {
    const url = new URL(input);
    const agent = url.protocol === 'https:' ? agents['https:'] : url.protocol === 'http:' ? agents['http:'] : undefined;
    if (agent === undefined) {
      reject(new TypeError(`unsupported protocol ${url.protocol}`));
      return;
    }
    const signal = init.signal;
    if (signal?.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    const body = init.body;
    const headers: Record<string, string> = { ...init.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
    const request = (url.protocol === 'https:' ? https : http).request(url, { method: init.method, headers, agent });
    const onAbort = (): void => {
      request.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('response', (res) => {
      res.on('close', () => signal?.removeEventListener('abort', onAbort));
      resolve(responseOf(res));
    });
    request.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    request.end(body === undefined ? undefined : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  });
