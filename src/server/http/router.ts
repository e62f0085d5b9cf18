/**
 * The router: one route table for HTTP and WebSocket requests. It matches verb and path, authenticates
 * when the route requires it, runs the handler, and turns every outcome into a {@link RouterResponse}.
 * {@link errorResponse} is the one place where errors become statuses and codes; the HTTP adapter and
 * the WebSocket connection only serialize a RouterResponse.
 *
 * Callable in-process (`router.handle(...)`), as Hono's `app.request`, so tests can drive the HTTP
 * surface without a socket.
 */
import type { AuthenticatedDevice, Authenticator } from '../auth/authenticator.js';
import type { Credentials } from '../auth/credentials.js';
import { badRequest, ServerError, ServerErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { ServerMetrics } from '../metrics.js';
import { PROTOBUF, type BodyStream, type ResponseStream, type Route, type RouteResponse } from './route.js';

/** A request as either transport delivers it. */
export interface RouterRequest {
  readonly verb: string;
  /** The path without query string. */
  readonly path: string;
  readonly body: Uint8Array;
  /** HTTP, for a route with `streamBody`: the unread request body (`body` is then empty). */
  readonly bodyStream?: BodyStream;
  readonly remoteAddress: string;
  readonly transport: 'http' | 'ws';
  /** HTTP: the request headers, names in lowercase. */
  readonly headers?: Readonly<Record<string, string>>;
  /** HTTP: the credentials of the request (if any). WebSocket: the socket's authenticated device. */
  readonly auth: { readonly credentials: Credentials | undefined } | { readonly device: AuthenticatedDevice };
}

/** A response as either transport sends it. */
export interface RouterResponse {
  readonly status: number;
  /** SERVER_* when status is not 2xx, else empty. */
  readonly code: string;
  /** Human-readable; never holds numbers, keys, codes or message bytes. */
  readonly message: string;
  readonly body: Uint8Array;
  readonly contentType: string;
  readonly retryAfterMs: number;
  /** The matched route pattern (for logs and metrics), or `unmatched`. */
  readonly route: string;
  /** HTTP only: a body streamed from a file instead of `body`. */
  readonly stream?: ResponseStream;
  /** HTTP only: extra response headers, names in lowercase. */
  readonly headers?: Readonly<Record<string, string>>;
}

interface CompiledRoute {
  readonly route: Route;
  readonly segments: readonly string[];
}

/** Longest path considered (a longer one cannot match any route). */
const MAX_PATH = 512;
const EMPTY = new Uint8Array(0);
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Maps any error to a response: a {@link ServerError} keeps its code, status, retry time and detail;
 * anything else is a bug, logged at error level and answered with a bare 500 (its message may hold
 * internals, so it is not sent).
 */
export function errorResponse(err: unknown, route: string, logger: Logger): RouterResponse {
  if (ServerError.is(err)) {
    return { status: err.status, code: err.code, message: err.message, body: err.detail, contentType: PROTOBUF, retryAfterMs: err.retryAfterMs, route, headers: err.headers };
  }
  logger.error({ err, route }, 'unhandled error in request handler');
  return { status: 500, code: ServerErrorCode.Internal, message: 'internal error', body: EMPTY, contentType: PROTOBUF, retryAfterMs: 0, route };
}

/** Matches requests against the route table and runs them. */
export class Router {
  readonly #compiled: readonly CompiledRoute[];
  readonly #authenticator: Authenticator;
  readonly #metrics: ServerMetrics;
  readonly #logger: Logger;

  constructor(routes: readonly Route[], authenticator: Authenticator, metrics: ServerMetrics, logger: Logger) {
    this.#compiled = routes.map((route) => ({ route, segments: route.path.split('/') }));
    this.#authenticator = authenticator;
    this.#metrics = metrics;
    this.#logger = logger;
  }

  /** The route table (the auth tests iterate it, so new routes are covered automatically). */
  get routes(): readonly Route[] {
    return this.#compiled.map((c) => c.route);
  }

  /** True when the route of `verb` and `path` reads its body as a stream (the HTTP adapter then does not buffer it). */
  streamsBody(verb: string, path: string): boolean {
    try {
      return this.#match(verb, path)?.route.streamBody === true;
    } catch {
      return false;
    }
  }

  /** Handles one request; never rejects. */
  async handle(request: RouterRequest): Promise<RouterResponse> {
    const started = performance.now();
    let routeName = 'unmatched';
    let response: RouterResponse;
    try {
      const match = this.#match(request.verb, request.path);
      if (match === undefined) throw new ServerError(ServerErrorCode.UnknownPath, 'no such route');
      routeName = `${match.route.verb} ${match.route.path}`;
      const bodyStream = match.route.streamBody === true ? (request.bodyStream ?? oneChunk(request.body)) : undefined;
      const base = { params: match.params, remoteAddress: request.remoteAddress, transport: request.transport, headers: request.headers ?? NO_HEADERS, bodyStream };
      let result: RouteResponse;
      if (match.route.auth) {
        const device = 'device' in request.auth ? request.auth.device : await this.#authenticator.authenticate(request.auth.credentials);
        result = await match.route.handle({ ...base, device }, request.body);
      } else {
        result = await match.route.handle(base, request.body);
      }
      response = {
        status: result.status ?? 200,
        code: '',
        message: '',
        body: result.body,
        contentType: result.contentType ?? PROTOBUF,
        retryAfterMs: 0,
        route: routeName,
        stream: result.stream,
        headers: result.headers,
      };
    } catch (err) {
      response = errorResponse(err, routeName, this.#logger);
    }
    const seconds = (performance.now() - started) / 1000;
    this.#metrics.requestDuration.observe({ route: routeName, transport: request.transport, status: String(response.status) }, seconds);
    if (this.#logger.isLevelEnabled('debug')) {
      this.#logger.debug({ route: routeName, transport: request.transport, status: response.status, code: response.code || undefined, ms: Math.round(seconds * 1e4) / 10 }, 'request');
    }
    return response;
  }

  #match(verb: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    if (path.length > MAX_PATH || !path.startsWith('/')) return undefined;
    const segments = path.split('/');
    for (const { route, segments: pattern } of this.#compiled) {
      if (route.verb !== verb || pattern.length !== segments.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < pattern.length && ok; i++) {
        const want = pattern[i] as string;
        const got = segments[i] as string;
        if (want.startsWith(':')) {
          if (got.length === 0) ok = false;
          else params[want.slice(1)] = decodeSegment(got);
        } else if (want !== got) {
          ok = false;
        }
      }
      if (ok) return { route, params };
    }
    return undefined;
  }
}

/** A body already in memory (a WebSocket frame's) as a {@link BodyStream}. */
function oneChunk(body: Uint8Array): BodyStream {
  return {
    declaredLength: body.length,
    async *[Symbol.asyncIterator]() {
      if (body.length > 0) yield body;
    },
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch (cause) {
    throw badRequest('malformed path segment', cause);
  }
}
