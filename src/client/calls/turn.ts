/**
 * TURN credentials from the server (`GET /v1/calls/turn`, docs/calls.md), cached until shortly before they
 * expire. A server without TURN answers 404: calls then use host candidates only, and that answer is
 * remembered for a while so that every call does not ask again.
 */
import { responseError } from '../api.js';
import { ClientError, ClientErrorCode } from '../errors.js';
import type { RequestOptions, Requester } from '../transport/types.js';

/** The server's answer: an RTCIceServer and its lifetime. */
export interface TurnServer {
  readonly urls: readonly string[];
  readonly username: string;
  readonly credential: string;
  /** When the credentials stop working, ms. */
  readonly expiresAt: number;
}

/** Credentials are fetched again when less than this remains of them. */
const REFRESH_MARGIN_MS = 5 * 60_000;
/** A server that has no TURN is asked again after this long. */
const NONE_TTL_MS = 10 * 60_000;

/** Parses the JSON of `GET /v1/calls/turn` (`CLIENT_BAD_RESPONSE` when it is not what the API describes). */
export function parseTurnResponse(bytes: Uint8Array, now: number): TurnServer {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new ClientError(ClientErrorCode.BadResponse, 'TURN credentials: not JSON', { cause });
  }
  const o = v as { username?: unknown; credential?: unknown; ttl?: unknown; urls?: unknown };
  const ok =
    typeof o === 'object' &&
    o !== null &&
    typeof o.username === 'string' &&
    o.username.length <= 256 &&
    typeof o.credential === 'string' &&
    o.credential.length <= 256 &&
    typeof o.ttl === 'number' &&
    Number.isFinite(o.ttl) &&
    o.ttl > 0 &&
    Array.isArray(o.urls) &&
    o.urls.length > 0 &&
    o.urls.length <= 16 &&
    o.urls.every((u) => typeof u === 'string' && /^(turns?|stuns?):\S+$/.test(u));
  if (!ok) throw new ClientError(ClientErrorCode.BadResponse, 'TURN credentials: malformed response');
  return { urls: o.urls as string[], username: o.username as string, credential: o.credential as string, expiresAt: now + (o.ttl as number) * 1000 };
}

/** Fetches and caches the server's TURN credentials. */
export class TurnCredentialsCache {
  #cached: { server: TurnServer | undefined; until: number } | undefined;
  #inflight: Promise<TurnServer | undefined> | undefined;

  constructor(
    readonly requester: () => Requester,
    readonly now: () => number,
  ) {}

  /** Valid credentials, or undefined when the server has no TURN server. */
  get(options: RequestOptions = {}): Promise<TurnServer | undefined> {
    const now = this.now();
    if (this.#cached && this.#cached.until > now) return Promise.resolve(this.#cached.server);
    this.#inflight ??= this.#fetch(options).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetch(options: RequestOptions): Promise<TurnServer | undefined> {
    const res = await this.requester().request({ verb: 'GET', path: '/v1/calls/turn' }, { timeoutMs: 10_000, ...options });
    const now = this.now();
    if (res.status === 404) {
      this.#cached = { server: undefined, until: now + NONE_TTL_MS };
      return undefined;
    }
    if (res.status !== 200) throw responseError(res, 'TURN credentials');
    const server = parseTurnResponse(res.body, now);
    this.#cached = { server, until: server.expiresAt - REFRESH_MARGIN_MS };
    return server;
  }
}
