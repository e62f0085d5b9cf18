/**
 * Typed errors of the server layer. Every failure the server reports on purpose is a {@link ServerError}
 * with a stable `code` from {@link ServerErrorCode}. The HTTP status of each code is fixed here, and
 * `http/router.ts` (`errorResponse`) is the one place that turns an error into a response, for HTTP and
 * WebSocket alike. The codes are listed in docs/errors.md and a test keeps the two equal.
 */

/** Stable error codes of `src/server`. */
export const ServerErrorCode = {
  /** A body or frame that does not decode, or a field out of range. */
  BadRequest: 'SERVER_BAD_REQUEST',
  /** Missing or wrong credentials. */
  Unauthorized: 'SERVER_UNAUTHORIZED',
  /** A wrong, expired or exhausted verification code. */
  InvalidCode: 'SERVER_INVALID_CODE',
  /** A key of the wrong type or length, or a signature that does not verify with the identity key. */
  InvalidKey: 'SERVER_INVALID_KEY',
  /** More one-time keys than one upload or the directory holds. */
  TooManyKeys: 'SERVER_TOO_MANY_KEYS',
  /** The caller is authenticated but may not do this (not a member, not an admin, a wrong invite link). */
  Forbidden: 'SERVER_FORBIDDEN',
  /** The account, device, number or group does not exist. */
  NotFound: 'SERVER_NOT_FOUND',
  /** No route has this verb and path. */
  UnknownPath: 'SERVER_UNKNOWN_PATH',
  /** The request contradicts the current state (a group id taken by another group, a group left without admin). */
  Conflict: 'SERVER_CONFLICT',
  /** The recipient's device set differs from the one the sender addressed. */
  MismatchedDevices: 'SERVER_MISMATCHED_DEVICES',
  /** Some addressed devices re-registered (their registration id changed). */
  StaleDevices: 'SERVER_STALE_DEVICES',
  /** A body, frame or envelope above its size limit. */
  PayloadTooLarge: 'SERVER_PAYLOAD_TOO_LARGE',
  /** A group would exceed its member limit. */
  GroupFull: 'SERVER_GROUP_FULL',
  /** The account already has its maximum of linked companions (with pending provisioning codes). */
  TooManyDevices: 'SERVER_TOO_MANY_DEVICES',
  /** The account's stored blobs would exceed its quota. */
  QuotaExceeded: 'SERVER_QUOTA_EXCEEDED',
  /** A `Range` that does not overlap the blob. */
  RangeNotSatisfiable: 'SERVER_RANGE_NOT_SATISFIABLE',
  /** Too many requests for this number, address, account or connection. */
  RateLimited: 'SERVER_RATE_LIMITED',
  /** A WebSocket frame that is not a binary `Frame` message. */
  MalformedFrame: 'SERVER_MALFORMED_FRAME',
  /** The recipient device's queue is full. */
  QueueFull: 'SERVER_QUEUE_FULL',
  /** The server is shutting down or a dependency (the verification sender) failed. */
  Unavailable: 'SERVER_UNAVAILABLE',
  /** A bug in the server. */
  Internal: 'SERVER_INTERNAL',
} as const;

/** One of the codes of {@link ServerErrorCode}. */
export type ServerErrorCode = (typeof ServerErrorCode)[keyof typeof ServerErrorCode];

/** The HTTP status of each code (also the `status` of a WebSocket `Response`). */
export const STATUS_OF: Readonly<Record<ServerErrorCode, number>> = {
  SERVER_BAD_REQUEST: 400,
  SERVER_UNAUTHORIZED: 401,
  SERVER_INVALID_CODE: 403,
  SERVER_INVALID_KEY: 400,
  SERVER_TOO_MANY_KEYS: 400,
  SERVER_FORBIDDEN: 403,
  SERVER_NOT_FOUND: 404,
  SERVER_UNKNOWN_PATH: 404,
  SERVER_CONFLICT: 409,
  SERVER_MISMATCHED_DEVICES: 409,
  SERVER_STALE_DEVICES: 410,
  SERVER_PAYLOAD_TOO_LARGE: 413,
  SERVER_GROUP_FULL: 413,
  SERVER_TOO_MANY_DEVICES: 409,
  SERVER_QUOTA_EXCEEDED: 507,
  SERVER_RANGE_NOT_SATISFIABLE: 416,
  SERVER_RATE_LIMITED: 429,
  SERVER_MALFORMED_FRAME: 400,
  SERVER_QUEUE_FULL: 507,
  SERVER_UNAVAILABLE: 503,
  SERVER_INTERNAL: 500,
};

/** Options of a {@link ServerError} beyond code and message. */
export interface ServerErrorOptions {
  /** When to retry, in milliseconds (rate limits, overload). */
  retryAfterMs?: number;
  /** A detail message sent as the response body (MismatchedDevices, StaleDevices). */
  detail?: Uint8Array;
  /** HTTP response headers (the current `Upload-Offset` of a 409, the `Content-Range` of a 416). */
  headers?: Readonly<Record<string, string>>;
  cause?: unknown;
}

/** The base (and only) error class of the server layer. */
export class ServerError extends Error {
  override readonly name = 'ServerError';
  readonly code: ServerErrorCode;
  /** The HTTP status the code maps to. */
  readonly status: number;
  /** Milliseconds after which retrying can succeed; 0 when waiting does not help. */
  readonly retryAfterMs: number;
  /** Serialized protobuf detail for the response body, or empty. */
  readonly detail: Uint8Array;
  /** HTTP response headers, or undefined. */
  readonly headers: Readonly<Record<string, string>> | undefined;

  /** `message` is sent to clients: it must never contain numbers, keys, codes or message bytes. */
  constructor(code: ServerErrorCode, message: string, options: ServerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = STATUS_OF[code];
    this.retryAfterMs = Math.max(0, Math.ceil(options.retryAfterMs ?? 0));
    this.detail = options.detail ?? new Uint8Array(0);
    this.headers = options.headers;
  }

  /** True when this error carries `code`. */
  is(code: ServerErrorCode): boolean {
    return this.code === code;
  }

  /** True when `err` is a ServerError, optionally of `code`. */
  static is(err: unknown, code?: ServerErrorCode): err is ServerError {
    return err instanceof ServerError && (code === undefined || err.code === code);
  }
}

/** Shorthand for a 400 SERVER_BAD_REQUEST. */
export function badRequest(message: string, cause?: unknown): ServerError {
  return new ServerError(ServerErrorCode.BadRequest, message, { cause });
}

/** Shorthand for a 404 SERVER_NOT_FOUND. */
export function notFound(what: string): ServerError {
  return new ServerError(ServerErrorCode.NotFound, `${what} not found`);
}

/** Shorthand for a 403 SERVER_FORBIDDEN. */
export function forbidden(message: string): ServerError {
  return new ServerError(ServerErrorCode.Forbidden, message);
}
