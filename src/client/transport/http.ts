/**
 * The HTTP transport: each request is one `fetch` (injected; default `globalThis.fetch`). Registration
 * always goes this way (it is unauthenticated), and a client without an open socket sends through it too.
 */
import { ClientError, ClientErrorCode, abortError } from '../errors.js';
import { basicAuthorization, type ApiRequest, type ApiResponse, type DeviceCredentials, type RequestOptions, type Requester } from './types.js';

/** The part of the Fetch API the transport uses. */
export type FetchLike = (input: string, init: {
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array | undefined;
  signal?: AbortSignal | undefined;
}) => Promise<{
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
  /** The body as a stream (the Fetch API's `Response.body`); used to stream downloads when present. */
  readonly body?: ReadableStream<Uint8Array> | null | undefined;
}>;

export interface HttpTransportOptions {
  /** The server's base URL, `http(s)://host:port`. */
  readonly url: string;
  /** Sent as Basic authentication when present. */
  readonly credentials?: DeviceCredentials | undefined;
  /** Default `globalThis.fetch`. */
  readonly fetch?: FetchLike | undefined;
  /** Default request timeout, ms (default 15,000). */
  readonly requestTimeoutMs?: number | undefined;
}

export class HttpTransport implements Requester {
  readonly #options: HttpTransportOptions;
  readonly #fetch: FetchLike;

  constructor(options: HttpTransportOptions) {
    this.#options = options;
    const f = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new ClientError(ClientErrorCode.InvalidArgument, 'no fetch implementation: pass one');
    this.#fetch = f;
  }

  /**
   * One HTTP request. A network failure gives `CLIENT_CONNECTION_CLOSED` (retryable); an HTTP error status is
   * returned as a response (the caller maps it), with the code from `X-Parley-Error` and `Retry-After`.
   */
  async request(req: ApiRequest, options: RequestOptions = {}): Promise<ApiResponse> {
    const timeoutMs = options.timeoutMs ?? this.#options.requestTimeoutMs ?? 15_000;
    if (options.signal?.aborted) throw abortError(options.signal);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = (): void => controller.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const headers: Record<string, string> = { 'content-type': 'application/x-protobuf' };
    const c = this.#options.credentials;
    if (c) headers.authorization = basicAuthorization(c);
    try {
      const res = await this.#fetch(new URL(req.path, this.#options.url).toString(), {
        method: req.verb,
        headers,
        body: req.verb === 'GET' || req.verb === 'HEAD' ? undefined : (req.body ?? new Uint8Array(0)),
        signal: controller.signal,
      });
      const body = new Uint8Array(await res.arrayBuffer());
      const retryAfter = Number(res.headers.get('retry-after') ?? '0');
      return {
        status: res.status,
        code: res.headers.get('x-parley-error') ?? '',
        message: '',
        body,
        retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 0,
      };
    } catch (cause) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (timedOut) throw new ClientError(ClientErrorCode.Timeout, `no response to ${req.verb} in ${timeoutMs} ms`, { cause });
      throw new ClientError(ClientErrorCode.ConnectionClosed, 'the server could not be reached', { cause });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}
