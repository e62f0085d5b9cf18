/**
 * Device credentials: a random secret per device, stored only as its SHA-256 hash (the secret has 192
 * bits of entropy, so a slow hash adds nothing), compared in constant time. Parsers here take untrusted
 * header and query values and never throw: anything malformed is simply "no credentials".
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isAccountId, MAX_DEVICE_ID, type AccountId, type DeviceId } from '../ids.js';

/** A login and password as presented by a client. */
export interface Credentials {
  readonly login: string;
  readonly password: string;
}

/** A parsed login: `<account_id>.<device_id>`. */
export interface Login {
  readonly accountId: AccountId;
  readonly deviceId: DeviceId;
}

/** Longest login or password considered; longer values are refused before any work. */
const MAX_FIELD = 128;

/** A fresh device secret: 24 random bytes, base64url (32 characters). */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/** SHA-256 of a secret (or of a verification code). */
export function sha256(value: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(value, 'utf8').digest());
}

/** Compares a presented password with a stored hash, in time independent of where they differ. */
export function passwordMatches(storedHash: Uint8Array, password: string): boolean {
  const given = createHash('sha256').update(password, 'utf8').digest();
  return storedHash.length === given.length && timingSafeEqual(Buffer.from(storedHash.buffer, storedHash.byteOffset, storedHash.byteLength), given);
}

/** Parses an `Authorization: Basic ...` header value. */
export function parseBasicAuthorization(header: string | undefined): Credentials | undefined {
  if (header === undefined || header.length > 512) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return checkLengths({ login: decoded.slice(0, colon), password: decoded.slice(colon + 1) });
}

/** Reads `login` and `password` query parameters (for browsers, which cannot set upgrade headers). */
export function parseQueryCredentials(query: URLSearchParams): Credentials | undefined {
  const login = query.get('login');
  const password = query.get('password');
  if (login === null || password === null) return undefined;
  return checkLengths({ login, password });
}

function checkLengths(c: Credentials): Credentials | undefined {
  return c.login.length > 0 && c.login.length <= MAX_FIELD && c.password.length > 0 && c.password.length <= MAX_FIELD ? c : undefined;
}

/** Parses `<account_id>.<device_id>`. */
export function parseLogin(login: string): Login | undefined {
  const dot = login.lastIndexOf('.');
  if (dot < 0) return undefined;
  const account = login.slice(0, dot).toLowerCase();
  const device = login.slice(dot + 1);
  if (!isAccountId(account) || !/^[0-9]{1,10}$/.test(device)) return undefined;
  const deviceId = Number(device);
  if (deviceId < 1 || deviceId > MAX_DEVICE_ID) return undefined;
  return { accountId: account as AccountId, deviceId: deviceId as DeviceId };
}
