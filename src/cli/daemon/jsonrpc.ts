/**
 * JSON-RPC 2.0 over newline-delimited JSON (one message per line), independent of the stream it runs on:
 * the daemon serves it on stdio and on a unix socket. Malformed input gets the standard error responses and
 * never stops the server; lines are capped in size.
 */

/** Standard JSON-RPC error codes, and the one for application errors. */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** The method failed; `data.code` carries the `CLIENT_*` (or `PROTOCOL_*`) code. */
  ApplicationError: -32000,
} as const;

/** The longest request line accepted, in bytes (a message text is at most 64 KiB). */
export const MAX_LINE_BYTES = 1024 * 1024;

/** An error a method throws to answer with a given JSON-RPC error. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

export type RpcParams = Record<string, unknown>;
export type RpcMethod = (params: RpcParams) => Promise<unknown>;

type Id = string | number | null;

function response(id: Id, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result: result ?? null });
}

function errorResponse(id: Id, code: number, message: string, data?: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } });
}

/** A notification line. */
export function notification(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params });
}

/** Dispatches request lines to methods. */
export class RpcServer {
  readonly #methods: ReadonlyMap<string, RpcMethod>;
  readonly #toError: (err: unknown) => RpcError;

  /** `toError` turns what a method throws into a JSON-RPC error. */
  constructor(methods: Record<string, RpcMethod>, toError: (err: unknown) => RpcError) {
    this.#methods = new Map(Object.entries(methods));
    this.#toError = toError;
  }

  /** Handles one line; resolves with the response line, or undefined for a notification (no id). */
  async handleLine(line: string): Promise<string | undefined> {
    if (line.trim() === '') return undefined;
    if (line.length > MAX_LINE_BYTES) return errorResponse(null, RpcErrorCode.InvalidRequest, 'request too large');
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return errorResponse(null, RpcErrorCode.ParseError, 'parse error');
    }
    if (Array.isArray(msg)) {
      if (msg.length === 0) return errorResponse(null, RpcErrorCode.InvalidRequest, 'empty batch');
      const out = (await Promise.all(msg.map((m) => this.#one(m)))).filter((r): r is string => r !== undefined);
      return out.length > 0 ? `[${out.join(',')}]` : undefined;
    }
    return this.#one(msg);
  }

  async #one(msg: unknown): Promise<string | undefined> {
    if (typeof msg !== 'object' || msg === null) return errorResponse(null, RpcErrorCode.InvalidRequest, 'invalid request');
    const m = msg as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    const idOk = m.id === undefined || m.id === null || typeof m.id === 'string' || typeof m.id === 'number';
    const id: Id = idOk ? ((m.id as Id | undefined) ?? null) : null;
    if (m.jsonrpc !== '2.0' || typeof m.method !== 'string' || !idOk) return errorResponse(id, RpcErrorCode.InvalidRequest, 'invalid request');
    const isNotification = m.id === undefined;
    const method = this.#methods.get(m.method);
    if (!method) return isNotification ? undefined : errorResponse(id, RpcErrorCode.MethodNotFound, `no method ${m.method}`);
    if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null || Array.isArray(m.params))) {
      return isNotification ? undefined : errorResponse(id, RpcErrorCode.InvalidParams, 'params must be an object');
    }
    try {
      const result = await method((m.params as RpcParams | undefined) ?? {});
      return isNotification ? undefined : response(id, result);
    } catch (err) {
      const e = err instanceof RpcError ? err : this.#toError(err);
      return isNotification ? undefined : errorResponse(id, e.code, e.message, e.data);
    }
  }
}

/** Reads a string parameter (`RpcError` InvalidParams when missing or of another type). */
export function stringParam(params: RpcParams, name: string): string {
  const v = params[name];
  if (typeof v !== 'string') throw new RpcError(RpcErrorCode.InvalidParams, `param "${name}" must be a string`);
  return v;
}

/** Reads an optional non-negative number parameter. */
export function numberParam(params: RpcParams, name: string): number | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RpcError(RpcErrorCode.InvalidParams, `param "${name}" must be a non-negative number`);
  return v;
}

/** Reads an optional boolean parameter. */
export function booleanParam(params: RpcParams, name: string): boolean | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new RpcError(RpcErrorCode.InvalidParams, `param "${name}" must be a boolean`);
  return v;
}

/** Reads an optional string parameter. */
export function optionalStringParam(params: RpcParams, name: string): string | undefined {
  return params[name] === undefined ? undefined : stringParam(params, name);
}

/** Reads a non-empty array of strings. */
export function stringArrayParam(params: RpcParams, name: string): string[] {
  const v = params[name];
  if (!Array.isArray(v) || v.length === 0 || !v.every((x): x is string => typeof x === 'string')) {
    throw new RpcError(RpcErrorCode.InvalidParams, `param "${name}" must be a non-empty array of strings`);
  }
  return v;
}
