/**
 * Short-lived TURN credentials in the TURN REST API convention (draft-uberti-behave-turn-rest, what coturn's
 * `--use-auth-secret` checks): the username is `<unix expiry>:<account id>` and the password is
 * base64(HMAC-SHA1(shared secret, username)). The TURN server needs no database of users: it recomputes the
 * HMAC with the secret it shares with this server and refuses a username whose expiry has passed. The account
 * id in the username lets the relay's logs and quotas tell accounts apart; it reveals nothing the TURN server
 * does not see anyway (the client's address).
 */
import { createHmac } from 'node:crypto';

/** Default lifetime of minted credentials: a day (long enough for a long call, short enough to expire). */
export const DEFAULT_TURN_TTL_SECONDS = 24 * 3600;

/** How to reach the TURN server and the secret shared with it. */
export interface TurnConfig {
  /** The shared secret (coturn's `--static-auth-secret`); at least 16 characters. */
  readonly secret: string;
  /** `turn:` / `turns:` / `stun:` URLs handed to clients, e.g. `turn:turn.example.org:3478?transport=udp`. */
  readonly urls: readonly string[];
  /** Credential lifetime in seconds (default {@link DEFAULT_TURN_TTL_SECONDS}). */
  readonly ttlSeconds?: number | undefined;
}

/** What `GET /v1/calls/turn` returns: an RTCIceServer plus the lifetime. */
export interface TurnCredentials {
  readonly username: string;
  readonly credential: string;
  /** Seconds the credentials stay valid. */
  readonly ttl: number;
  readonly urls: readonly string[];
}

const URL_RE = /^(turns?|stuns?):[^\s]+$/;

/** Checks a TURN configuration (RangeError with the reason), as the server's flags are checked at start-up. */
export function checkTurnConfig(config: TurnConfig): TurnConfig {
  if (config.secret.length < 16) throw new RangeError('the TURN secret has at least 16 characters');
  if (config.urls.length === 0) throw new RangeError('at least one TURN URL is needed');
  for (const u of config.urls) if (!URL_RE.test(u)) throw new RangeError(`not a turn:, turns:, stun: or stuns: URL: ${u}`);
  const ttl = config.ttlSeconds ?? DEFAULT_TURN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > 7 * 24 * 3600) throw new RangeError('the TURN credential lifetime is 60 s to 7 days');
  return config;
}

/** The password coturn expects for `username` under `secret`: base64(HMAC-SHA1(secret, username)). */
export function turnPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

/** Mints credentials for `accountId`, valid from `nowMs` for the configured lifetime. */
export function mintTurnCredentials(config: TurnConfig, accountId: string, nowMs: number): TurnCredentials {
  const ttl = config.ttlSeconds ?? DEFAULT_TURN_TTL_SECONDS;
  const username = `${Math.floor(nowMs / 1000) + ttl}:${accountId}`;
  return { username, credential: turnPassword(config.secret, username), ttl, urls: [...config.urls] };
}
