/**
 * What the rest of the SDK needs of a transport: send a request, get a response. The WebSocket transport
 * and the HTTP transport both implement {@link Requester}, and a route can be called over either (the
 * server runs the same handler for both; see docs/api.md).
 */

/** A request of the client-server API. */
export interface ApiRequest {
  /** GET, PUT, POST, DELETE. */
  readonly verb: string;
  /** e.g. `/v1/messages/<account id>`; path parameters only. */
  readonly path: string;
  /** A serialized protobuf from service.proto, or absent. */
  readonly body?: Uint8Array | undefined;
}

/** Per-request options. */
export interface RequestOptions {
  /** Aborts the request (it rejects with `CLIENT_ABORTED` or the signal's ClientError reason). */
  readonly signal?: AbortSignal | undefined;
  /** Gives up after this long with `CLIENT_TIMEOUT` (default: the transport's). */
  readonly timeoutMs?: number | undefined;
}

/** A response: the status and, for errors, the server's code, message, retry hint and detail body. */
export interface ApiResponse {
  readonly status: number;
  /** `SERVER_*` when the status is not 2xx; empty otherwise. */
  readonly code: string;
  readonly message: string;
  readonly body: Uint8Array;
  /** 0 when not applicable. */
  readonly retryAfterMs: number;
}

/** Sends API requests. Rejects only when there is no response (timeout, abort, closed connection). */
export interface Requester {
  request(req: ApiRequest, options?: RequestOptions): Promise<ApiResponse>;
}

/** The credentials of one device: `<account id>.<device id>` and the secret issued at registration. */
export interface DeviceCredentials {
  readonly accountId: string;
  readonly deviceId: number;
  readonly password: string;
}

/** `<account id>.<device id>`, the login of Basic authentication and of the WebSocket query. */
export function loginOf(c: DeviceCredentials): string {
  return `${c.accountId}.${c.deviceId}`;
}

/** The `Authorization` header value of Basic authentication as this device (base64 of the UTF-8 bytes). */
export function basicAuthorization(c: DeviceCredentials): string {
  let binary = '';
  for (const b of new TextEncoder().encode(`${loginOf(c)}:${c.password}`)) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}
