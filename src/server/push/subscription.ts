/**
 * A push subscription as a browser sends it (`PushSubscription.toJSON()`: `{"endpoint", "expirationTime",
 * "keys": {"p256dh", "auth"}}`), checked before it is stored: the server will POST to the endpoint, and
 * encrypt to the keys.
 */
import { createECDH } from 'node:crypto';
import { isIP } from 'node:net';
import { badRequest, ServerError, ServerErrorCode } from '../errors.js';
import { fromBase64Url } from './config.js';

/** Largest subscription body, bytes (a real one is about 500). */
export const MAX_SUBSCRIPTION_BYTES = 4096;
/** Longest endpoint URL, characters (FCM's are about 200, Mozilla's about 300). */
export const MAX_ENDPOINT_LENGTH = 2048;
/** `keys.p256dh`: an uncompressed P-256 point. */
export const P256DH_BYTES = 65;
/** `keys.auth`: the authentication secret of RFC 8291. */
export const AUTH_BYTES = 16;

/** A checked subscription. */
export interface PushSubscriptionInput {
  readonly endpoint: string;
  readonly p256dh: Uint8Array;
  readonly auth: Uint8Array;
}

/** True for 127.0.0.0/8, ::1 and localhost. */
function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** True for an IP literal of a private, loopback, link-local or unspecified range (never a push service). */
function isInternalAddress(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const kind = isIP(host);
  if (kind === 4) {
    const [a = 0, b = 0] = host.split('.').map(Number);
    return a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b < 128) || (a === 169 && b === 254) || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168);
  }
  if (kind === 6) return host === '::' || host === '::1' || /^f[cd]/.test(host) || /^fe[89ab]/.test(host) || host.startsWith('::ffff:');
  return host === 'localhost' || host.endsWith('.localhost');
}

/**
 * Checks an endpoint: an `https:` URL of at most {@link MAX_ENDPOINT_LENGTH} characters, without
 * credentials, whose host is not a loopback or private address literal (the server must not be made to
 * POST into its own network). With `allowLoopbackHttp` (tests), `http:` and `https:` on loopback pass.
 */
export function checkEndpoint(endpoint: string, allowLoopbackHttp: boolean): string {
  if (endpoint.length === 0 || endpoint.length > MAX_ENDPOINT_LENGTH) throw badRequest(`push subscription: the endpoint is 1 to ${MAX_ENDPOINT_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (cause) {
    throw badRequest('push subscription: the endpoint is not a URL', cause);
  }
  if (url.username !== '' || url.password !== '') throw badRequest('push subscription: the endpoint carries credentials');
  const loopbackAllowed = allowLoopbackHttp && isLoopback(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopbackAllowed)) throw badRequest('push subscription: the endpoint must be an https URL');
  if (!loopbackAllowed && isInternalAddress(url.hostname)) throw badRequest('push subscription: the endpoint must be a public push service');
  return endpoint;
}

/** Decodes `keys.p256dh` and checks that it is a point on P-256 (the server will run ECDH with it). */
function checkP256dh(value: unknown): Uint8Array {
  const key = typeof value === 'string' && value.length <= 128 ? fromBase64Url(value) : undefined;
  if (key === undefined || key.length !== P256DH_BYTES || key[0] !== 4) throw badRequest(`push subscription: keys.p256dh is a base64url ${P256DH_BYTES}-byte uncompressed P-256 point`);
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    ecdh.computeSecret(key);
  } catch (cause) {
    throw badRequest('push subscription: keys.p256dh is not a point on P-256', cause);
  }
  return key;
}

function checkAuth(value: unknown): Uint8Array {
  const auth = typeof value === 'string' && value.length <= 64 ? fromBase64Url(value) : undefined;
  if (auth === undefined || auth.length !== AUTH_BYTES) throw badRequest(`push subscription: keys.auth is ${AUTH_BYTES} bytes, base64url`);
  return auth;
}

/**
 * Parses a subscription body: 413 above {@link MAX_SUBSCRIPTION_BYTES}, 400 (SERVER_BAD_REQUEST, with a
 * message naming the field) for anything malformed.
 */
export function parseSubscription(body: Uint8Array, allowLoopbackHttp: boolean): PushSubscriptionInput {
  if (body.length > MAX_SUBSCRIPTION_BYTES) throw new ServerError(ServerErrorCode.PayloadTooLarge, `push subscription above ${MAX_SUBSCRIPTION_BYTES} bytes`);
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (cause) {
    throw badRequest('push subscription: the body is not JSON', cause);
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw badRequest('push subscription: the body is not a JSON object');
  const { endpoint, keys } = o as { endpoint?: unknown; keys?: unknown };
  if (typeof endpoint !== 'string') throw badRequest('push subscription: endpoint is missing');
  if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) throw badRequest('push subscription: keys is missing');
  const { p256dh, auth } = keys as { p256dh?: unknown; auth?: unknown };
  return { endpoint: checkEndpoint(endpoint, allowLoopbackHttp), p256dh: checkP256dh(p256dh), auth: checkAuth(auth) };
}
