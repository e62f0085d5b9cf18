/**
 * What a route is: a verb, a path pattern (`/v1/keys/:accountId/:deviceId`), whether it needs an
 * authenticated device, and a handler from the request body to a response. The same route serves plain
 * HTTP and WebSocket `Request` frames; handlers never see which transport carried the request except
 * through `ctx.transport`.
 */
import type { Readable } from 'node:stream';
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { AuthenticatedDevice } from '../auth/authenticator.js';
import { badRequest } from '../errors.js';

/** Verbs the API uses. Over HTTP, HEAD is routed as GET and answered without a body. */
export type Verb = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';

/** What every handler gets. */
export interface RequestContext {
  /** Decoded path parameters by name. */
  readonly params: Readonly<Record<string, string>>;
  /** The client's address (rate limits per address). */
  readonly remoteAddress: string;
  readonly transport: 'http' | 'ws';
  /** HTTP: the request headers, names in lowercase (repeated headers joined by `, `). WebSocket: empty. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The body as it arrives, for a route with `streamBody` (its `body` argument is then empty): over HTTP
   * the request itself, read only once the handler consumes it (after authentication); over the
   * WebSocket the frame's body in one chunk.
   */
  readonly bodyStream?: BodyStream;
}

/** A request body read chunk by chunk, with the length the client declared (HTTP Content-Length). */
export interface BodyStream extends AsyncIterable<Uint8Array> {
  readonly declaredLength: number | undefined;
}

/** A response body read from a stream (a blob file) instead of held in memory; HTTP only. */
export interface ResponseStream {
  /** Bytes `open()` yields (the Content-Length). */
  readonly length: number;
  open(): Readable;
}

/** The context of a route that requires authentication. */
export interface DeviceContext extends RequestContext {
  readonly device: AuthenticatedDevice;
}

/** A successful response. */
export interface RouteResponse {
  /** 2xx; default 200. */
  readonly status?: number;
  readonly body: Uint8Array;
  /** Default `application/x-protobuf`. */
  readonly contentType?: string;
  /** HTTP only: the body is streamed from here instead (`body` is then empty). */
  readonly stream?: ResponseStream;
  /** HTTP only: extra response headers (`Upload-Offset`, `Content-Range`, ...); names in lowercase. */
  readonly headers?: Readonly<Record<string, string>>;
}

interface RouteBase {
  readonly verb: Verb;
  readonly path: string;
  /**
   * The body is not buffered up to `maxRequestBytes` by the HTTP adapter: the handler reads it from
   * `ctx.bodyStream` and enforces its own limit (blob uploads).
   */
  readonly streamBody?: boolean;
}

/** A route callable without credentials. */
export interface PublicRoute extends RouteBase {
  readonly auth: false;
  handle(ctx: RequestContext, body: Uint8Array): Promise<RouteResponse>;
}

/** A route that requires an authenticated device. */
export interface DeviceRoute extends RouteBase {
  readonly auth: true;
  handle(ctx: DeviceContext, body: Uint8Array): Promise<RouteResponse>;
}

export type Route = PublicRoute | DeviceRoute;

export const PROTOBUF = 'application/x-protobuf';

const EMPTY = new Uint8Array(0);

/** Decodes a request body; a body that does not decode is SERVER_BAD_REQUEST. */
export function decode<Desc extends DescMessage>(schema: Desc, body: Uint8Array): MessageShape<Desc> {
  try {
    return fromBinary(schema, body);
  } catch (cause) {
    throw badRequest(`body is not a valid ${schema.name}`, cause);
  }
}

/** A 200 response carrying `message`. */
export function reply<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): RouteResponse {
  return { body: toBinary(schema, message) };
}

/** A 200 response with an empty body. */
export function empty(): RouteResponse {
  return { body: EMPTY };
}
