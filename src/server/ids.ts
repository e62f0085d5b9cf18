/**
 * Identifiers and the parsers that turn untrusted strings into them. Parsers throw
 * SERVER_BAD_REQUEST; their messages never repeat the input (it may be a phone number).
 */
import { badRequest } from './errors.js';

/** An account's public id: a lowercase UUID, stable for the number across re-registrations. */
export type AccountId = string & { readonly __brand: 'AccountId' };
/** A device number within an account (1 is the primary). */
export type DeviceId = number & { readonly __brand: 'DeviceId' };
/** The server's internal id of one device registration; never reused, so queues cannot outlive it. */
export type DeviceRef = number & { readonly __brand: 'DeviceRef' };
/** A group's id: 32 lowercase hex digits (16 random bytes chosen by the creator). */
export type GroupId = string & { readonly __brand: 'GroupId' };
/** A phone number in E.164 form. */
export type PhoneNumber = string & { readonly __brand: 'PhoneNumber' };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const GROUP_ID = /^[0-9a-f]{32}$/;
const E164 = /^\+[1-9][0-9]{6,14}$/;
/** The highest device id accepted on the wire (Signal uses 1..127; leave room). */
export const MAX_DEVICE_ID = 0x7fff_ffff;

/** Parses an account id (case-insensitive UUID). */
export function parseAccountId(value: string): AccountId {
  const lower = value.toLowerCase();
  if (!UUID.test(lower)) throw badRequest('malformed account id');
  return lower as AccountId;
}

/** True when `value` looks like an account id. */
export function isAccountId(value: string): boolean {
  return UUID.test(value.toLowerCase());
}

/** Parses a group id (case-insensitive, 32 hex digits). */
export function parseGroupId(value: string): GroupId {
  const lower = value.toLowerCase();
  if (!GROUP_ID.test(lower)) throw badRequest('malformed group id');
  return lower as GroupId;
}

/** Parses a device id: a decimal integer in 1..MAX_DEVICE_ID. */
export function parseDeviceId(value: string | number): DeviceId {
  const n = typeof value === 'number' ? value : /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_DEVICE_ID) throw badRequest('malformed device id');
  return n as DeviceId;
}

/** Parses an E.164 phone number (`+` then 7 to 15 digits). */
export function parsePhoneNumber(value: string): PhoneNumber {
  if (!E164.test(value)) throw badRequest('malformed phone number');
  return value as PhoneNumber;
}

/** True when `value` is an E.164 phone number. */
export function isPhoneNumber(value: string): value is PhoneNumber {
  return E164.test(value);
}

/**
 * A phone number for logs: the country-code-sized prefix and the last two digits, the rest masked
 * (`+1555*****01`). The only form in which a number may appear in a log line.
 */
export function maskPhoneNumber(value: string): string {
  if (value.length <= 6) return '*'.repeat(value.length);
  return `${value.slice(0, 5)}${'*'.repeat(value.length - 7)}${value.slice(-2)}`;
}
